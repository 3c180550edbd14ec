"""Cursor pagination shared by every list: newest first, the cursor is the last id seen.

Ids are time-sortable, so "everything older than this id" is a stable page boundary even while
new rows arrive, and it walks an index on (tenant_id, id) instead of counting an OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select

from dispatcher.store import db
from portal.services import ServiceError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 64


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: `items`, and `next_cursor` (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def check_limit(limit: int | None) -> int:
    """The page size, 1–100 (50 when not given)."""
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ServiceError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def check_cursor(cursor: str | None) -> str | None:
    """A cursor is an id we handed out; anything else is refused rather than silently ignored."""
    if cursor is None or cursor == "":
        return None
    if (
        not isinstance(cursor, str)
        or len(cursor) > MAX_CURSOR_LENGTH
        or not (cursor.isascii() and cursor.isprintable())
    ):
        raise ServiceError(
            "cursor is not valid; use next_cursor from a previous page", field="cursor"
        )
    return cursor


def page_of_rows(rows: Sequence, limit: int) -> Page:
    """A page from rows fetched with `limit + 1`, for services that return plain lists."""
    items = list(rows[:limit])
    return Page(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


def fetch_page(query: Select, id_column, limit: int | None, cursor: str | None) -> Page:
    """Run `query` newest first, `limit` rows after `cursor` (one extra row tells if more exist)."""
    limit = check_limit(limit)
    cursor = check_cursor(cursor)
    if cursor is not None:
        query = query.where(id_column < cursor)
    rows: Sequence = db.session.scalars(query.order_by(id_column.desc()).limit(limit + 1)).all()
    return page_of_rows(rows, limit)
