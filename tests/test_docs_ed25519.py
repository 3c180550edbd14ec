"""docs/receiving.md's ed25519 verifier, fed real deliveries of an ed25519 endpoint: it accepts
them (old and new key during a rotation) and refuses tampered ones."""

from __future__ import annotations

import json

import pytest

from dispatcher import publish
from portal.extensions import db
from portal.services import subscriptions as subscription_service
from tests.factories import make_subscription, make_tenant
from tests.test_docs_examples import INVOICE, RECEIVING, load_sample


def _deliver(receiver, run_worker, rotate: bool):
    tenant = make_tenant()
    sub, public = make_subscription(
        tenant.id, receiver.url("/hook"), events=["invoice.*"], signature_scheme="ed25519"
    )
    keys = [public]
    if rotate:
        new_public, _ = subscription_service.rotate_secret(tenant.id, sub.id, 3600)
        db.session.commit()
        keys = [new_public, public]
    publish("invoice.created", INVOICE, tenant_id=tenant.id)
    db.session.commit()
    run_worker()
    (got,) = receiver.wait_for(1)
    return got, keys


def test_ed25519_sample_verifies_a_real_delivery_and_both_keys_in_a_rotation(
    app, receiver, run_worker, tmp_path, monkeypatch
):
    sample = load_sample(RECEIVING, "verify_ed25519.py", tmp_path, monkeypatch)
    got, keys = _deliver(receiver, run_worker, rotate=True)

    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for key in keys:
        assert sample.verify_webhook(got.body, got.headers, [key]) == json.loads(got.body)
    with pytest.raises(sample.WebhookVerificationError):
        sample.verify_webhook(got.body.replace(b"12900", b"1"), got.headers, keys)
