"""Hostile arguments to the CLI: a one-line error and a non-zero exit, or a clean success —
never a traceback, never a partial write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiKey, Event, Tenant, User
from tests.factories import make_tenant

HOSTILE = [
    "line\r\nX-Injected: 1",
    "nul\x00byte",
    "\u202eevil\u200b\ufeff",
    "<script>alert(1)</script>",
    "x" * 100_000,
    "",
]
DEEP_JSON = '{"a":' * 5_000 + "1" + "}" * 5_000


def _counts() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Tenant, User, ApiKey, Event)
    )


def _run(app, args: list[str]) -> None:
    before = _counts()
    result = app.test_cli_runner().invoke(args=args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.output.strip().startswith("Error:"), result.output
        assert _counts() == before, f"{args[:2]} failed but wrote something"


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_cli_commands_survive_hostile_arguments(app, value):
    tenant = make_tenant()
    _run(app, ["tenants", "create", value])
    _run(app, ["users", "create", "--tenant", tenant.id, value, "--password", "longenough"])
    _run(app, ["users", "create", "--tenant", value, "a@example.com", "--password", value])
    _run(app, ["api-keys", "create", "--tenant", tenant.id, "--name", value])
    _run(app, ["events", "publish", "--tenant", tenant.id, value, "{}"])
    _run(app, ["events", "publish", "--tenant", tenant.id, "invoice.paid", value])


def test_cli_publish_refuses_deeply_nested_json(app):
    tenant = make_tenant()
    _run(app, ["events", "publish", "--tenant", tenant.id, "invoice.paid", DEEP_JSON])
