"""Publishing and reading events for the API, the portal and the CLI.

`publish_event` wraps `dispatcher.publishing.publish_outcome` to turn its exceptions into
ServiceErrors, so every surface (the API, the CLI) refuses the same input and answers a repeat
the same way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dispatcher.errors import (
    ArchivedEventType,
    IdempotencyConflict,
    InvalidIdempotencyKey,
    PublishError,
    UnknownEventType,
)
from dispatcher.message import body_for
from dispatcher.publishing import Published, fingerprint, publish_outcome
from dispatcher.store import db
from portal.models import Delivery, Event
from portal.services import ServiceError, find_owned
from portal.services.paging import Page, fetch_page


def _publish_error(exc: PublishError) -> ServiceError:
    if isinstance(exc, InvalidIdempotencyKey):
        # A request problem like any other field's (the API's validation-error), not a code.
        return ServiceError(str(exc), field="idempotency_key")
    if isinstance(exc, IdempotencyConflict):
        field = "idempotency_key"
    elif isinstance(exc, UnknownEventType | ArchivedEventType):
        field = "type"
    else:
        field = "data"
    return ServiceError(str(exc), field=field, code=exc.code)


def publish_event(
    tenant_id: str, type: str, data: Any, idempotency_key: str | None = None
) -> Published:
    """Publish an event; returns what `publish_outcome` tells (the event, how many deliveries
    it has, whether it was a replay).

    With `idempotency_key` (checked by dispatcher.publishing.check_idempotency_key), a repeat
    of the same type and data returns the first event as a replay and makes no new
    deliveries; the same key with another body raises ServiceError(code="idempotency_conflict").
    Other refusals carry the dispatcher's code (unknown_event_type, archived_event_type,
    invalid_payload, payload_too_large). Nothing is written on refusal; the caller commits on
    success.

    If a concurrent publish with the same key commits first, the insert fails on the unique
    key and the session is rolled back: the caller's unit of work must hold only this publish
    (the API's and the CLI's do). A savepoint would spare the rest, but on SQLite it turns
    the write into a read-then-write that fails at once under concurrency. The winner's event
    is then returned as a replay.
    """
    try:
        return publish_outcome(type, data, tenant_id=tenant_id, idempotency_key=idempotency_key)
    except PublishError as exc:
        raise _publish_error(exc) from None
    except IntegrityError:
        if idempotency_key is None:
            raise
        db.session.rollback()
        return _winner(tenant_id, idempotency_key, type, data)


def _winner(tenant_id: str, key: str, type: str, data: Any) -> Published:
    """The event a concurrent publish with `key` committed, as a replay (or the conflict)."""
    event = db.session.scalar(
        select(Event).where(Event.tenant_id == tenant_id, Event.idempotency_key == key)
    )
    if event is None:
        raise ServiceError("the event could not be published; try again", code="conflict")
    if event.fingerprint != fingerprint(type, data):
        conflict = IdempotencyConflict(
            f"idempotency key {key!r} was already used for a different event"
        )
        raise _publish_error(conflict) from None
    return Published(event, delivery_count(event.id), replayed=True)


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
    return find_owned(Event, tenant_id, event_id, "event")


def wire_body(event: Event) -> bytes:
    """The exact bytes Hookline POSTs for `event`, as a consumer receives them."""
    return body_for(event.id, event.type, event.created_at, event.tenant_id, event.data)
