from standardwebhooks import Webhook

from dispatcher import publish
from portal.extensions import db
from tests.factories import make_subscription, make_tenant


def test_published_event_reaches_receiver_signed(app, receiver, run_worker):
    tenant = make_tenant()
    _sub, secret = make_subscription(tenant.id, receiver.url())
    event = publish("invoice.created", {"invoice_id": "inv_1", "amount": 1}, tenant_id=tenant.id)
    event_id = event.id
    db.session.commit()
    run_worker()
    (got,) = receiver.wait_for(1)
    Webhook(secret).verify(got.body, got.headers)
    assert got.json["id"] == event_id
