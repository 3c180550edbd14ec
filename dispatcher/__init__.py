"""The dispatcher: publish events, sign and deliver them, retry, and never lose one.

Internal modules need only `publish`:

    from dispatcher import publish
    event = publish("invoice.created", {"invoice_id": "inv_123"}, tenant_id=tenant.id)
"""

from __future__ import annotations

from flask import Flask

from dispatcher import connection
from dispatcher.errors import (
    ArchivedEventType,
    IdempotencyConflict,
    InvalidIdempotencyKey,
    InvalidPayload,
    PayloadTooLarge,
    PublishError,
    UnknownEventType,
)
from dispatcher.publishing import publish

__all__ = [
    "ArchivedEventType",
    "IdempotencyConflict",
    "InvalidIdempotencyKey",
    "InvalidPayload",
    "PayloadTooLarge",
    "PublishError",
    "UnknownEventType",
    "init_app",
    "publish",
]


def init_app(app: Flask) -> None:
    """Connect the dispatcher to the app's Redis (starting the embedded one if needed)."""
    connection.init_app(app)
