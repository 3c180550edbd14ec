"""The rules the portal, the JSON API and the CLI share. Views stay thin and call these."""

from __future__ import annotations

from typing import Any, TypeVar

from dispatcher.store import db

Row = TypeVar("Row")


class ServiceError(ValueError):
    """A request the service refuses, with a message fit to show the user.

    `field` names the input at fault when there is one; `code` is a stable machine name.
    """

    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(LookupError):
    """No such object in this tenant (another tenant's object is reported the same way)."""


def find_owned(model: type[Row], tenant_id: str, row_id: Any, what: str) -> Row:
    """The tenant's `model` row with that id, or NotFound naming `what` — also for another
    tenant's id, and for an id no row can have (not text, or holding a NUL, which PostgreSQL
    refuses even to compare)."""
    usable = isinstance(row_id, str) and "\x00" not in row_id
    row = db.session.get(model, row_id) if usable else None
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no {what} {row_id!r}")
    return row
