"""Secrets: encrypted at rest, keys hashed, compared in constant time, never in a log line."""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import logging
import re
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, text
from standardwebhooks import Webhook

from dispatcher.connection import get_redis
from dispatcher.signing import generate_secret
from portal.extensions import db
from portal.services import subscriptions as subscription_service
from tests.factories import make_api_key, make_subscription, make_tenant
from tests.hardening.conftest import call_api
from tests.receiver import Reply
from tests.support import configure
from tests.ui.conftest import PASSWORD, csrf_token

ROOT = Path(__file__).resolve().parents[2]
_API_KEY = re.compile(r"hl_[A-Za-z0-9_-]{40,}")
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")


def test_signing_secrets_are_encrypted_at_rest(app, receiver):
    tenant = make_tenant()
    subscription, secret = make_subscription(tenant.id, receiver.url())
    new_secret, _ = subscription_service.rotate_secret(tenant.id, subscription.id)
    db.session.commit()

    raw = db.session.execute(
        text("SELECT secrets_encrypted FROM hookline_subscriptions WHERE id = :id"),
        {"id": subscription.id},
    ).scalar_one()
    for plain in (secret, new_secret):
        assert plain not in raw
        assert plain.removeprefix("whsec_") not in raw
    # It is ciphertext under the configured key, not a hash: the worker can still sign with it.
    decrypted = Fernet(app.config["HOOKLINE_ENCRYPTION_KEY"].encode()).decrypt(raw.encode())
    assert new_secret.encode() in decrypted and secret.encode() in decrypted
    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(raw.encode())


def test_api_keys_are_stored_only_as_a_hash_and_a_short_prefix(app):
    tenant = make_tenant()
    key = make_api_key(tenant.id)
    row = db.session.execute(text("SELECT * FROM hookline_api_keys")).mappings().one()
    stored = " ".join(str(value) for value in row.values())
    assert key not in stored
    assert key.removeprefix("hl_") not in stored
    assert key[12:28] not in stored  # not even a fragment past the display prefix
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row["prefix"]) and len(row["prefix"]) <= 10


# Names that hold key material; comparing them with == would leak timing.
# `signature_scheme` names an algorithm (hmac or ed25519), not key material.
_SENSITIVE = re.compile(r"secret|signature(?!_scheme)|key_hash|token|password|api_key", re.I)


def _names(node: ast.AST) -> set[str]:
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
    return found


def _is_sql_column(node: ast.AST) -> bool:
    """`Model.column == value` builds a SQL condition; nothing is compared in Python."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id[:1].isupper()
    )


def test_key_material_is_compared_only_in_constant_time():
    offenders = []
    for path in sorted([*(ROOT / "portal").rglob("*.py"), *(ROOT / "dispatcher").rglob("*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            sides = [node.left, *node.comparators]
            if any(_is_sql_column(side) for side in sides):
                continue
            if any(isinstance(side, ast.Constant) for side in sides):
                continue  # against a literal (an empty string, a status): no key material
            if any(_SENSITIVE.search(name) for side in sides for name in _names(side)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []

    source = (ROOT / "portal/services/accounts.py").read_text()
    assert "hmac.compare_digest(row.key_hash, digest)" in source


class _Everything(logging.Handler):
    """Keeps every record; formats each with its arguments and traceback for searching."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> Iterator[str]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in self.records:
            parts = [formatter.format(record), repr(record.args), repr(vars(record))]
            if record.exc_info and record.exc_info[1] is not None:
                parts.append("".join(traceback.format_exception(*record.exc_info)))
            if record.stack_info:
                parts.append(record.stack_info)
            yield "\n".join(parts)


@contextlib.contextmanager
def every_log_record_at_debug() -> Iterator[_Everything]:
    """Capture DEBUG and up from every logger, including loggers that set their own level
    later (RQ sets rq.worker to INFO when a worker starts), that do not propagate, or that
    Alembic's fileConfig disabled when the test database was migrated."""
    handler = _Everything()
    manager = logging.root.manager
    saved_disable = manager.disable
    loggers = [logging.root] + [
        logger for logger in manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    original_set_level = logging.Logger.setLevel

    def always_debug(self: logging.Logger, level) -> None:
        original_set_level(self, logging.DEBUG)

    logging.disable(logging.NOTSET)
    logging.Logger.setLevel = always_debug  # type: ignore[method-assign]
    try:
        for logger in loggers:
            original_set_level(logger, logging.DEBUG)
            logger.disabled = False
            if logger is logging.root or not logger.propagate:
                logger.addHandler(handler)
        yield handler
    finally:
        logging.Logger.setLevel = original_set_level  # type: ignore[method-assign]
        for logger in manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and handler in logger.handlers:
                logger.removeHandler(handler)
        logging.root.removeHandler(handler)
        for logger, level, disabled in saved:
            original_set_level(logger, level)
            logger.disabled = disabled
        for logger in manager.loggerDict.values():  # loggers made during the journey
            if isinstance(logger, logging.Logger) and all(logger is not s[0] for s in saved):
                original_set_level(logger, logging.NOTSET)
        logging.disable(saved_disable)


def _forms_of(value: str) -> list[str]:
    """A secret or key, its random part, a fragment of that, and the raw bytes in hex."""
    forms = [value]
    if value.startswith("whsec_"):
        encoded = value.removeprefix("whsec_")
        forms += [encoded, encoded[8:24], base64.b64decode(encoded).hex()]
    elif value.startswith("hl_"):
        token = value.removeprefix("hl_")
        forms += [token, token[10:26]]  # past the 7 characters the display prefix shows
    return forms


def _redis_dump() -> str:
    client = get_redis()
    parts = []
    for name in client.scan_iter(count=1000):
        kind = client.type(name).decode()
        if kind == "string":
            parts.append(repr(client.get(name)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(name)))
        elif kind == "list":
            parts.append(repr(client.lrange(name, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(name)))
        elif kind == "zset":
            parts.append(repr(client.zrange(name, 0, -1)))
    return "\n".join(parts)


def _database_dump() -> str:
    parts = []
    for table in db.metadata.sorted_tables:
        parts += [repr(tuple(row)) for row in db.session.execute(select(table))]
    db.session.rollback()
    return "\n".join(parts)


def test_no_secret_key_or_password_reaches_any_log_line(app, client, receiver, run_worker):
    """A whole journey through the CLI, the API, the portal and the workers, logged at DEBUG."""
    configure(app, HOOKLINE_RETRY_SCHEDULE=[])  # the first failure is final, so retry has work
    receiver.script("/hook", Reply(status=500), default=Reply(status=200))
    secrets: list[str] = [PASSWORD, app.config["HOOKLINE_ENCRYPTION_KEY"], app.config["SECRET_KEY"]]
    runner = app.test_cli_runner()

    with every_log_record_at_debug() as captured:
        tenant_id = runner.invoke(args=["tenants", "create", "Acme"]).output.split()[-1]
        email = "admin@acme.test"
        done = runner.invoke(
            args=["users", "create", "--tenant", tenant_id, email, "--password", PASSWORD]
        )
        assert done.exit_code == 0, done.output
        key = runner.invoke(args=["api-keys", "create", "--tenant", tenant_id]).output.split()[-1]
        assert _API_KEY.fullmatch(key)

        created = call_api(
            client, key, "POST", "/subscriptions", json={"url": receiver.url(), "events": ["*"]}
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        subscription_id, first_secret = created.json["id"], created.json["secret"]
        supplied = "whsec_" + base64.b64encode(b"admin-supplied-secret-32-bytes!!").decode()
        second = call_api(
            client,
            key,
            "POST",
            "/subscriptions",
            json={"url": receiver.url("/other"), "events": ["*"], "secret": supplied},
        )
        assert second.status_code == 201, second.get_data(as_text=True)
        revealed = call_api(client, key, "GET", f"/subscriptions/{subscription_id}/secret")
        assert revealed.json["secret"] == first_secret
        rotated = call_api(
            client,
            key,
            "POST",
            f"/subscriptions/{subscription_id}/rotate-secret",
            json={"grace_period_seconds": 3600},
        )
        rotated_secret = rotated.json["secret"]

        published = call_api(
            client,
            key,
            "POST",
            "/events",
            json={"type": "invoice.paid", "data": {"invoice_id": "inv_1"}},
            headers={"Idempotency-Key": "journey-1"},
        )
        assert published.status_code == 202, published.get_data(as_text=True)
        run_worker()
        tested = call_api(client, key, "POST", f"/subscriptions/{subscription_id}/test")
        assert tested.status_code == 202, tested.get_data(as_text=True)
        run_worker()
        failed = call_api(client, key, "GET", "/deliveries?status=failed").json["data"]
        assert len(failed) == 1, failed
        retried = call_api(client, key, "POST", f"/deliveries/{failed[0]['id']}/retry")
        assert retried.status_code == 202, retried.get_data(as_text=True)
        run_worker()
        assert call_api(client, key, "GET", "/subscriptions/sub_none").status_code == 404
        assert call_api(client, "hl_" + "x" * 43, "GET", "/subscriptions").status_code == 401

        # The portal: sign in, reveal, rotate, create a second API key (shown once).
        signed_in = client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(client)},
        )
        assert signed_in.status_code == 302
        token = csrf_token(client, "/")
        shown = client.get(f"/endpoints/{subscription_id}/secret", headers={"HX-Request": "1"})
        assert rotated_secret in shown.get_data(as_text=True)
        client.post(f"/endpoints/{subscription_id}/rotate", data={"csrf_token": token})
        page = client.post("/api-keys", data={"name": "portal", "csrf_token": token})
        portal_keys = _API_KEY.findall(page.get_data(as_text=True))
        assert portal_keys, "the portal did not show the new key"
        portal_secret = subscription_service.reveal_secret(tenant_id, subscription_id)
        assert portal_secret not in (first_secret, rotated_secret)
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
        # A canary on a logger RQ configures: proves the search would see a leak there.
        canary = generate_secret()
        logging.getLogger("rq.worker").debug("canary %s", {"secret": canary})

    secrets += [key, *portal_keys, first_secret, supplied, rotated_secret, portal_secret]
    # The journey really happened: deliveries arrived signed with the secrets searched for.
    arrived = receiver.received("/hook")
    assert [r.json["type"] for r in arrived] == ["invoice.paid", "webhook.test", "invoice.paid"]
    for request in arrived:
        Webhook(rotated_secret).verify(request.body, request.headers)

    # And the capture really saw everything: SQL with its parameters and RQ at DEBUG.
    journey = [r for r in captured.records if r.msg != "canary %s"]
    assert {"sqlalchemy.engine.Engine", "rq.worker"} <= {r.name for r in journey}
    assert any(r.levelno == logging.DEBUG and r.name.startswith("rq.") for r in journey)

    found: dict[str, list[str]] = {}
    for text_ in captured.texts():
        for secret in [*secrets, canary]:
            for form in _forms_of(secret):
                if form in text_:
                    found.setdefault(secret, []).append(f"{form[:12]}… in: {text_[:300]}")
    assert len(found.pop(canary, [])) == 3, "the search missed the canary (all but its hex)"
    assert found == {}

    stored = _database_dump() + _redis_dump()
    for secret in secrets[3:]:
        assert not any(form in stored for form in _forms_of(secret)), secret[:10]
    assert not _SECRET.search(stored)
