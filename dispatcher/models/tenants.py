"""Tenants: the isolation boundary every outbox row belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.ids import id_factory
from dispatcher.models.base import Base
from dispatcher.models.types import UTCDateTime, utcnow

TENANT_ID_LENGTH = 64


class Tenant(Base):
    """The isolation boundary: every other row belongs to exactly one tenant."""

    __tablename__ = "hookline_tenants"

    # 64: a host's own tenant ids (a UUID is 36 characters) as well as Hookline's 32-character
    # ids; every tenant_id column takes its type from this one.
    id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), primary_key=True, default=id_factory("tenant")
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
