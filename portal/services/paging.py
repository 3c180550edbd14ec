"""Cursor pagination shared by every list (events, deliveries, endpoints, event types, tenants)
on every surface: newest first, the cursor is the last id seen.

Ids are time-sortable, so "everything older than this id" is a stable page boundary even while
new rows arrive, and it walks an index on (tenant_id, id) instead of counting an OFFSET. The
catalog, listed by name, pages by name the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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


def check_cursor(cursor: str | None, max_length: int = MAX_CURSOR_LENGTH) -> str | None:
    """A cursor is a key we handed out; anything else is refused rather than silently ignored
    (a NUL, for one, would reach the database, which PostgreSQL answers with an error)."""
    if cursor is None or cursor == "":
        return None
    if (
        not isinstance(cursor, str)
        or len(cursor) > max_length
        or not (cursor.isascii() and cursor.isprintable())
    ):
        raise ServiceError(
            "cursor is not valid; use next_cursor from a previous page", field="cursor"
        )
    return cursor


def _id(item: Any) -> str:
    return item.id


def paginate(
    rows_after: Callable[[str | None, int], Sequence[T]],
    limit: int | None,
    cursor: str | None,
    *,
    key: Callable[[T], str] = _id,
    max_cursor_length: int = MAX_CURSOR_LENGTH,
) -> Page[T]:
    """The one pager of every list (the API's and the portal's): checks `limit` and `cursor`,
    asks `rows_after(cursor, n)` for at most n rows past the cursor in list order, and makes the
    page; one row more than `limit` tells that another page exists. `key` is what the cursor
    holds (the id, unless the list is ordered by something else)."""
    limit = check_limit(limit)
    cursor = check_cursor(cursor, max_cursor_length)
    rows = rows_after(cursor, limit + 1)
    items = list(rows[:limit])
    return Page(items=items, next_cursor=key(items[-1]) if len(rows) > limit else None)


def fetch_page(query: Select, id_column, limit: int | None, cursor: str | None) -> Page:
    """`paginate` over a query: newest first by `id_column`, the rows older than `cursor`."""

    def rows_after(cursor: str | None, count: int) -> Sequence:
        page = query.where(id_column < cursor) if cursor is not None else query
        return db.session.scalars(page.order_by(id_column.desc()).limit(count)).all()

    return paginate(rows_after, limit, cursor)
