"""Standard Webhooks signing keys: making, checking, signing with, and storing them encrypted.

Two schemes, per endpoint:
- `hmac` (spec `v1`): a secret is `whsec_` + base64 of random bytes; the HMAC-SHA256 key is the
  decoded part, and the consumer holds the same secret.
- `ed25519` (spec `v1a`): Hookline keeps a private key, `whsk_` + base64 of the 32-byte seed; the
  consumer holds only its public key, `whpk_` + base64 of the 32 raw public-key bytes, so a
  leaked verifier cannot forge a delivery.

Each subscription keeps its keys as one Fernet token (a JSON list, primary first), so the
database never holds a secret in the clear. Several encryption keys may be configured (newest
first): every one decrypts and the first encrypts, so the encryption key can be rotated
(dispatcher/keys.py re-encrypts what an old key wrote). A key's prefix says its scheme, so
during a rotation from one scheme to the other each key signs in its own.
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
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from dispatcher.errors import InvalidSecret

# The key list is a setting; its rules live with the settings (named here too, for callers).
from dispatcher.settings import KEYS_DISAGREE, encryption_keys, get_settings  # noqa: F401

SECRET_PREFIX = "whsec_"
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"
HMAC, ED25519 = "hmac", "ed25519"
SCHEMES = (HMAC, ED25519)
MAX_OLD_SECRETS = 10
# How long a rotated-out key keeps signing: the one rule the API schema, the service and the
# portal's form take their bounds and default from.
DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)
MAX_GRACE_SECONDS = int(MAX_GRACE.total_seconds())
GRACE_BOUNDS_TEXT = f"between 0 and {MAX_GRACE_SECONDS} (7 days)"


@dataclass(frozen=True)
class StoredSecret:
    """One signing secret and when it stops signing (None: the primary, never expires)."""

    secret: str
    expires_at: datetime | None = None


# What signs: HMAC key bytes (v1) or an ed25519 private key (v1a).
SigningKey = bytes | Ed25519PrivateKey


def generate_secret() -> str:
    """A new secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def generate_private_key() -> str:
    """A new ed25519 private key: `whsk_` + base64 of its 32-byte seed."""
    # Raw and unencrypted here: the caller stores it inside the Fernet token at once.
    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode()


def generate_key(scheme: str) -> str:
    """A new primary key for `scheme`: a `whsec_` secret or a `whsk_` private key."""
    return generate_private_key() if scheme == ED25519 else generate_secret()


def scheme_of(secret: str) -> str:
    """The scheme a stored key signs with, read from its prefix."""
    return ED25519 if is_ed25519(secret) else HMAC


def is_ed25519(stored: str) -> bool:
    """Whether a stored key is an ed25519 private key (`whsk_`) rather than an HMAC secret."""
    return stored.startswith(PRIVATE_KEY_PREFIX)


def private_key(secret: str) -> Ed25519PrivateKey:
    """The ed25519 key inside a `whsk_` key; raises InvalidSecret when it is malformed."""
    if not isinstance(secret, str) or not secret.startswith(PRIVATE_KEY_PREFIX):
        raise InvalidSecret("an ed25519 private key starts with 'whsk_' followed by base64")
    try:
        seed = base64.b64decode(secret[len(PRIVATE_KEY_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the part after 'whsk_' is not valid base64") from None
    if len(seed) == 64:  # seed followed by the public key, as some libraries write it
        seed = seed[:32]
    if len(seed) != 32:
        raise InvalidSecret("an ed25519 private key holds a 32-byte seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(secret: str) -> str:
    """The `whpk_` public key a consumer verifies `v1a` signatures of a `whsk_` key with."""
    raw = private_key(secret).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def verification_key(secret: str) -> str:
    """What the consumer verifies with: the `whsec_` secret itself, or the `whpk_` public key
    of a `whsk_` private key (which never leaves Hookline)."""
    return public_key(secret) if is_ed25519(secret) else secret


def check_key(secret: str, scheme: str) -> str:
    """`secret` if it is a valid key of `scheme`; raises InvalidSecret otherwise."""
    if scheme == ED25519:
        private_key(secret)
    else:
        secret_key_bytes(secret)
    return secret


def signing_key(secret: str) -> SigningKey:
    """The key that signs with `secret`: HMAC bytes for `whsec_`, a private key for `whsk_`."""
    return private_key(secret) if is_ed25519(secret) else secret_key_bytes(secret)


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


def sign(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature of `{id}.{timestamp}.{body}`: `v1,` + base64 HMAC-SHA256
    for an HMAC key, `v1a,` + base64 ed25519 signature for a private key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    if isinstance(key, Ed25519PrivateKey):
        return "v1a," + base64.b64encode(key.sign(signed)).decode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_v1a(public: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    """True if one `v1a,` signature in `header` verifies with the `whpk_` key `public` (what a
    consumer does; used by tests and the docs' examples)."""
    raw = base64.b64decode(public.removeprefix(PUBLIC_KEY_PREFIX))
    verifier = Ed25519PublicKey.from_public_bytes(raw)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for part in header.split():
        version, _, signature = part.partition(",")
        if version != "v1a":
            continue
        try:
            verifier.verify(base64.b64decode(signature), signed)
            return True
        except (InvalidSignature, binascii.Error, ValueError):
            continue
    return False


def signature_header(keys: list[SigningKey], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per valid key, space-separated."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


@lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _fernet() -> MultiFernet:
    """Every configured key decrypts; the first encrypts."""
    return _multi_fernet(get_settings().encryption_keys)


def reencrypted(token: str) -> str | None:
    """`token` encrypted with the first key, or None when it already is (rewriting it would
    change nothing); raises InvalidToken when no configured key decrypts it."""
    keys = get_settings().encryption_keys
    try:
        _multi_fernet(keys[:1]).decrypt(token.encode())
        return None
    except InvalidToken:
        return _multi_fernet(keys).rotate(token.encode()).decode()


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


def grace_allowed(grace: timedelta) -> bool:
    """Whether an old key may keep signing for `grace` after a rotation (0 to 7 days)."""
    return timedelta(0) <= grace <= MAX_GRACE


def rotated(
    stored: list[StoredSecret], new_secret: str, grace: timedelta, now: datetime
) -> list[StoredSecret]:
    """The secrets after a rotation: `new_secret` becomes primary, the old primary signs on
    for `grace`, secrets already past their grace are dropped, and at most ten old ones stay."""
    if not grace_allowed(grace):
        raise ValueError(f"the grace period in seconds must be {GRACE_BOUNDS_TEXT}")
    old: list[StoredSecret] = []
    for item in stored:
        expires_at = now + grace if item.expires_at is None else min(item.expires_at, now + grace)
        if expires_at > now:
            old.append(StoredSecret(item.secret, expires_at))
    old.sort(key=lambda s: s.expires_at, reverse=True)
    return [StoredSecret(new_secret), *old[:MAX_OLD_SECRETS]]
