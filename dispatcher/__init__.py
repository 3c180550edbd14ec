"""The dispatcher: publish events, sign and deliver them, retry, and never lose one.

Internal modules need only `publish`:

    from dispatcher import publish
    event = publish("invoice.created", {"invoice_id": "inv_123"}, tenant_id=tenant.id)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask

from dispatcher import connection, store
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

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

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


def init_app(app: Flask, *, db: SQLAlchemy) -> None:
    """Connect the dispatcher to the app's database and Redis (starting the embedded one if
    needed). `db` is the app's Flask-SQLAlchemy instance (a host app passes its own): every
    read and write of Hookline's goes through its session (see dispatcher/store.py)."""
    store.init_app(app, db)
    connection.init_app(app)
