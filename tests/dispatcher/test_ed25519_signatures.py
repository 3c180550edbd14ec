"""Asymmetric (Standard Webhooks v1a, ed25519) signatures: deliveries verify with the endpoint's
`whpk_` public key through `cryptography`, rotation signs with every valid key, and the private
key is stored only encrypted."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dispatcher import publish, signing
from portal.extensions import db
from portal.models import Subscription
from portal.services import ServiceError
from portal.services import subscriptions as service
from tests.factories import make_subscription, make_tenant


def _verify(public: str, request) -> int:
    """Verify like a consumer with only the public key; returns how many v1a signatures did."""
    assert public.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    signed = (
        f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode()
        + request.body
    )
    good = 0
    for part in request.headers["webhook-signature"].split(" "):
        version, _, value = part.partition(",")
        assert version == "v1a"
        try:
            key.verify(base64.b64decode(value), signed)
            good += 1
        except InvalidSignature:
            pass
    return good


def _deliver_one(tenant_id, receiver, run_worker, path="/ed"):
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant_id)
    db.session.commit()
    run_worker()
    return receiver.received(path)[-1]


def test_an_ed25519_endpoint_signs_v1a_verifiable_with_its_public_key(app, receiver, run_worker):
    tenant = make_tenant()
    sub, public = make_subscription(tenant.id, receiver.url("/ed"), signature_scheme="ed25519")
    assert public.startswith("whpk_")
    assert service.public_key(sub) == public == service.reveal_secret(tenant.id, sub.id)

    request = _deliver_one(tenant.id, receiver, run_worker)
    assert request.headers["webhook-signature"].startswith("v1a,")
    assert _verify(public, request) == 1
    assert request.headers["X-Webhook-Signature"] == request.headers["webhook-signature"]


def test_the_private_key_is_stored_only_encrypted(app):
    tenant = make_tenant()
    sub, public = make_subscription(tenant.id, "http://127.0.0.1:9/x", signature_scheme="ed25519")
    row = db.session.get(Subscription, sub.id)
    (stored,) = signing.decrypt_secrets(row.secrets_encrypted)
    assert stored.secret.startswith("whsk_") and stored.secret not in row.secrets_encrypted
    assert signing.public_key(stored.secret) == public


def test_rotation_signs_with_both_keys_during_grace(app, receiver, run_worker):
    tenant = make_tenant()
    sub, old_public = make_subscription(tenant.id, receiver.url("/ed"), signature_scheme="ed25519")
    new_public, expires = service.rotate_secret(tenant.id, sub.id, 3600)
    db.session.commit()
    assert new_public.startswith("whpk_") and new_public != old_public and expires

    request = _deliver_one(tenant.id, receiver, run_worker)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert _verify(old_public, request) == 1
    assert _verify(new_public, request) == 1

    service.rotate_secret(tenant.id, sub.id, 0)  # no grace: only the newest signs
    db.session.commit()
    request = _deliver_one(tenant.id, receiver, run_worker)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert _verify(new_public, request) == 0


def test_switching_scheme_keeps_the_old_hmac_secret_signing_for_the_grace(
    app, receiver, run_worker
):
    from standardwebhooks.webhooks import Webhook

    tenant = make_tenant()
    sub, secret = make_subscription(tenant.id, receiver.url("/ed"))
    service.update(tenant.id, sub.id, {"signature_scheme": "ed25519"})
    db.session.commit()
    public = service.reveal_secret(tenant.id, sub.id)

    request = _deliver_one(tenant.id, receiver, run_worker)
    v1a, v1 = request.headers["webhook-signature"].split(" ")
    assert v1a.startswith("v1a,") and v1.startswith("v1,")
    Webhook(secret).verify(request.body, request.headers)  # the HMAC consumer still verifies
    assert signing.verify_v1a(
        public,
        request.headers["webhook-id"],
        int(request.headers["webhook-timestamp"]),
        request.body,
        request.headers["webhook-signature"],
    )


def test_a_supplied_private_key_is_checked(app):
    tenant = make_tenant()
    key = signing.generate_private_key()
    _sub, public = make_subscription(
        tenant.id, "http://127.0.0.1:9/x", signature_scheme="ed25519", secret=key
    )
    assert public == signing.public_key(key)
    for bad in ("whsec_" + "A" * 44, "whsk_not-base64!", "whsk_" + base64.b64encode(b"x").decode()):
        with pytest.raises(ServiceError) as caught:
            service.create(
                tenant.id,
                url="http://127.0.0.1:9/x",
                events=["*"],
                signature_scheme="ed25519",
                secret=bad,
            )
        assert caught.value.field == "secret"
    with pytest.raises(ServiceError) as caught:
        service.create(tenant.id, url="http://127.0.0.1:9/x", events=["*"], signature_scheme="rsa")
    assert caught.value.field == "signature_scheme"
