"""Transactional email to the organization's customers, and the `email.*` webhooks about it.

There is no mail server in the example: an address under the reserved `.invalid` top-level
domain bounces (`email.failed`), every other one is accepted (`email.sent`)."""

from __future__ import annotations

import re
from typing import Any

from dispatcher import publish
from portal.services.event_types import create_custom_type, known_names

from .extensions import db
from .models import Email, iso, utcnow

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Event types the platform publishes that Hookline's standard catalog does not ship (yet):
# each organization gets them as custom types when it signs up (see `register_event_types`).
CUSTOM_EVENT_TYPES: dict[str, dict[str, Any]] = {
    "email.failed": {
        "description": "Fires when a transactional email could not be delivered to its recipient.",
        "example": {
            "message_id": "msg_4f1c9a7e2b3d5e6f",
            "to": "billing@acme.invalid",
            "subject": "Invoice inv_8f2a1c3b4d5e6f70",
            "template": "invoice_created",
            "error": "the recipient's domain does not exist",
            "failed_at": "2024-05-14T10:01:12Z",
        },
    },
}


class InvalidRecipient(ValueError):
    """The address cannot be an email address: the caller's whole unit of work is refused."""


def register_event_types(org_id: str) -> None:
    """Give a new organization the custom event types it needs, in the caller's transaction
    (a type that later joins Hookline's standard catalog is simply not added again)."""
    present = known_names(org_id)
    for name, spec in CUSTOM_EVENT_TYPES.items():
        if name not in present:
            create_custom_type(org_id, name, spec["description"], spec["example"])


def send_email(org_id: str, to: str, subject: str, template: str) -> Email:
    """Send one email and publish `email.sent` or `email.failed`, both in the caller's
    transaction: the email row and its webhook are committed, or rolled back, together."""
    to = to.strip().lower()
    if not _ADDRESS.match(to):
        raise InvalidRecipient(f"{to!r} is not an email address")
    bounced = to.endswith(".invalid")
    email = Email(
        org_id=org_id,
        to=to,
        subject=subject,
        template=template,
        status="failed" if bounced else "sent",
        error="the recipient's domain does not exist" if bounced else None,
    )
    db.session.add(email)
    db.session.flush()  # the row gets its id, and the database its say, before the event
    data = {"message_id": email.id, "to": to, "subject": subject, "template": template}
    if bounced:
        publish(
            "email.failed",
            {**data, "error": email.error, "failed_at": iso(utcnow())},
            tenant_id=org_id,
        )
    else:
        publish("email.sent", {**data, "sent_at": iso(utcnow())}, tenant_id=org_id)
    return email
