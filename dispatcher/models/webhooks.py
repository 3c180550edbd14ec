"""Event types, endpoints (subscriptions), events, deliveries and their attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.ids import id_factory
from dispatcher.models.base import Base
from dispatcher.models.types import UTCDateTime, utcnow
from dispatcher.ssrf import MAX_URL_LENGTH
from dispatcher.states import DeliveryStatus, Trigger

_PENDING_ONLY = f"status = '{DeliveryStatus.PENDING}'"


class EventType(Base):
    """A catalog entry. Standard types have no tenant; custom types belong to one."""

    __tablename__ = "hookline_event_types"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_hookline_event_types_tenant_name"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("event_type"))
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("hookline_tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), index=True)
    group: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    example: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Subscription(Base):
    """Where a tenant's events go (an "endpoint" in the portal)."""

    __tablename__ = "hookline_subscriptions"
    __table_args__ = (Index("ix_hookline_subscriptions_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=id_factory("subscription")
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("hookline_tenants.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Deliveries per second across every worker (None: no cap besides adaptive concurrency).
    rate_limit: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optional filter on the event's data (dispatcher/filters.py); None: every event of its types.
    data_filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # hmac (whsec_ secrets, v1 signatures) or ed25519 (whsk_ private keys, v1a signatures).
    signature_scheme: Mapped[str] = mapped_column(String(16), default="hmac", server_default="hmac")
    # Fernet token of a JSON list of {"secret", "expires_at"}; the first entry is the primary.
    secrets_encrypted: Mapped[str] = mapped_column(Text)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Endpoint health, written by the workers (dispatcher/health.py is the only writer).
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The circuit breaker opened at this time (None: closed, deliveries flow).
    circuit_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # No request may be sent before this time: a breaker pause, or a receiver's Retry-After.
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Length of the current breaker pause; it doubles after each failed probe.
    pause_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # One worker holds the right to probe an open breaker until this time.
    probe_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Event(Base):
    """Something that happened in a tenant, published once and delivered to many endpoints."""

    __tablename__ = "hookline_events"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "idempotency_key", name="uq_hookline_events_tenant_idempotency"
        ),
        Index("ix_hookline_events_tenant_id_id", "tenant_id", "id"),
        Index("ix_hookline_events_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("event"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("hookline_tenants.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(200))
    data: Mapped[Any] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    # SHA-256 of the canonical (type, data) so a reused key with another body can be refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delivery(Base):
    """One event on its way to one subscription; the database row is the source of truth."""

    __tablename__ = "hookline_deliveries"
    __table_args__ = (
        Index("ix_hookline_deliveries_tenant_id_id", "tenant_id", "id"),
        Index("ix_hookline_deliveries_tenant_status_id", "tenant_id", "status", "id"),
        # Claims walk this one endpoint at a time (round-robin), oldest due first within each.
        # Partial: only pending rows, so a finished delivery leaves it instead of moving within
        # it, and it stays the size of the work to do, not of the history.
        Index(
            "ix_hookline_deliveries_pending_due",
            "status",
            "priority",
            "subscription_id",
            "next_attempt_at",
            sqlite_where=text(_PENDING_ONLY),
            postgresql_where=text(_PENDING_ONLY),
        ),
        Index("ix_hookline_deliveries_subscription_status", "subscription_id", "status"),
        Index("ix_hookline_deliveries_event", "event_id"),
        Index("ix_hookline_deliveries_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("delivery"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("hookline_tenants.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("hookline_events.id", ondelete="CASCADE"))
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("hookline_subscriptions.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    # The trigger of the next attempt (a Trigger). Once the row exists, this, `status` (a
    # DeliveryStatus) and `next_attempt_at` are written by dispatcher/transitions.py only.
    next_trigger: Mapped[str] = mapped_column(String(16), default=Trigger.AUTO)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A worker holds the delivery until this time; an expired lease means the worker died.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_response_status: Mapped[int | None] = mapped_column(Integer)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Attempt(Base):
    """One HTTP try of a delivery, recorded by the worker that made it."""

    __tablename__ = "hookline_attempts"
    __table_args__ = (
        Index("ix_hookline_attempts_delivery_number", "delivery_id", "number"),
        Index("ix_hookline_attempts_tenant_started", "tenant_id", "started_at"),
        Index("ix_hookline_attempts_started_at", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("attempt"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("hookline_tenants.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("hookline_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16), default=Trigger.AUTO)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    request_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
