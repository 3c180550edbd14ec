"""Secret rotation with a grace period, and secrets encrypted at rest."""

from __future__ import annotations

import pytest
import svix.webhooks
from sqlalchemy import text
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from dispatcher import publish, signing
from portal.extensions import db
from portal.services import ServiceError
from portal.services import subscriptions as service
from tests.dispatcher.helpers import sweep_and_work
from tests.factories import make_subscription, make_tenant


def _deliver(tenant_id, receiver, run_worker, count):
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant_id)
    db.session.commit()
    run_worker()
    return receiver.wait_for(count)[-1]


def test_during_grace_both_secrets_verify_the_same_delivery(app, receiver, run_worker):
    tenant = make_tenant()
    sub, old = make_subscription(tenant.id, receiver.url())
    new, expires = service.rotate_secret(tenant.id, sub.id)
    db.session.commit()
    assert new != old and new.startswith("whsec_")
    assert expires is not None

    got = _deliver(tenant.id, receiver, run_worker, 1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(got.body, got.headers)
        svix.webhooks.Webhook(secret).verify(got.body, got.headers)


def test_after_grace_only_the_new_secret_verifies(app, receiver, run_worker, clock):
    tenant = make_tenant()
    sub, old = make_subscription(tenant.id, receiver.url())
    new, _ = service.rotate_secret(tenant.id, sub.id, grace_seconds=3600)
    db.session.commit()
    clock.advance(hours=1, seconds=1)

    got = _deliver(tenant.id, receiver, run_worker, 1)
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


def test_rotation_with_zero_grace_stops_the_old_secret_at_once(app, receiver, run_worker):
    tenant = make_tenant()
    sub, old = make_subscription(tenant.id, receiver.url())
    new, expires = service.rotate_secret(tenant.id, sub.id, grace_seconds=0)
    db.session.commit()
    assert expires is None
    got = _deliver(tenant.id, receiver, run_worker, 1)
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)


@pytest.mark.parametrize("grace", [-1, 7 * 86400 + 1, "soon", 1.5, True])
def test_grace_outside_zero_to_seven_days_is_refused(app, receiver, grace):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    with pytest.raises(ServiceError, match="grace_period_seconds"):
        service.rotate_secret(tenant.id, sub.id, grace_seconds=grace)


def test_at_most_ten_old_secrets_are_kept(app, receiver, clock):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    for _ in range(15):
        clock.advance(seconds=1)
        service.rotate_secret(tenant.id, sub.id)
    stored = signing.decrypt_secrets(sub.secrets_encrypted)
    assert len(stored) == 11
    assert stored[0].expires_at is None


def test_secrets_are_encrypted_at_rest(app, receiver):
    tenant = make_tenant()
    sub, secret = make_subscription(tenant.id, receiver.url())
    raw = db.session.execute(
        text("SELECT secrets_encrypted FROM hookline_subscriptions WHERE id = :id"), {"id": sub.id}
    ).scalar_one()
    assert secret not in raw
    assert secret[len("whsec_") :] not in raw
    assert service.reveal_secret(tenant.id, sub.id) == secret


def test_admin_supplied_secret_is_validated_and_used(app, receiver, run_worker):
    tenant = make_tenant()
    with pytest.raises(ServiceError, match="whsec_"):
        make_subscription(tenant.id, receiver.url(), secret="plain-text")
    db.session.rollback()
    mine = signing.generate_secret()
    _, secret = make_subscription(tenant.id, receiver.url(), secret=mine)
    assert secret == mine
    got = _deliver(tenant.id, receiver, run_worker, 1)
    Webhook(mine).verify(got.body, got.headers)


def test_retry_after_rotation_is_signed_with_the_current_secrets(app, receiver, run_worker, clock):
    from tests.receiver import Reply

    receiver.script("/hook", Reply(status=500))
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    _deliver(tenant.id, receiver, run_worker, 1)
    new, _ = service.rotate_secret(tenant.id, sub.id, grace_seconds=0)
    db.session.commit()
    clock.advance(minutes=5)
    sweep_and_work(run_worker)
    got = receiver.wait_for(2)[-1]
    Webhook(new).verify(got.body, got.headers)


def test_an_unreadable_secret_fails_its_own_deliveries_and_no_one_elses(app, receiver, run_worker):
    """A token no configured key opens (a key dropped too early, a damaged row) must not stop
    the drain: that endpoint's attempt is recorded as failed and retried, the others deliver."""
    from portal.models import Attempt, Delivery

    tenant = make_tenant()
    _, secret = make_subscription(tenant.id, receiver.url("/healthy"))
    broken, _ = make_subscription(tenant.id, receiver.url("/broken"))
    db.session.execute(
        text("UPDATE hookline_subscriptions SET secrets_encrypted = 'not-a-token' WHERE id = :id"),
        {"id": broken.id},
    )
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    got = receiver.wait_for(1)
    assert [r.path for r in got] == ["/healthy"]
    Webhook(secret).verify(got[0].body, got[0].headers)
    stuck = db.session.scalars(
        db.select(Delivery).where(Delivery.subscription_id == broken.id)
    ).one()
    assert stuck.status == "pending" and stuck.attempt_count == 1  # retried, not lost
    attempt = db.session.scalars(db.select(Attempt).where(Attempt.delivery_id == stuck.id)).one()
    assert attempt.response_status is None
    assert "cannot be decrypted" in attempt.error
