"""Encryption-key rotation: several keys decrypt, the first encrypts, and `flask secrets
re-encrypt` rewrites every stored token under the first key so the old one can be dropped."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from flask import Flask
from sqlalchemy import event, select, text, update
from standardwebhooks import Webhook

from dispatcher import keys, publish, signing
from dispatcher.connection import ConfigError, get_redis
from dispatcher.keys import ReencryptReport, reencrypt_all
from portal import create_app
from portal.extensions import db
from portal.models import Subscription
from portal.services import subscriptions as service
from tests.factories import make_subscription, make_tenant
from tests.support import configure


@pytest.fixture
def old_key(app) -> str:
    """The key the test app started with (from the environment)."""
    (key,) = app.config["HOOKLINE_ENCRYPTION_KEYS"]
    return key


@pytest.fixture
def use_keys(app, monkeypatch):
    """Reconfigure the running app's keys, newest first, as a redeploy with new settings would."""

    def use(*configured: str) -> None:
        configure(app, HOOKLINE_ENCRYPTION_KEYS=configured, HOOKLINE_ENCRYPTION_KEY=configured[0])

    return use


@pytest.fixture
def runner(app):
    """`flask ...` in-process against the test app."""
    return app.test_cli_runner()


def _raw_token(subscription_id: str) -> str:
    return db.session.execute(
        text("SELECT secrets_encrypted FROM hookline_subscriptions WHERE id = :id"),
        {"id": subscription_id},
    ).scalar_one()


def _decrypts(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def _subscriptions(tenant_id: str, receiver, count: int, start: int = 0) -> dict[str, str]:
    """`count` endpoints on the receiver, each on its own path; returns {path: secret}."""
    made = {}
    for number in range(start, start + count):
        path = f"/hook{number}"
        _, made[path] = make_subscription(tenant_id, receiver.url(path))
    return made


def test_secrets_under_the_old_key_stay_readable_after_a_new_key_is_added(
    app, receiver, run_worker, old_key, use_keys
):
    tenant = make_tenant()
    sub, secret = make_subscription(tenant.id, receiver.url())

    use_keys(Fernet.generate_key().decode(), old_key)

    assert service.reveal_secret(tenant.id, sub.id) == secret
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()
    (got,) = receiver.wait_for(1)
    Webhook(secret).verify(got.body, got.headers)


def test_new_secrets_are_encrypted_with_the_first_key_alone(app, receiver, old_key, use_keys):
    new_key = Fernet.generate_key().decode()
    use_keys(new_key, old_key)
    tenant = make_tenant()

    created, _ = make_subscription(tenant.id, receiver.url())
    rotated, _ = make_subscription(tenant.id, receiver.url("/other"))
    service.rotate_secret(tenant.id, rotated.id)
    db.session.commit()

    for sub in (created, rotated):
        token = _raw_token(sub.id)
        assert _decrypts(new_key, token)
        assert not _decrypts(old_key, token)


def test_reencrypt_rewrites_every_token_in_batches_and_the_old_key_can_go(
    app, receiver, run_worker, old_key, use_keys
):
    tenant = make_tenant()
    made = _subscriptions(tenant.id, receiver, 5)
    new_key = Fernet.generate_key().decode()
    use_keys(new_key, old_key)
    made |= _subscriptions(tenant.id, receiver, 2, start=5)  # already under the new key

    with _recorded_sql() as statements:
        report = reencrypt_all(batch_size=3)

    assert report == ReencryptReport(rewritten=5, already_current=2, batches=3)
    reads = [s for s in statements if s.startswith("SELECT") and "FROM hookline_subscriptions" in s]
    assert len(reads) == 4  # three batches of at most three rows, then one that finds none
    assert all("LIMIT" in s for s in reads)
    assert statements.count("COMMIT") == 3  # one transaction per batch
    for sub_id in db.session.scalars(select(Subscription.id)):
        assert _decrypts(new_key, _raw_token(sub_id))

    use_keys(new_key)  # the old key is dropped everywhere
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()
    got = receiver.wait_for(7)
    assert sorted(r.path for r in got) == sorted(made)
    for request in got:
        Webhook(made[request.path]).verify(request.body, request.headers)


def test_a_second_run_finds_every_token_current(app, receiver, old_key, use_keys):
    tenant = make_tenant()
    _subscriptions(tenant.id, receiver, 4)
    use_keys(Fernet.generate_key().decode(), old_key)
    reencrypt_all(batch_size=2)

    assert reencrypt_all(batch_size=2) == ReencryptReport(already_current=4, batches=2)


def test_unreadable_tokens_are_reported_and_do_not_stop_the_run(app, receiver, old_key, use_keys):
    tenant = make_tenant()
    readable = _subscriptions(tenant.id, receiver, 3)
    use_keys(Fernet.generate_key().decode())  # a key nobody kept
    lost, _ = make_subscription(tenant.id, receiver.url("/lost"))
    garbage, _ = make_subscription(tenant.id, receiver.url("/garbage"))
    db.session.execute(
        update(Subscription).where(Subscription.id == garbage.id).values(secrets_encrypted="x")
    )
    db.session.commit()
    use_keys(Fernet.generate_key().decode(), old_key)

    report = reencrypt_all(batch_size=2)

    assert (report.rewritten, report.already_current, report.batches) == (len(readable), 0, 3)
    assert sorted(report.unreadable) == sorted([lost.id, garbage.id])
    assert not report.complete
    assert _raw_token(garbage.id) == "x"  # left as it was, for someone to recover


def test_a_secret_rotated_during_the_run_is_not_overwritten(
    app, receiver, old_key, use_keys, monkeypatch
):
    tenant = make_tenant()
    _subscriptions(tenant.id, receiver, 3)
    new_key = Fernet.generate_key().decode()
    use_keys(new_key, old_key)
    rotated_secret = signing.generate_secret()
    rotated_token = signing.encrypt_secrets([signing.StoredSecret(rotated_secret)])
    raced: list[str] = []
    real = signing.reencrypted

    def rotate_first_under_the_run(token: str) -> str | None:
        # The portal rotates the first row's secret after the run read it, before it writes.
        if not raced:
            raced.append(token)
            with db.engine.begin() as other:
                other.execute(
                    update(Subscription)
                    .where(Subscription.secrets_encrypted == token)
                    .values(secrets_encrypted=rotated_token)
                )
        return real(token)

    monkeypatch.setattr(keys.signing, "reencrypted", rotate_first_under_the_run)

    report = reencrypt_all(batch_size=3)

    assert raced  # the rotation really happened between the run's read and its write
    assert report == ReencryptReport(rewritten=2, already_current=1, batches=1)
    stored = db.session.scalars(select(Subscription.secrets_encrypted)).all()
    assert rotated_token in stored
    assert signing.decrypt_secrets(rotated_token)[0].secret == rotated_secret


def test_cli_reports_what_it_rewrote(app, runner, receiver, old_key, use_keys):
    tenant = make_tenant()
    _subscriptions(tenant.id, receiver, 5)
    use_keys(Fernet.generate_key().decode(), old_key)
    _subscriptions(tenant.id, receiver, 2, start=5)

    result = runner.invoke(args=["secrets", "re-encrypt", "--batch-size", "3"])

    assert result.exit_code == 0, result.output
    assert result.output == (
        "subscriptions: 7 (batches: 3, at most 3 each)\n"
        "rewritten with the first key: 5\n"
        "already under the first key: 2\n"
        "unreadable: 0\n"
    )


def test_cli_lists_unreadable_subscriptions_and_exits_non_zero(
    app, runner, receiver, old_key, use_keys
):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    use_keys(Fernet.generate_key().decode())  # the old key dropped too early

    result = runner.invoke(args=["secrets", "re-encrypt"])

    assert result.exit_code == 1
    assert result.output == (
        "subscriptions: 1 (batches: 1, at most 500 each)\n"
        "rewritten with the first key: 0\n"
        "already under the first key: 0\n"
        "unreadable: 1\n"
        f"  {sub.id}\n"
        "Error: no configured key decrypts the secrets listed as unreadable; keep every old key "
        "until they are recovered (add the key that encrypted them and run again)\n"
    )


def test_cli_refuses_a_batch_size_below_one(runner):
    result = runner.invoke(args=["secrets", "re-encrypt", "--batch-size", "0"])

    assert result.exit_code == 2
    assert "Invalid value for '--batch-size'" in result.output


def test_the_app_started_with_a_key_list_encrypts_with_its_first_key(test_env, monkeypatch):
    new_key, old_key = Fernet.generate_key().decode(), test_env["HOOKLINE_ENCRYPTION_KEY"]
    monkeypatch.delenv("HOOKLINE_ENCRYPTION_KEY")
    monkeypatch.setenv("HOOKLINE_ENCRYPTION_KEYS", f"{new_key}, {old_key}")
    started = create_app({"TESTING": True})

    with started.app_context():
        token = signing.encrypt_secrets([signing.StoredSecret("whsec_x")])
        old_token = Fernet(old_key.encode()).encrypt(b'[{"secret": "whsec_y", "expires_at": null}]')
        old_secret = signing.decrypt_secrets(old_token.decode())
        db.engine.dispose()
        get_redis().close()

    assert started.config["HOOKLINE_ENCRYPTION_KEYS"] == (new_key, old_key)
    assert started.config["HOOKLINE_ENCRYPTION_KEY"] == new_key
    assert _decrypts(new_key, token) and not _decrypts(old_key, token)
    assert old_secret == [signing.StoredSecret("whsec_y")]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"HOOKLINE_ENCRYPTION_KEY": "k1"}, ("k1",)),
        ({"HOOKLINE_ENCRYPTION_KEYS": ("k1", "k2")}, ("k1", "k2")),
        ({"HOOKLINE_ENCRYPTION_KEYS": "k1, k2"}, ("k1", "k2")),
        ({"HOOKLINE_ENCRYPTION_KEYS": ["k1", "k2"], "HOOKLINE_ENCRYPTION_KEY": "k1"}, ("k1", "k2")),
    ],
)
def test_a_host_app_may_name_its_keys_either_way(settings: dict, expected: tuple) -> None:
    host = Flask("host")
    host.config.update(settings)

    assert signing.encryption_keys(host.config) == expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, "HOOKLINE_ENCRYPTION_KEYS (or HOOKLINE_ENCRYPTION_KEY) is not set"),
        (
            {"HOOKLINE_ENCRYPTION_KEYS": ("k1", "k2"), "HOOKLINE_ENCRYPTION_KEY": "k2"},
            signing.KEYS_DISAGREE,
        ),
    ],
)
def test_a_host_app_with_no_or_disagreeing_keys_is_refused(settings: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        signing.encryption_keys(settings)

    assert str(raised.value) == expected


class _recorded_sql:
    """Collect the SQL the app's engine runs (and its COMMITs) inside a `with` block."""

    def __enter__(self) -> list[str]:
        self.statements: list[str] = []
        event.listen(db.engine, "before_cursor_execute", self._statement)
        event.listen(db.engine, "commit", self._commit)
        return self.statements

    def __exit__(self, *exc) -> None:
        event.remove(db.engine, "before_cursor_execute", self._statement)
        event.remove(db.engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(" ".join(statement.split()))

    def _commit(self, conn) -> None:
        self.statements.append("COMMIT")
