"""A day of real traffic for the screenshots: events published at past hours (on a moved
clock) and delivered now by the real worker to a healthy and a broken loopback endpoint."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from dispatcher import clock, publish
from portal.extensions import db
from portal.models import Delivery, EventType, Subscription
from tests.factories import make_subscription
from tests.receiver import Receiver, Reply
from tests.support import wait_until

TYPES = ("invoice.created", "payment.succeeded", "customer.created", "invoice.paid")


def _example(name: str) -> dict:
    return db.session.scalar(select(EventType.example).where(EventType.name == name))


def publish_day_of_traffic(tenant_id: str, receiver: Receiver, monkeypatch) -> None:
    """Two more endpoints and about a hundred events spread over the last 24 hours."""
    make_subscription(
        tenant_id,
        receiver.url("/analytics"),
        ["invoice.*", "payment.*", "customer.*"],
        description="Analytics pipeline",
    )
    make_subscription(
        tenant_id, receiver.url("/crm"), ["customer.*"], description="Legacy CRM sync"
    )
    receiver.script("/crm", default=Reply(status=502, body=b"Bad Gateway"))
    examples = {name: _example(name) for name in TYPES}
    now = clock.now()
    with monkeypatch.context() as patch:
        for hours_ago in range(23, -1, -1):
            moment = now - timedelta(hours=hours_ago, minutes=20)
            patch.setattr("dispatcher.clock.now", lambda moment=moment: moment)
            for index in range(2 + (hours_ago * 7) % 5):
                name = TYPES[(hours_ago + index) % len(TYPES)]
                publish(name, examples[name], tenant_id=tenant_id)
            db.session.commit()
    wait_until_delivered()


def wait_until_delivered(timeout: float = 90.0) -> None:
    """Until the worker has finished every delivery (retries included), except those its
    circuit breaker holds back for a failing endpoint (they wait for the endpoint to recover)."""
    wait_until(
        lambda: not _pending(),
        timeout,
        interval=0.25,
        what=lambda: f"the worker to deliver them all ({_pending()} deliveries still pending)",
    )


def _pending() -> int:
    """Deliveries still pending, not counting those held back by an open circuit."""
    db.session.expire_all()
    pending = db.session.scalar(
        select(func.count())
        .select_from(Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.status == "pending", Subscription.circuit_opened_at.is_(None))
    )
    db.session.rollback()
    return pending
