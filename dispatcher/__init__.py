"""The dispatcher: publish events, sign and deliver them, retry, and never lose one.

Internal modules need only `publish`:

    from dispatcher import publish
    event = publish("invoice.created", {"invoice_id": "inv_123"}, tenant_id=tenant.id)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from dispatcher import connection, settings, store
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


def init_app(
    app: Flask, *, db: SQLAlchemy, also_required: Mapping[str, bool] | None = None
) -> None:
    """Read the app's settings (dispatcher/settings.py), then connect the dispatcher to its
    database and Redis (starting the embedded one if needed). `db` is the app's
    Flask-SQLAlchemy instance (a host app passes its own): every read and write of Hookline's
    goes through its session (see dispatcher/store.py). `also_required` names settings of the
    app's own that production needs too, and whether they are set."""
    instance = Path(app.config.get("HOOKLINE_INSTANCE_PATH") or app.instance_path)
    settings.init_app(app, os.environ, instance, also_required=also_required)
    store.init_app(app, db)
    connection.init_app(app)
