"""Invoices: create, pay and void them, with the `invoice.*` webhooks about each change.

Every function changes rows and publishes in the caller's session and leaves the commit to
the caller (a view, once per request). So a payment, the invoice it settles, the receipt
email and all their webhooks are one transaction: either all of them happen, or none."""

from __future__ import annotations

from dispatcher import publish

from . import communications, payments
from .extensions import db
from .models import Invoice, Payment, iso, utcnow


class BillingError(Exception):
    """The invoice cannot change that way (voiding a paid one, say)."""


def create_invoice(org_id: str, customer_email: str, amount_due: int) -> Invoice:
    """Draft an invoice, publish `invoice.created`, and email it to the customer.

    The email is part of the same unit of work: if the address is no address at all,
    `InvalidRecipient` propagates, the caller rolls back, and the `invoice.created` published
    a moment before vanishes with the invoice (no event, no delivery)."""
    if amount_due <= 0:
        raise BillingError("the amount must be positive")
    invoice = Invoice(org_id=org_id, customer_email=customer_email.strip(), amount_due=amount_due)
    db.session.add(invoice)
    db.session.flush()
    data = {
        "invoice_id": invoice.id,
        "amount_due": invoice.amount_due,
        "currency": invoice.currency,
        "status": invoice.status,
        "customer_email": invoice.customer_email,
        "created_at": iso(utcnow()),
    }
    publish("invoice.created", data, tenant_id=org_id)
    communications.send_email(
        org_id, invoice.customer_email, f"Invoice {invoice.id}", "invoice_created"
    )
    return invoice


def pay_invoice(invoice: Invoice, card_number: str) -> Payment:
    """Charge the invoice; when the charge succeeds, mark it paid, publish `invoice.paid` and
    send a receipt. A declined card leaves the invoice open (its `payment.failed` is kept)."""
    _require_open(invoice, "paid")
    payment = payments.charge(invoice, card_number)
    if payment.status == "succeeded":
        invoice.status = "paid"
        data = {
            "invoice_id": invoice.id,
            "payment_id": payment.id,
            "amount_paid": payment.amount,
            "currency": payment.currency,
            "paid_at": iso(utcnow()),
        }
        publish("invoice.paid", data, tenant_id=invoice.org_id)
        communications.send_email(
            invoice.org_id, invoice.customer_email, f"Receipt for {invoice.id}", "payment_receipt"
        )
    return payment


def void_invoice(invoice: Invoice) -> Invoice:
    """Void an open invoice; publishes `invoice.voided`."""
    _require_open(invoice, "voided")
    invoice.status = "void"
    publish(
        "invoice.voided",
        {"invoice_id": invoice.id, "voided_at": iso(utcnow())},
        tenant_id=invoice.org_id,
    )
    return invoice


def _require_open(invoice: Invoice, change: str) -> None:
    if invoice.status != "open":
        raise BillingError(f"a {invoice.status} invoice cannot be {change}")
