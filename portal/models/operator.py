"""Service mode: the operators who provision tenants, and the sign-in links they mint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.ids import new_id
from dispatcher.models import Base
from dispatcher.models.types import UTCDateTime, utcnow
from portal.models.accounts import StoredKeyColumns

__all__ = ["OperatorKey", "PortalLink"]


def _ids(prefix: str) -> Callable[[], str]:
    """Ids like the dispatcher's (a prefix and a time-sortable ULID), under a prefix of the
    portal's own: the dispatcher's table of prefixes names only its own kinds of row."""
    return lambda: f"{prefix}_{new_id('api_key').partition('_')[2]}"


class OperatorKey(StoredKeyColumns, Base):
    """A bearer token for the operator API; only its SHA-256 and a display prefix are stored.

    Keys listed in HOOKLINE_OPERATOR_KEYS work too and have no row."""

    __tablename__ = "hookline_operator_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_ids("opk"))


class PortalLink(Base):
    """A single-use sign-in link to one tenant's portal; only the token's SHA-256 is stored.

    `used_at` is set by the one UPDATE that consumes it; the browser session it opened lasts
    while the row does (see portal.services.operator.LINK_SESSION_LIFETIME)."""

    __tablename__ = "hookline_portal_links"
    __table_args__ = (Index("ix_hookline_portal_links_tenant_expires", "tenant_id", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=_ids("lnk"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("hookline_tenants.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
