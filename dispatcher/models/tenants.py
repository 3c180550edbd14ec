"""Tenants: the isolation boundary every outbox row belongs to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.ids import id_factory
from dispatcher.models.base import Base
from dispatcher.models.types import UTCDateTime, utcnow


class Tenant(Base):
    """The isolation boundary: every other row belongs to exactly one tenant."""

    __tablename__ = "hookline_tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("tenant"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
