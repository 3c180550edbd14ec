"""Publishing and reading events for the API, the portal and the CLI.

`publish_event` wraps `dispatcher.publish` to turn its exceptions into ServiceErrors and to tell
a fresh event from an idempotent repeat, so every surface answers a repeat the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dispatcher.errors import (
    ArchivedEventType,
    IdempotencyConflict,
    PublishError,
    UnknownEventType,
)
from dispatcher.message import body_for
from dispatcher.publishing import fingerprint, publish
from dispatcher.store import db
from portal.models import Delivery, Event
from portal.services import NotFound, ServiceError
from portal.services.paging import Page, fetch_page

MAX_IDEMPOTENCY_KEY = 255


def _check_idempotency_key(key: Any) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise ServiceError("the idempotency key must be non-empty text", field="idempotency_key")
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise ServiceError(
            f"the idempotency key must be at most {MAX_IDEMPOTENCY_KEY} printable characters",
            field="idempotency_key",
        )
    return key


def _publish_error(exc: PublishError) -> ServiceError:
    if isinstance(exc, IdempotencyConflict):
        field = "idempotency_key"
    elif isinstance(exc, UnknownEventType | ArchivedEventType):
        field = "type"
    else:
        field = "data"
    return ServiceError(str(exc), field=field, code=exc.code)


def _existing(tenant_id: str, key: str) -> Event | None:
    return db.session.scalar(
        select(Event).where(Event.tenant_id == tenant_id, Event.idempotency_key == key)
    )


def publish_event(
    tenant_id: str, type: str, data: Any, idempotency_key: str | None = None
) -> tuple[Event, int, bool]:
    """Publish an event; returns (event, how many deliveries it has, created).

    With `idempotency_key`, a repeat of the same type and data returns the first event with
    created=False and makes no new deliveries; the same key with another body raises
    ServiceError(code="idempotency_conflict"). Other refusals carry the dispatcher's code
    (unknown_event_type, archived_event_type, invalid_payload, payload_too_large). Nothing is
    written on refusal; the caller commits on success. If a concurrent publish with the same
    key wins the race, the session is rolled back (it should hold nothing else) and the
    winner's event is returned as a repeat.
    """
    key = _check_idempotency_key(idempotency_key)
    earlier = _existing(tenant_id, key) if key is not None else None
    try:
        event = publish(type, data, tenant_id=tenant_id, idempotency_key=key)
    except PublishError as exc:
        raise _publish_error(exc) from None
    except IntegrityError:
        # A concurrent publish with the same key committed first. No savepoint here: on SQLite
        # one turns the write into a read-then-write that fails at once under concurrency.
        if key is None:
            raise
        db.session.rollback()
        return _replay(tenant_id, key, type, data)
    created = earlier is None or earlier.id != event.id
    return event, delivery_count(event.id), created


def _replay(tenant_id: str, key: str, type: str, data: Any) -> tuple[Event, int, bool]:
    event = _existing(tenant_id, key)
    if event is None:
        raise ServiceError("the event could not be published; try again", code="conflict")
    if event.fingerprint != fingerprint(type, data):
        conflict = IdempotencyConflict(
            f"idempotency key {key!r} was already used for a different event"
        )
        raise _publish_error(conflict) from None
    return event, delivery_count(event.id), False


def delivery_count(event_id: str) -> int:
    """How many deliveries one event fanned out to."""
    return (
        db.session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.event_id == event_id)
        )
        or 0
    )


def delivery_counts(event_ids: list[str]) -> dict[str, int]:
    """Delivery counts for many events in one query (events with none are 0)."""
    if not event_ids:
        return {}
    rows = db.session.execute(
        select(Delivery.event_id, func.count())
        .where(Delivery.event_id.in_(event_ids))
        .group_by(Delivery.event_id)
    ).all()
    counts = dict.fromkeys(event_ids, 0)
    counts.update({event_id: count for event_id, count in rows})
    return counts


def list_events(
    tenant_id: str, limit: int | None = None, cursor: str | None = None, type: str | None = None
) -> Page[Event]:
    """The tenant's events, newest first; `type` keeps one event type only."""
    query = select(Event).where(Event.tenant_id == tenant_id)
    if type:
        query = query.where(Event.type == type)
    return fetch_page(query, Event.id, limit, cursor)


def get_event(tenant_id: str, event_id: str) -> Event:
    """The tenant's event, or NotFound (also for another tenant's id)."""
    event = db.session.get(Event, event_id) if isinstance(event_id, str) else None
    if event is None or event.tenant_id != tenant_id:
        raise NotFound(f"no event {event_id!r}")
    return event


def wire_body(event: Event) -> bytes:
    """The exact bytes Hookline POSTs for `event`, as a consumer receives them."""
    return body_for(event.id, event.type, event.created_at, event.tenant_id, event.data)
