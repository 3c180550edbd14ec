"""`publish()`: the one call internal modules make, inside their own transaction.

The event and its deliveries are rows in the caller's transaction (a transactional outbox). Only
when that transaction commits is a drain job enqueued; a rollback leaves no row and no job. If
Redis is down at that moment the rows still stand, and the sweeper enqueues them later.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import jsonschema
import referencing.exceptions
from flask import has_app_context
from sqlalchemy import Row, func, insert, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from dispatcher import clock, queues, store
from dispatcher.errors import (
    ArchivedEventType,
    IdempotencyConflict,
    InvalidIdempotencyKey,
    InvalidPayload,
    PayloadTooLarge,
    UnknownEventType,
)
from dispatcher.filters import data_filter_matches, matches
from dispatcher.ids import new_id
from dispatcher.models import Delivery, Event, EventType, Subscription
from dispatcher.settings import get_settings

log = logging.getLogger(__name__)

_KICKS = "hookline_kicks"


def encode_data(data: Any, max_bytes: int) -> bytes:
    """The data as compact JSON, or PublishError when it is not a JSON object or is too big."""
    if not isinstance(data, dict):
        raise InvalidPayload("data must be a JSON object")
    try:
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidPayload(f"data cannot be encoded as JSON: {exc}") from None
    raw = _utf8(encoded)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"data is {len(raw)} bytes; the limit is {max_bytes} bytes")
    return raw


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload("data contains text that is not valid Unicode") from None


def fingerprint(event_type: str, data: Any) -> str:
    """A stable hash of what was published, to tell a true repeat from a reused key."""
    canonical = json.dumps([event_type, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_event_type(session: Session, tenant_id: str, name: str) -> Row | None:
    """The tenant's custom type of that name, else the standard one (plain columns: this runs
    on every publish, and loading ORM objects cost more than the query)."""
    types = EventType.__table__.c  # Core columns: the ORM's statement handling costs more here
    candidates = session.execute(
        select(types.tenant_id, types.name, types.archived, types.schema, types.example).where(
            types.name == name, or_(types.tenant_id == tenant_id, types.tenant_id.is_(None))
        )
    ).all()
    custom = [c for c in candidates if c.tenant_id is not None]
    return (custom or candidates or [None])[0]


@functools.lru_cache(maxsize=1024)
def _cached_validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A checked validator for `schema`, built once: `jsonschema.validate` re-checks the schema
    itself on every call, which cost more than the rest of publish()."""
    return _cached_validator(json.dumps(schema, sort_keys=True))


def validate(session: Session, tenant_id: str, event_type: str, data: Any) -> None:
    """Raise a PublishError subclass unless the tenant may publish `data` as `event_type`."""
    if not isinstance(event_type, str) or not event_type or "\x00" in event_type:
        raise UnknownEventType("the event type must be a non-empty string without NUL")
    encode_data(data, get_settings().max_payload_bytes)
    found = find_event_type(session, tenant_id, event_type)
    if found is None:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    if found.archived:
        raise ArchivedEventType(f"event type {event_type!r} is archived")
    if found.schema:
        try:
            error = jsonschema.exceptions.best_match(_validator(found.schema).iter_errors(data))
            if error is not None:
                raise error
        except jsonschema.ValidationError as exc:
            where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
            raise InvalidPayload(
                f"data does not match the schema of {event_type!r} at {where}: {exc.message}"
            ) from None
        except (jsonschema.SchemaError, referencing.exceptions.Unresolvable):
            raise InvalidPayload(
                f"the JSON Schema of {event_type!r} is broken, so no data can be checked against it"
            ) from None


MAX_IDEMPOTENCY_KEY_LENGTH = 255


def check_idempotency_key(key: Any) -> str | None:
    """The key (None for none), or InvalidIdempotencyKey unless it is non-blank text of at most
    255 printable characters. The one rule: the API, the portal and the CLI apply it through
    `publish()`, and the API's schema takes its length from here."""
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise InvalidIdempotencyKey("the idempotency key must be non-empty text")
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(
            f"the idempotency key must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters"
        )
    return key


@dataclass(frozen=True)
class Published:
    """What one publish did: the event, how many deliveries it has, and whether it was a
    replay (its idempotency key matched an earlier event, so nothing new was written)."""

    event: Event
    deliveries: int
    replayed: bool


def publish(
    event_type: str,
    data: dict[str, Any],
    *,
    tenant_id: str,
    idempotency_key: str | None = None,
    db: Session | None = None,
) -> Event:
    """Record an event and one delivery per active subscription that wants it.

    The rows go into the caller's session (`db`, or Flask-SQLAlchemy's) and never commit by
    themselves: the caller's commit is what publishes, and the drain job is enqueued after it.
    A rollback leaves nothing. Raises a PublishError subclass, having written nothing, when the
    event is refused. Returns the event (for a repeated idempotency key, the first one); see
    `publish_outcome` for the delivery count and whether it was a repeat.
    """
    return publish_outcome(
        event_type, data, tenant_id=tenant_id, idempotency_key=idempotency_key, db=db
    ).event


def publish_outcome(
    event_type: str,
    data: dict[str, Any],
    *,
    tenant_id: str,
    idempotency_key: str | None = None,
    db: Session | None = None,
) -> Published:
    """`publish()`, telling what it did: the event, its delivery count and whether it was a
    replay (what the API answers with, so the portal's services need not look again)."""
    session = db if db is not None else store.db.session()
    key = check_idempotency_key(idempotency_key)
    validate(session, tenant_id, event_type, data)
    digest = fingerprint(event_type, data)
    if key is not None:
        earlier = _earlier_event(session, tenant_id, key, digest)
        if earlier is not None:
            return Published(earlier, _delivery_count(session, earlier.id), replayed=True)
    event, rows = _event_and_deliveries(session, event_type, data, tenant_id, key, digest)
    _write(session, event, rows)
    return Published(event, len(rows), replayed=False)


def publish_about(
    event_type: str, data: dict[str, Any], *, tenant_id: str, about: str
) -> Event | None:
    """Publish an operational event about the endpoint `about` to the tenant's *other*
    endpoints: telling an endpoint about itself could loop (a failure reported to the endpoint
    that fails). Same transaction rules as `publish`, but nothing is written (None) when no
    endpoint wants it: a tenant that does not listen should not store a row per failure."""
    session = store.db.session()
    validate(session, tenant_id, event_type, data)
    digest = fingerprint(event_type, data)
    event, rows = _event_and_deliveries(
        session, event_type, data, tenant_id, None, digest, skip=about
    )
    if not rows:
        return None
    _write(session, event, rows)
    return event


def _earlier_event(session: Session, tenant_id: str, key: str, digest: str) -> Event | None:
    """The tenant's event published with `key` before, if any; IdempotencyConflict when it was
    published with another type or data."""
    existing = session.scalar(
        select(Event).where(Event.tenant_id == tenant_id, Event.idempotency_key == key)
    )
    if existing is not None and existing.fingerprint != digest:
        raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different event")
    return existing


def _delivery_count(session: Session, event_id: str) -> int:
    query = select(func.count()).select_from(Delivery).where(Delivery.event_id == event_id)
    return session.scalar(query) or 0


def _event_and_deliveries(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    tenant_id: str,
    idempotency_key: str | None,
    digest: str,
    skip: str | None = None,
) -> tuple[Event, list[dict[str, Any]]]:
    """The event to insert and one delivery row per active subscription that wants it (but
    `skip`). Every read comes before the first write: on SQLite a transaction holds the
    database's one write lock from its first write to its commit, and workers wait for it."""
    endpoints = Subscription.__table__.c
    subscriptions = session.execute(
        select(endpoints.id, endpoints.events, endpoints.data_filter).where(
            endpoints.tenant_id == tenant_id, endpoints.is_active.is_(True)
        )
    ).all()
    # A plain record of the row (Core insert, not attached to the session): the ORM's unit of
    # work cost more than the SQL itself here.
    event = Event(
        id=new_id("event"),
        tenant_id=tenant_id,
        type=event_type,
        data=data,
        idempotency_key=idempotency_key,
        fingerprint=digest,
        created_at=clock.now(),
    )
    rows = [
        {
            "tenant_id": tenant_id,
            "event_id": event.id,
            "subscription_id": sub_id,
            "event_type": event_type,
            "next_attempt_at": event.created_at,
            "created_at": event.created_at,
            "updated_at": event.created_at,
        }
        for sub_id, event_filter, data_filter in subscriptions
        if sub_id != skip
        and matches(event_filter or [], event_type)
        and data_filter_matches(sub_id, data_filter, data)
    ]
    return event, rows


def _write(session: Session, event: Event, rows: list[dict[str, Any]]) -> None:
    """Insert the event and its deliveries, and ask for a drain once the session commits."""
    columns = ("id", "tenant_id", "type", "data", "idempotency_key", "fingerprint", "created_at")
    session.execute(insert(Event.__table__), {name: getattr(event, name) for name in columns})
    if rows:
        session.execute(insert(Delivery.__table__), rows)
        request_drain(session)


def request_drain(session: Session, priority: bool = False) -> None:
    """Enqueue a drain job once `session` commits (never before, never after a rollback)."""
    session.info.setdefault(_KICKS, set()).add(priority)


@sa_event.listens_for(Session, "after_commit")
def _kick_after_commit(session: Session) -> None:
    kicks = session.info.pop(_KICKS, None)
    if not kicks:
        return
    if not has_app_context():
        log.warning("committed deliveries outside an app context; the sweeper will send them")
        return
    for priority in sorted(kicks):
        queues.kick(priority)


@sa_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_KICKS, None)
