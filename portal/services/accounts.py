"""Tenants, tenant admins and API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from dispatcher import clock
from dispatcher.models.tenants import TENANT_ID_LENGTH
from dispatcher.store import db
from portal.models import ApiKey, OperatorKey, Tenant, User
from portal.services import NotFound, ServiceError, find_owned
from portal.services.inputs import text_problem

API_KEY_PREFIX = "hl_"
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
# The limits of every surface (the operator API's schemas take theirs from here).
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# Any bearer key, tenant or operator: longer is no key we made (and not worth hashing).
MAX_KEY_LENGTH = 200
# A key's last use is kept to the minute: writing it on every request would make each read a
# write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Random characters of a key shown after its kind's prefix, to tell keys apart in lists.
SHOWN_KEY_CHARACTERS = 7

StoredKey = TypeVar("StoredKey", ApiKey, OperatorKey)


def clean_name(value: str, what: str) -> str:
    """A tenant's or a key's name, stripped: one line of printable text, 1–200 characters."""
    name = (value or "").strip()
    if not name:
        raise ServiceError(f"the {what} must not be empty", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise ServiceError(f"the {what} must be at most {MAX_NAME_LENGTH} characters", field="name")
    problem = text_problem(value, line=True)  # the rule of the API's one-line text fields
    if problem:
        raise ServiceError(f"the {what} {problem}", field="name")
    return name


def create_tenant(name: str) -> Tenant:
    """A new tenant (the caller commits)."""
    tenant = Tenant(name=clean_name(name, "tenant name"))
    db.session.add(tenant)
    db.session.flush()
    return tenant


# A host's own tenant id: what fits the id column (a UUID does) and is safe in a URL and a log
# line.
TENANT_ID_MAX_LENGTH = TENANT_ID_LENGTH
_HOST_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def ensure_tenant(tenant_id: str, name: str) -> Tenant:
    """The tenant with the host's own id `tenant_id`, made if missing, renamed to `name` if
    it differs. Idempotent, so a host may call it on every sign-up or sign-in; like
    `publish()`, it writes in the caller's session and the caller commits."""
    if not isinstance(tenant_id, str) or not _HOST_TENANT_ID.match(tenant_id):
        raise ServiceError(
            "a tenant id must start with a letter or digit and hold only letters, digits and "
            "_ . : -",
            field="id",
        )
    if len(tenant_id) > TENANT_ID_MAX_LENGTH:
        raise ServiceError(
            f"a tenant id must be at most {TENANT_ID_MAX_LENGTH} characters", field="id"
        )
    name = clean_name(name, "tenant name")
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        tenant = Tenant(id=tenant_id, name=name)
        db.session.add(tenant)
    elif tenant.name != name:
        tenant.name = name
    db.session.flush()
    return tenant


def get_tenant(tenant_id: str) -> Tenant:
    """The tenant with that id, or NotFound."""
    # An id with a NUL can match nothing, and PostgreSQL refuses to even compare it.
    usable = isinstance(tenant_id, str) and tenant_id and "\x00" not in tenant_id
    tenant = db.session.get(Tenant, tenant_id) if usable else None
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id!r}")
    return tenant


def create_user(tenant_id: str, email: str, password: str) -> User:
    """A tenant admin who can sign in to the portal (the caller commits)."""
    get_tenant(tenant_id)
    email = _check_email(email)
    _check_password(password)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise ServiceError("a user with that email already exists", field="email")
    user = User(tenant_id=tenant_id, email=email, password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.flush()
    return user


def _check_email(email: str | None) -> str:
    usable = isinstance(email, str) and text_problem(email, line=True) is None
    email = email.strip().lower() if usable else ""
    if not _EMAIL.match(email) or len(email) > MAX_EMAIL_LENGTH:
        raise ServiceError("enter a valid email address", field="email")
    return email


def _check_password(password: str | None) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ServiceError(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ServiceError(
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    if text_problem(password, line=False):
        raise ServiceError("the password must not contain NUL characters", field="password")


def authenticate(email: str, password: str) -> User | None:
    """The user with these credentials, or None (the same answer for any mismatch)."""
    email = (email or "").strip().lower()
    user = None if "\x00" in email else db.session.scalar(select(User).where(User.email == email))
    if user is None:
        check_password_hash(generate_password_hash("timing"), password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def hash_api_key(key: str) -> str:
    """How an API key is stored: its SHA-256 (keys are long random strings, so no salt)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(kind: str) -> tuple[str, dict[str, str]]:
    """A new random bearer key starting with `kind` (`hl_`, `hlop_`), and the columns that
    store it: the display `prefix` and the `key_hash`. The key itself is never stored."""
    key = kind + secrets.token_urlsafe(32)
    return key, {"prefix": key[: len(kind) + SHOWN_KEY_CHARACTERS], "key_hash": hash_api_key(key)}


def is_key_shaped(token: str | None, kind: str) -> bool:
    """Whether `token` could be a key of that kind at all (checked before any hashing)."""
    return bool(token) and token.startswith(kind) and len(token) <= MAX_KEY_LENGTH


def live_key(model: type[StoredKey], token: str, kind: str) -> StoredKey | None:
    """The unrevoked row of `model` (ApiKey, OperatorKey) storing `token`, its last use
    stamped to the minute (the caller commits when the row is dirty); None otherwise."""
    if not is_key_shaped(token, kind):
        return None
    digest = hash_api_key(token)
    row = db.session.scalar(select(model).filter_by(key_hash=digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def create_api_key(tenant_id: str, name: str = "default") -> tuple[ApiKey, str]:
    """A new API key; returns the row and the key itself, which is shown only this once."""
    get_tenant(tenant_id)
    key, stored = new_key(API_KEY_PREFIX)
    row = ApiKey(tenant_id=tenant_id, name=clean_name(name, "key name"), **stored)
    db.session.add(row)
    db.session.flush()
    return row, key


def api_key_for(key: str) -> ApiKey | None:
    """The live API key matching `key` (see live_key); None if unknown or revoked."""
    return live_key(ApiKey, key, API_KEY_PREFIX)


def list_api_keys(tenant_id: str) -> list[ApiKey]:
    """The tenant's API keys, newest first."""
    return list(
        db.session.scalars(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at.desc())
        )
    )


def revoke_api_key(tenant_id: str, key_id: str) -> ApiKey:
    """Revoke one of the tenant's keys; it stops working at once."""
    row = find_owned(ApiKey, tenant_id, key_id, "API key")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return row
