"""Hostile arguments to the CLI: a one-line error and a non-zero exit, or a clean success —
never a traceback, never a partial write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiKey, Event, Tenant, User
from tests.factories import make_tenant
from tests.test_cli import assert_ok, assert_one_line_error

HOSTILE = {
    "crlf": "line\r\nX-Injected: 1",
    "nul": "nul\x00byte",
    "unicode": "\u202eevil\u200b\ufeff",
    "script": "<script>alert(1)</script>",
    "long": "x" * 100_000,
    "empty": "",
}
DEEP_JSON = '{"a":' * 5_000 + "1" + "}" * 5_000
OK = None  # taken: exit 0, one row more


def _answers(default: str | None, **by_kind: str | None) -> dict[str, str | None]:
    """The error each kind of hostile input gets (OK: none): `default`, but for the kinds named."""
    return {kind: by_kind.get(kind, default) for kind in HOSTILE}


def _name_rules(what: str) -> dict[str, str | None]:
    """A tenant's or an API key's name: one line of printable text, 1 to 200 characters."""
    return _answers(
        f"the {what} name must not contain control characters",
        nul=f"the {what} name must not contain NUL characters",
        script=OK,  # shown escaped wherever it appears
        long=f"the {what} name must be at most 200 characters",
        empty=f"the {what} name must not be empty",
    )


TENANT_NAME = _name_rules("tenant")
KEY_NAME = _name_rules("key")
EVENT_TYPE = _answers(
    "unknown event type",
    nul="the event type must be a non-empty string without NUL",
    empty="the event type must be a non-empty string without NUL",
)


def _counts() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Tenant, User, ApiKey, Event)
    )


def _run(app, args: list[str], error: str | None) -> None:
    """Run `flask <args>`: refused with a one-line `Error: ...` holding `error` and nothing
    written, or (error None) a success that wrote a row."""
    before = _counts()
    result = app.test_cli_runner().invoke(args=args)
    if error is None:
        assert_ok(result)
        assert _counts() != before, f"{args[:2]} succeeded but wrote nothing"
    else:
        assert_one_line_error(result, error)
        assert _counts() == before, f"{args[:2]} failed but wrote something"


@pytest.mark.parametrize(("kind", "value"), HOSTILE.items(), ids=HOSTILE)
def test_cli_commands_survive_hostile_arguments(app, kind, value):
    tenant = make_tenant()
    _run(app, ["tenants", "create", value], TENANT_NAME[kind])
    user = ["users", "create", "--tenant", tenant.id, value, "--password", "longenough"]
    _run(app, user, "enter a valid email address")
    user = ["users", "create", "--tenant", value, "a@example.com", "--password", value]
    _run(app, user, "no tenant '")
    _run(app, ["api-keys", "create", "--tenant", tenant.id, "--name", value], KEY_NAME[kind])
    _run(app, ["events", "publish", "--tenant", tenant.id, value, "{}"], EVENT_TYPE[kind])
    publish = ["events", "publish", "--tenant", tenant.id, "invoice.paid", value]
    _run(app, publish, "DATA is not valid JSON")


def test_cli_publish_refuses_deeply_nested_json(app):
    tenant = make_tenant()
    publish = ["events", "publish", "--tenant", tenant.id, "invoice.paid", DEEP_JSON]
    _run(app, publish, "DATA is nested too deeply")
