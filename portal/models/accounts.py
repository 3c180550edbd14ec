"""The people and programs that act for a tenant (the tenant itself is the dispatcher's)."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.ids import id_factory
from dispatcher.models import Base, Tenant
from dispatcher.models.types import UTCDateTime, utcnow

__all__ = ["ApiKey", "StoredKeyColumns", "Tenant", "User"]


class User(UserMixin, Base):
    """A tenant admin who signs in to the portal."""

    __tablename__ = "hookline_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("user"))
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("hookline_tenants.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StoredKeyColumns:
    """What a bearer key's row keeps (tenant API keys and operator keys alike): its SHA-256 and
    a display prefix, never the key (see portal.services.accounts.new_key and live_key). The
    columns follow the mapped class's own (id, tenant_id), as the tables have them."""

    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiKey(StoredKeyColumns, Base):
    """A bearer token for the JSON API; only its SHA-256 and a display prefix are stored."""

    __tablename__ = "hookline_api_keys"
    __table_args__ = (Index("ix_hookline_api_keys_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=id_factory("api_key"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("hookline_tenants.id", ondelete="CASCADE"))
