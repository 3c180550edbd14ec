"""`flask operator-keys …`: keys for the operator API (service mode, the standalone app)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from portal.cli_common import show_new_key, unit_of_work
from portal.services import operator as service

operator_keys_cli = AppGroup("operator-keys", help="Keys for the operator API (service mode).")


@operator_keys_cli.command("create")
@click.option("--name", required=True, help="Who or what uses the key, e.g. 'platform-prod'.")
def create_operator_key(name: str) -> None:
    """Create an operator key; prints the key (shown only once) as the last line."""
    with unit_of_work():
        row, key = service.create_operator_key(name)
    show_new_key(row, key)


@operator_keys_cli.command("list")
def list_operator_keys() -> None:
    """Every stored operator key: id, prefix, name, created, last used, revoked."""
    for row in service.list_operator_keys():
        stamps = (row.created_at, row.last_used_at, row.revoked_at)
        when = ["-" if at is None else at.isoformat(timespec="seconds") for at in stamps]
        click.echo("\t".join([row.id, row.prefix + "…", row.name, *when]))


@operator_keys_cli.command("revoke")
@click.argument("key_id")
def revoke_operator_key(key_id: str) -> None:
    """Revoke a stored operator key by its id (opk_…); it stops working at once."""
    with unit_of_work():
        row = service.revoke_operator_key(key_id)
    click.echo(f"revoked {row.id}")
