"""Service mode: operator keys, tenant provisioning and single-use portal sign-in links.

An operator (a platform that runs Hookline as a separate service) authenticates with an
operator key: one listed in HOOKLINE_OPERATOR_KEYS, or one made by `flask operator-keys
create`, stored like tenant API keys (SHA-256 and a display prefix). Operator keys start with
`hlop_` and tenant API keys with `hl_`, and each API checks its own prefix and its own table,
so neither kind of key ever works where the other is expected.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from dispatcher import clock
from dispatcher.settings import get_settings
from dispatcher.store import db
from portal.config import OPERATOR_KEY_PREFIX
from portal.models import OperatorKey, PortalLink, Tenant
from portal.services import NotFound, ServiceError, accounts
from portal.services.paging import Page, fetch_page

# The app.extensions key that says service mode is on (portal.api.operator.init_app).
SERVICE_MODE = "hookline-operator"

DEFAULT_LINK_SECONDS = 600
MIN_LINK_SECONDS = 30
MAX_LINK_SECONDS = 3600
# How long the browser session a link opens lasts after the click; then it signs in again.
LINK_SESSION_LIFETIME = timedelta(hours=12)
# Each new link deletes at most this many of its tenant's spent ones, so storage stays bounded.
PRUNE_PER_LINK = 100
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


# Keys and link tokens are long random strings, stored as tenant API keys are: their SHA-256.
_digest = accounts.hash_api_key


def service_mode() -> bool:
    """Whether the current app serves the operator API and its sign-in links."""
    return SERVICE_MODE in current_app.extensions


# --- operator keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """Who made an operator request: a key's row id, or `config:<n>` for a configured key."""

    key_id: str


def create_operator_key(name: str) -> tuple[OperatorKey, str]:
    """A new operator key; returns the row and the key itself, shown only this once."""
    key, stored = accounts.new_key(OPERATOR_KEY_PREFIX)
    row = OperatorKey(name=accounts.clean_name(name, "key name"), created_at=clock.now(), **stored)
    db.session.add(row)
    db.session.flush()
    return row, key


def operator_for(token: str) -> Operator | None:
    """The operator whose key `token` is (stamping a stored key's last use), or None."""
    if not accounts.is_key_shaped(token, OPERATOR_KEY_PREFIX):
        return None
    digest = _digest(token)
    # Every configured key is compared, in constant time, whichever matches.
    matches = [hmac.compare_digest(_digest(key), digest) for key in get_settings().operator_keys]
    if any(matches):
        return Operator(f"config:{matches.index(True) + 1}")
    row = accounts.live_key(OperatorKey, token, OPERATOR_KEY_PREFIX)
    return None if row is None else Operator(row.id)


def list_operator_keys() -> list[OperatorKey]:
    """Every stored operator key, newest first."""
    return list(db.session.scalars(select(OperatorKey).order_by(OperatorKey.id.desc())))


def revoke_operator_key(key_id: str) -> OperatorKey:
    """Revoke a stored operator key; it stops working at once."""
    row = db.session.get(OperatorKey, key_id) if "\x00" not in key_id else None
    if row is None:
        raise NotFound(f"no operator key {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return row


# --- tenants ------------------------------------------------------------------------------------


def provision_tenant(name: str, tenant_id: str | None = None) -> tuple[Tenant, bool]:
    """A tenant, and whether it is new (the caller commits).

    Without `tenant_id`, always a new tenant with a Hookline id. With one (the host's own id,
    validated by `accounts.ensure_tenant`'s rules), a repeat of the same request is the same
    tenant again, so a host may retry safely; the same id with another name is a conflict
    rather than a silent rename."""
    if tenant_id is None:
        return accounts.create_tenant(name), True
    existing = db.session.get(Tenant, tenant_id) if "\x00" not in tenant_id else None
    if existing is None:
        try:
            with db.session.begin_nested():  # a concurrent twin may insert it first
                return accounts.ensure_tenant(tenant_id, name), True
        except IntegrityError:
            existing = db.session.get(Tenant, tenant_id)
            if existing is None:
                raise
    if existing.name != accounts.clean_name(name, "tenant name"):
        raise ServiceError(
            f"a tenant {tenant_id!r} exists already with another name", field="id", code="conflict"
        )
    return existing, False


def list_tenants(limit: int, cursor: str | None) -> Page[Tenant]:
    """Every tenant, by id descending (Hookline's own ids sort by creation time)."""
    return fetch_page(select(Tenant), Tenant.id, limit, cursor)


# --- portal sign-in links -----------------------------------------------------------------------


def check_link_seconds(seconds: int | None) -> int:
    """How long a new link stays valid: 600 s unless given, 30–3600."""
    if seconds is None:
        return DEFAULT_LINK_SECONDS
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ServiceError("expires_in must be a whole number of seconds", field="expires_in")
    if not MIN_LINK_SECONDS <= seconds <= MAX_LINK_SECONDS:
        raise ServiceError(
            f"expires_in must be between {MIN_LINK_SECONDS} and {MAX_LINK_SECONDS} seconds",
            field="expires_in",
        )
    return seconds


def mint_link(tenant_id: str, seconds: int | None = None) -> tuple[PortalLink, str]:
    """A new single-use sign-in link to the tenant's portal: the row and its token, which is
    never stored (only its SHA-256) and shown only this once. The caller commits."""
    accounts.get_tenant(tenant_id)
    now = clock.now()
    _prune_spent_links(tenant_id, now)
    token = secrets.token_urlsafe(32)
    link = PortalLink(
        tenant_id=tenant_id,
        token_hash=_digest(token),
        created_at=now,
        expires_at=now + timedelta(seconds=check_link_seconds(seconds)),
    )
    db.session.add(link)
    db.session.flush()
    return link, token


def _prune_spent_links(tenant_id: str, now: datetime) -> None:
    """Delete some of the tenant's links whose sessions have certainly ended (a used link's
    session ends LINK_SESSION_LIFETIME after its use, which came before its expiry)."""
    spent = (
        select(PortalLink.id)
        .where(
            PortalLink.tenant_id == tenant_id,
            PortalLink.expires_at < now - LINK_SESSION_LIFETIME,
        )
        .limit(PRUNE_PER_LINK)
    )
    db.session.execute(
        delete(PortalLink).where(PortalLink.id.in_(spent)),
        execution_options={"synchronize_session": False},
    )


class LinkRefused(Exception):
    """A sign-in link that cannot sign anyone in; `reason` is `unknown`, `used` or `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def consume_link(token: str) -> PortalLink:
    """Spend the link whose token this is and commit, or raise LinkRefused.

    One UPDATE … WHERE used_at IS NULL AND expires_at > now spends it, so of two clicks at the
    same moment only one can sign in; the database decides, not a read before the write."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise LinkRefused("unknown")
    digest, now = _digest(token), clock.now()
    spent = db.session.execute(
        update(PortalLink)
        .where(
            PortalLink.token_hash == digest,
            PortalLink.used_at.is_(None),
            PortalLink.expires_at > now,
        )
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    link = db.session.scalar(select(PortalLink).where(PortalLink.token_hash == digest))
    if spent.rowcount == 1 and link is not None:
        return link
    if link is None:
        raise LinkRefused("unknown")
    raise LinkRefused("used" if link.used_at is not None else "expired")


def link_session(link_id: str) -> PortalLink | None:
    """The used link whose browser session is still open, or None (the session ends)."""
    link = db.session.get(PortalLink, link_id) if "\x00" not in link_id else None
    if link is None or link.used_at is None:
        return None
    if clock.now() >= link.used_at + LINK_SESSION_LIFETIME:
        return None
    return link
