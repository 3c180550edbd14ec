"""Card payments for invoices, and the `payment.*` webhooks about them.

There is no card processor in the example: Stripe's test card numbers decide the outcome
(4000 0000 0000 0002 is declined, any other number is accepted)."""

from __future__ import annotations

from dispatcher import publish

from .extensions import db
from .models import Invoice, Payment, iso, utcnow

DECLINED_CARD = "4000000000000002"


class PaymentError(Exception):
    """The payment cannot change that way (refunding a failed payment, say)."""


def charge(invoice: Invoice, card_number: str) -> Payment:
    """Charge the invoice's amount to a card; publishes `payment.succeeded` or
    `payment.failed` in the caller's transaction, beside the payment row."""
    digits = "".join(ch for ch in card_number if ch.isdigit())
    if len(digits) < 12:
        raise PaymentError("a card number has at least 12 digits")
    declined = digits == DECLINED_CARD
    payment = Payment(
        org_id=invoice.org_id,
        invoice_id=invoice.id,
        amount=invoice.amount_due,
        currency=invoice.currency,
        card_last4=digits[-4:],
        status="failed" if declined else "succeeded",
        failure_code="card_declined" if declined else None,
    )
    db.session.add(payment)
    db.session.flush()
    data = {
        "payment_id": payment.id,
        "invoice_id": invoice.id,
        "amount": payment.amount,
        "currency": payment.currency,
    }
    if declined:
        failure = {"failure_code": "card_declined", "failure_message": "Your card was declined."}
        publish(
            "payment.failed",
            {**data, **failure, "failed_at": iso(utcnow())},
            tenant_id=invoice.org_id,
        )
    else:
        card = {"method": "card", "card_last4": payment.card_last4}
        publish(
            "payment.succeeded",
            {**data, **card, "succeeded_at": iso(utcnow())},
            tenant_id=invoice.org_id,
        )
    return payment


def refund(payment: Payment) -> Payment:
    """Refund a successful payment in full; publishes `payment.refunded`."""
    if payment.status != "succeeded":
        raise PaymentError(f"a {payment.status} payment cannot be refunded")
    payment.status = "refunded"
    data = {
        "payment_id": payment.id,
        "invoice_id": payment.invoice_id,
        "amount_refunded": payment.amount,
        "currency": payment.currency,
        "refunded_at": iso(utcnow()),
    }
    publish("payment.refunded", data, tenant_id=payment.org_id)
    return payment
