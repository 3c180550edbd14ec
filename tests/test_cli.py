"""The Flask CLI (the README's table of commands): every command's success path, and every bad
argument answered by a one-line `Error: ...` and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Delivery, Event, EventType, Subscription, Tenant, User
from portal.services import accounts
from portal.services.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_TENANT
from tests.factories import make_subscription, make_tenant

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli(app):
    """Invoke `flask <args>` in-process against the test app."""
    runner = app.test_cli_runner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(args=list(args))
        db.session.expire_all()  # see what the command committed, not what this session cached
        return result

    return invoke


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def assert_ok(result: Result) -> list[str]:
    """The command succeeded; returns its output lines."""
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()


def assert_one_line_error(result: Result, contains: str, usage: bool = False) -> None:
    """A refused argument: non-zero exit, a single `Error: ...` line, no traceback.

    Click's own usage errors (`usage=True`) print a usage hint above the error line.
    """
    assert result.exit_code != 0, result.output
    # Anything but SystemExit means an exception escaped the command (a traceback for the user).
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert contains in errors[0], result.output
    if not usage:
        assert lines == errors, result.output


# --- tenants create ---------------------------------------------------------------------------


def test_tenants_create_prints_the_new_id_as_the_last_line(cli) -> None:
    lines = assert_ok(cli("tenants", "create", "Acme Corp"))

    tenant = db.session.get(Tenant, lines[-1])
    assert tenant is not None
    assert tenant.name == "Acme Corp"
    assert lines[-1].startswith("ten_")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "must not be empty"),
        ("x" * 201, "at most 200"),
        ("bad\x07name", "control"),
        ("\u202eevil", "control"),  # a one-line text field of the API refuses it too
    ],
)
def test_tenants_create_refuses_a_bad_name(cli, name: str, message: str) -> None:
    assert_one_line_error(cli("tenants", "create", name), message)
    assert _count(Tenant) == 0


def test_tenants_create_without_a_name_is_a_usage_error(cli) -> None:
    assert_one_line_error(cli("tenants", "create"), "Missing argument", usage=True)


# --- users create -----------------------------------------------------------------------------


def test_users_create_makes_an_admin_who_can_sign_in(cli) -> None:
    tenant = make_tenant()

    lines = assert_ok(
        cli(
            "users", "create", "--tenant", tenant.id, "Admin@Example.com", "--password", "s3cret-pw"
        )
    )

    user = db.session.get(User, lines[-1])
    assert (user.tenant_id, user.email) == (tenant.id, "admin@example.com")
    assert accounts.authenticate("admin@example.com", "s3cret-pw") == user


def test_users_create_refuses_an_unknown_tenant(cli) -> None:
    result = cli(
        "users", "create", "--tenant", "ten_missing", "a@example.com", "--password", "pw12345678"
    )

    assert_one_line_error(result, "no tenant 'ten_missing'")
    assert _count(User) == 0


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two words@example.com", ""])
def test_users_create_refuses_a_bad_email(cli, email: str) -> None:
    tenant = make_tenant()

    result = cli("users", "create", "--tenant", tenant.id, email, "--password", "long-enough")

    assert_one_line_error(result, "valid email")
    assert _count(User) == 0


def test_users_create_refuses_a_short_password(cli) -> None:
    tenant = make_tenant()

    result = cli("users", "create", "--tenant", tenant.id, "a@example.com", "--password", "short")

    assert_one_line_error(result, "at least 8 characters")
    assert _count(User) == 0


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("a@example.com", "x" * 1025, "at most 1024 characters"),
        ("a@example.com", "nul\x00byte-password", "NUL"),
        ("a\u200b@example.com", "long-enough", "valid email"),
    ],
)
def test_users_create_refuses_what_the_operator_api_refuses(cli, email, password, message):
    tenant = make_tenant()

    result = cli("users", "create", "--tenant", tenant.id, email, "--password", password)

    assert_one_line_error(result, message)
    assert _count(User) == 0


def test_users_create_refuses_a_duplicate_email_in_any_case(cli) -> None:
    tenant = make_tenant()
    assert_ok(
        cli("users", "create", "--tenant", tenant.id, "a@example.com", "--password", "pw-12345")
    )

    result = cli(
        "users", "create", "--tenant", tenant.id, "A@Example.COM", "--password", "pw-67890"
    )

    assert_one_line_error(result, "already exists")
    assert _count(User) == 1


def test_users_create_requires_tenant_and_password(cli) -> None:
    assert_one_line_error(
        cli("users", "create", "a@example.com", "--password", "pw-12345"),
        "Missing option '--tenant'",
        usage=True,
    )
    assert_one_line_error(
        cli("users", "create", "--tenant", "ten_x", "a@example.com"),
        "Missing option '--password'",
        usage=True,
    )


# --- api-keys create --------------------------------------------------------------------------


def test_api_keys_create_prints_a_working_key_as_the_last_line(cli) -> None:
    tenant = make_tenant()

    lines = assert_ok(cli("api-keys", "create", "--tenant", tenant.id, "--name", "ci"))

    key = lines[-1]
    row = accounts.api_key_for(key)
    assert row is not None
    assert (row.tenant_id, row.name) == (tenant.id, "ci")
    assert key not in lines[0]  # the full key is printed once, on its own line


def test_api_keys_create_names_the_key_default(cli) -> None:
    tenant = make_tenant()

    lines = assert_ok(cli("api-keys", "create", "--tenant", tenant.id))

    assert accounts.api_key_for(lines[-1]).name == "default"


def test_api_keys_create_refuses_an_unknown_tenant(cli) -> None:
    assert_one_line_error(cli("api-keys", "create", "--tenant", "ten_missing"), "no tenant")


def test_api_keys_create_refuses_an_empty_name(cli) -> None:
    tenant = make_tenant()

    assert_one_line_error(
        cli("api-keys", "create", "--tenant", tenant.id, "--name", " "), "must not be empty"
    )


# --- events publish ---------------------------------------------------------------------------


def test_events_publish_prints_the_event_id_and_fans_out(cli, receiver) -> None:
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/hook"), events=["invoice.*"])
    data = {"invoice_id": "inv_123", "amount": 100.0}

    lines = assert_ok(
        cli("events", "publish", "--tenant", tenant.id, "invoice.created", json.dumps(data))
    )

    event = db.session.get(Event, lines[-1])
    assert lines[-1].startswith("evt_")
    assert (event.tenant_id, event.type, event.data) == (tenant.id, "invoice.created", data)
    assert _count(Delivery) == 1


def test_events_publish_with_an_idempotency_key_returns_the_first_event(cli) -> None:
    tenant = make_tenant()
    args = ("events", "publish", "--tenant", tenant.id, "--idempotency-key", "k1")

    first = assert_ok(cli(*args, "user.created", '{"user_id": "usr_1"}'))
    second = assert_ok(cli(*args, "user.created", '{"user_id": "usr_1"}'))

    assert first[-1] == second[-1]
    assert _count(Event) == 1


@pytest.mark.parametrize(
    ("event_type", "data", "message"),
    [
        ("invoice.created", "{not json", "DATA is not valid JSON"),
        ("invoice.created", "", "DATA is not valid JSON"),
        ("invoice.created", "[1, 2]", "must be a JSON object"),
        ("invoice.nonexistent", "{}", "unknown event type 'invoice.nonexistent'"),
        ("webhook.test", '{"message": 5}', "does not match the schema"),
    ],
)
def test_events_publish_refuses_bad_input_and_writes_nothing(
    cli, event_type: str, data: str, message: str
) -> None:
    tenant = make_tenant()

    assert_one_line_error(
        cli("events", "publish", "--tenant", tenant.id, event_type, data), message
    )
    assert _count(Event) == 0


def test_events_publish_refuses_an_unknown_tenant(cli) -> None:
    result = cli("events", "publish", "--tenant", "ten_missing", "invoice.created", "{}")

    assert_one_line_error(result, "no tenant 'ten_missing'")
    assert _count(Event) == 0


def test_events_publish_refuses_a_reused_idempotency_key(cli) -> None:
    tenant = make_tenant()
    args = ("events", "publish", "--tenant", tenant.id, "--idempotency-key", "k1", "user.created")
    assert_ok(cli(*args, '{"user_id": "usr_1"}'))

    assert_one_line_error(cli(*args, '{"user_id": "usr_2"}'), "already used")
    assert _count(Event) == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("   ", "must be non-empty text"),
        ("tab\there", "printable characters"),
        ("nul\x00byte", "printable characters"),
        ("k" * 256, "at most 255 printable characters"),
    ],
)
def test_events_publish_refuses_an_idempotency_key_the_api_refuses(cli, key, message) -> None:
    tenant = make_tenant()
    args = ("events", "publish", "--tenant", tenant.id, "--idempotency-key", key)

    assert_one_line_error(cli(*args, "invoice.created", "{}"), message)
    assert _count(Event) == 0


# --- event-types sync -------------------------------------------------------------------------


def test_event_types_sync_reports_changes_and_is_idempotent(cli) -> None:
    row = db.session.scalar(
        select(EventType).where(EventType.tenant_id.is_(None), EventType.name == "ticket.created")
    )
    row.description = "outdated"
    db.session.commit()

    assert assert_ok(cli("event-types", "sync")) == ["1 event types added or updated"]
    assert assert_ok(cli("event-types", "sync")) == ["0 event types added or updated"]
    assert db.session.get(EventType, row.id).description != "outdated"


# --- demo seed --------------------------------------------------------------------------------


def test_demo_seed_is_idempotent(cli) -> None:
    first = assert_ok(cli("demo", "seed"))
    second = assert_ok(cli("demo", "seed"))

    assert first == second
    assert db.session.scalar(select(func.count()).where(Tenant.name == DEMO_TENANT)) == 1
    assert _count(Tenant) == 1
    assert _count(User) == 1
    assert accounts.authenticate(DEMO_EMAIL, DEMO_PASSWORD) is not None
    assert any(DEMO_PASSWORD in line for line in first)


def test_demo_seed_adds_one_endpoint_however_often_it_runs(cli, receiver) -> None:
    url = receiver.url("/demo")

    assert_ok(cli("demo", "seed", "--endpoint-url", url))
    assert_ok(cli("demo", "seed", "--endpoint-url", url))

    subscriptions = db.session.scalars(select(Subscription)).all()
    assert [(s.url, s.events) for s in subscriptions] == [(url, ["*"])]


def test_demo_seed_refuses_a_bad_endpoint_url_and_writes_nothing(cli) -> None:
    assert_one_line_error(
        cli("demo", "seed", "--endpoint-url", "ftp://example.com/x"), "demo endpoint"
    )
    assert (_count(Tenant), _count(User), _count(Subscription)) == (0, 0, 0)


# --- maintenance and worker -------------------------------------------------------------------


def test_maintenance_runs_once_and_reports(cli) -> None:
    lines = assert_ok(cli("maintenance"))

    assert lines[-1].startswith("swept: nothing due; disabled endpoints: 0; pruned attempts: 0")


def test_worker_burst_delivers_what_is_queued_and_returns(cli, receiver) -> None:
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url("/hook"), events=["user.created"])
    published = assert_ok(
        cli("events", "publish", "--tenant", tenant.id, "user.created", '{"user_id": "usr_1"}')
    )

    assert_ok(cli("worker", "--burst"))

    requests = receiver.wait_for(1)
    assert requests[0].headers["webhook-id"] == published[-1]
    assert db.session.scalar(select(Delivery.status)) == "succeeded"


def test_worker_burst_on_named_queues_returns(cli, app) -> None:
    from dispatcher.queues import worker_queue_names

    assert_ok(
        cli("worker", "--burst", *[arg for q in worker_queue_names() for arg in ("--queues", q)])
    )


def test_worker_refuses_an_unknown_queue(cli) -> None:
    assert_one_line_error(cli("worker", "--burst", "--queues", "no-such-queue"), "unknown queue")


# --- the real `flask` entry point -------------------------------------------------------------


def _flask(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `flask <args>` as an operator would (wsgi.py finds the app), on the test settings."""
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env={**os.environ, "FLASK_APP": "wsgi"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flask_command_line_creates_a_tenant_and_refuses_bad_arguments(app) -> None:
    created = _flask("tenants", "create", "Shell Tenant")
    refused = _flask(
        "users", "create", "--tenant", "ten_missing", "a@example.com", "--password", "x" * 8
    )

    assert created.returncode == 0, created.stderr
    assert db.session.get(Tenant, created.stdout.strip().splitlines()[-1]).name == "Shell Tenant"
    assert refused.returncode == 1
    assert refused.stderr == "Error: no tenant 'ten_missing'\n"
