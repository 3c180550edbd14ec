"""Prefixed, URL-safe, time-sortable identifiers (`evt_01J…`).

The body is a ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32, so ids sort by
creation time and cursor pagination by id is stable.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = {
    "tenant": "ten",
    "user": "usr",
    "api_key": "key",
    "event_type": "ety",
    "subscription": "sub",
    "event": "evt",
    "delivery": "dlv",
    "attempt": "att",
}


def _ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(kind: str) -> str:
    """Return a fresh id for `kind` (a key of PREFIXES), e.g. ``new_id("event")``."""
    return f"{PREFIXES[kind]}_{_ulid()}"


def id_factory(kind: str):
    """A column default that makes ids of `kind`."""
    prefix = PREFIXES[kind]
    return lambda: f"{prefix}_{_ulid()}"
