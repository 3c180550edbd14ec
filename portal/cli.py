"""Flask CLI commands (`flask tenants create`, `flask worker`, …); names are a stable contract."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo

from dispatcher import keys, maintenance, queues
from dispatcher import worker as dispatcher_worker
from dispatcher.store import db
from portal import schema
from portal.cli_common import fail, show_new_key, unit_of_work
from portal.extensions import db as standalone_db
from portal.operator_cli import operator_keys_cli
from portal.services import accounts, demo, event_types, events
from portal.services.demo import DEMO_EMAIL, DEMO_PASSWORD

tenants_cli = AppGroup("tenants", help="Manage tenants.")
users_cli = AppGroup("users", help="Manage tenant admins.")
api_keys_cli = AppGroup("api-keys", help="Manage API keys.")
events_cli = AppGroup("events", help="Publish events.")
demo_cli = AppGroup("demo", help="Demo data for `make run`.")
catalog_cli = AppGroup("event-types", help="The event-type catalog.")
secrets_cli = AppGroup("secrets", help="Signing secrets stored encrypted at rest.")
hookline_cli = AppGroup("hookline", help="Hookline's commands inside a host app.")


@tenants_cli.command("create")
@click.argument("name")
def create_tenant(name: str) -> None:
    """Create a tenant; prints its id as the last line."""
    with unit_of_work():
        tenant = accounts.create_tenant(name)
    click.echo(tenant.id)


@users_cli.command("create")
@click.option("--tenant", "tenant_id", required=True, help="The tenant's id.")
@click.option("--password", required=True, help="At least 8 characters.")
@click.argument("email")
def create_user(tenant_id: str, password: str, email: str) -> None:
    """Create a tenant admin who can sign in to the portal."""
    with unit_of_work():
        user = accounts.create_user(tenant_id, email, password)
    click.echo(user.id)


@api_keys_cli.command("create")
@click.option("--tenant", "tenant_id", required=True, help="The tenant's id.")
@click.option("--name", default="default", show_default=True)
def create_api_key(tenant_id: str, name: str) -> None:
    """Create an API key; prints the key (shown only once) as the last line."""
    with unit_of_work():
        row, key = accounts.create_api_key(tenant_id, name)
    show_new_key(row, key)


@events_cli.command("publish")
@click.option("--tenant", "tenant_id", required=True, help="The tenant's id.")
@click.option("--idempotency-key", default=None)
@click.argument("event_type")
@click.argument("data")
def publish_event(tenant_id: str, idempotency_key: str | None, event_type: str, data: str) -> None:
    """Publish an event from the shell; prints its id (with an idempotency key used before for
    the same event, the first event's). The rules are the API's: the same service decides."""
    with unit_of_work():
        accounts.get_tenant(tenant_id)
        published = events.publish_event(
            tenant_id, event_type, _json_argument(data), idempotency_key
        )
    click.echo(published.event.id)


def _json_argument(data: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        fail(f"DATA is not valid JSON: {exc}")
    except RecursionError:
        fail("DATA is nested too deeply")


@catalog_cli.command("sync")
def sync_catalog() -> None:
    """Add or update the standard event types (idempotent)."""
    with unit_of_work():
        changed = event_types.sync_standard_types()
    click.echo(f"{changed} event types added or updated")


@demo_cli.command("seed")
@click.option("--endpoint-url", default=None, help="Add a demo endpoint pointing here.")
def demo_seed(endpoint_url: str | None) -> None:
    """Create the demo tenant and admin (and an endpoint); safe to run again."""
    with unit_of_work():
        tenant_id = demo.seed(endpoint_url)
    click.echo(f"tenant: {tenant_id}")
    click.echo(f"login:  {DEMO_EMAIL} / {DEMO_PASSWORD}")


@secrets_cli.command("re-encrypt")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=keys.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Subscriptions per transaction.",
)
def reencrypt_secrets(batch_size: int) -> None:
    """Re-encrypt every stored signing secret with the first of HOOKLINE_ENCRYPTION_KEYS."""
    report = keys.reencrypt_all(batch_size)
    click.echo(
        f"subscriptions: {report.total} (batches: {report.batches}, at most {batch_size} each)"
    )
    click.echo(f"rewritten with the first key: {report.rewritten}")
    click.echo(f"already under the first key: {report.already_current}")
    click.echo(f"unreadable: {len(report.unreadable)}")
    for subscription_id in report.unreadable:
        click.echo(f"  {subscription_id}")
    if report.contended:
        click.echo(f"changed during the run: {len(report.contended)}")
        for subscription_id in report.contended:
            click.echo(f"  {subscription_id}")
    if report.unreadable:
        fail(
            "no configured key decrypts the secrets listed as unreadable; keep every old key "
            "until they are recovered (add the key that encrypted them and run again)"
        )
    if report.contended:
        fail("some secrets changed during the run; run it again")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--queues", "queue_names", multiple=True, help="Queue names (default: all).")
def worker_command(burst: bool, queue_names: tuple[str, ...]) -> None:
    """Run an RQ worker with its scheduler and the periodic maintenance."""
    known = queues.worker_queue_names()
    unknown = [name for name in queue_names if name not in known]
    if unknown:
        # RQ would happily wait on a queue nothing is ever put on; say so instead.
        raise click.ClickException(f"unknown queue {unknown[0]!r}; choose from {', '.join(known)}")
    dispatcher_worker.run(list(queue_names) or None, burst=burst)


@click.command("maintenance")
def maintenance_command() -> None:
    """Run the periodic jobs once: sweep, auto-disable, prune."""
    report = maintenance.run_all()
    click.echo(
        f"swept: {'drain enqueued' if report.kicked else 'nothing due'}; "
        f"disabled endpoints: {report.disabled}; pruned attempts: {report.pruned_attempts}, "
        f"deliveries: {report.pruned_deliveries}, events: {report.pruned_events}"
    )


@hookline_cli.command("upgrade")
def upgrade_command() -> None:
    """Create or migrate Hookline's tables (only those, with their own Alembic version table)
    and add the standard event types."""
    schema.upgrade()
    changed = event_types.sync_standard_types()
    db.session.commit()
    click.echo(f"Hookline's tables are at the newest revision; {changed} event types added")


@click.command(
    "db",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def migrations_cli(ctx: click.Context) -> None:
    """Hookline's database migrations: Flask-Migrate's `flask db …` commands."""
    # Loaded only when run: Alembic and Flask-Migrate are 11 MiB that every `flask worker`
    # would otherwise carry. The arguments go to Flask-Migrate's own `db` group as they are.
    from flask_migrate import Migrate
    from flask_migrate.cli import db as migrate_commands

    info = ctx.ensure_object(ScriptInfo)
    app = info.load_app()
    if "migrate" not in app.extensions:
        Migrate(app, standalone_db, directory=str(schema.MIGRATIONS))
    migrate_commands.main(args=ctx.args, prog_name=ctx.command_path, obj=info)


def _hookline_commands() -> None:
    """`flask hookline …`: the commands a host app runs, beside its own."""
    api_keys = AppGroup("api-keys", help=api_keys_cli.help)
    api_keys.add_command(create_api_key)
    for command in (api_keys, worker_command, maintenance_command, secrets_cli, catalog_cli):
        hookline_cli.add_command(command)


_hookline_commands()


def init_app(app: Flask) -> None:
    """Register the commands on `app`: `flask hookline …` always; standalone also the
    top-level names (`flask worker`, `flask tenants create`, …), which a host keeps for its
    own commands."""
    from portal.hookline import mount

    app.cli.add_command(hookline_cli)
    if mount(app).embedded:
        return
    for command in (
        tenants_cli,
        users_cli,
        api_keys_cli,
        events_cli,
        demo_cli,
        catalog_cli,
        secrets_cli,
        operator_keys_cli,
        worker_command,
        maintenance_command,
        migrations_cli,
    ):
        app.cli.add_command(command)
