"""Tenants, tenant admins and API keys."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from dispatcher import clock
from dispatcher.store import db
from portal.models import ApiKey, Tenant, User
from portal.services import NotFound, ServiceError, find_owned
from portal.services.inputs import text_problem

API_KEY_PREFIX = "hl_"
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
# The limits of every surface (the operator API's schemas take theirs from here).
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 320
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


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


# A host's own tenant id: what fits the id column and is safe in a URL and a log line.
TENANT_ID_MAX_LENGTH = 32
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


def create_api_key(tenant_id: str, name: str = "default") -> tuple[ApiKey, str]:
    """A new API key; returns the row and the key itself, which is shown only this once."""
    get_tenant(tenant_id)
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        tenant_id=tenant_id,
        name=clean_name(name, "key name"),
        prefix=key[:10],
        key_hash=hash_api_key(key),
    )
    db.session.add(row)
    db.session.flush()
    return row, key


def api_key_for(key: str) -> ApiKey | None:
    """The live API key matching `key`, stamping its last use; None if unknown or revoked."""
    if not key or not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        return None
    digest = hash_api_key(key)
    row = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    row.last_used_at = clock.now()
    return row


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
