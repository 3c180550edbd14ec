"""Standard Webhooks signing secrets: making, checking, signing with, and storing them encrypted.

A secret is `whsec_` + base64 of random bytes; the HMAC key is the decoded part. Each
subscription keeps its secrets as one Fernet token (a JSON list, primary first), so the database
never holds a secret in the clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from flask import current_app

from dispatcher.errors import InvalidSecret

SECRET_PREFIX = "whsec_"
MAX_OLD_SECRETS = 10
MAX_GRACE = timedelta(days=7)


@dataclass(frozen=True)
class StoredSecret:
    """One signing secret and when it stops signing (None: the primary, never expires)."""

    secret: str
    expires_at: datetime | None = None


def generate_secret() -> str:
    """A new secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret; raises InvalidSecret when it is malformed."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a signing secret starts with 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the part after 'whsec_' is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise InvalidSecret("a signing secret must hold between 24 and 64 random bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks v1 signature of `{id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per valid key, space-separated."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def _fernet() -> Fernet:
    return Fernet(current_app.config["HOOKLINE_ENCRYPTION_KEY"].encode())


def encrypt_secrets(stored: list[StoredSecret]) -> str:
    """Encrypt a subscription's secrets (primary first) into one token for the database."""
    payload = [
        {"secret": s.secret, "expires_at": s.expires_at.isoformat() if s.expires_at else None}
        for s in stored
    ]
    return _fernet().encrypt(json.dumps(payload).encode()).decode()


def decrypt_secrets(token: str) -> list[StoredSecret]:
    """The secrets stored in `token`, primary first."""
    payload = json.loads(_fernet().decrypt(token.encode()))
    return [
        StoredSecret(
            item["secret"],
            datetime.fromisoformat(item["expires_at"]) if item["expires_at"] else None,
        )
        for item in payload
    ]


def valid_secrets(stored: list[StoredSecret], now: datetime) -> list[StoredSecret]:
    """The secrets that still sign at `now`: the primary and any old one inside its grace."""
    return [s for s in stored if s.expires_at is None or s.expires_at > now]


def rotated(
    stored: list[StoredSecret], new_secret: str, grace: timedelta, now: datetime
) -> list[StoredSecret]:
    """The secrets after a rotation: `new_secret` becomes primary, the old primary signs on
    for `grace`, secrets already past their grace are dropped, and at most ten old ones stay."""
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValueError("the grace period must be between 0 seconds and 7 days")
    old: list[StoredSecret] = []
    for item in stored:
        expires_at = now + grace if item.expires_at is None else min(item.expires_at, now + grace)
        if expires_at > now:
            old.append(StoredSecret(item.secret, expires_at))
    old.sort(key=lambda s: s.expires_at, reverse=True)
    return [StoredSecret(new_secret), *old[:MAX_OLD_SECRETS]]
