"""Prefixed, URL-safe, time-sortable identifiers (`evt_01J…`).

The body is a ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32, so ids sort by
creation time and cursor pagination by id is stable. Within one millisecond, each id a process
makes is the previous one plus one (ULID's monotonic mode), so one process's ids also sort in the
order it made them: a fast publisher makes several events per millisecond, and "newest first"
must not shuffle them.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# base64's RFC 4648 base32 digits → Crockford's, so the C encoder does the work.
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)

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


_RANDOM_BITS = 80
_last = (0, 0)  # (millisecond, random part) of the last id this process made
_last_lock = threading.Lock()


def _ulid(now_ms: int | None = None) -> str:
    global _last
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _last_lock:
        last_ms, last_random = _last
        random = last_random + 1 if ms == last_ms else int.from_bytes(os.urandom(10), "big")
        if random >> _RANDOM_BITS:  # it started at the very top of its range: start afresh
            random = int.from_bytes(os.urandom(10), "big")
        _last = (ms, random)
    value = (ms << _RANDOM_BITS) | random
    # 160 bits encode to 32 digits; the last 26 are the 130 low bits, i.e. the ULID.
    return base64.b32encode(value.to_bytes(20, "big")).decode()[6:].translate(_FROM_RFC4648)


def new_id(kind: str) -> str:
    """Return a fresh id for `kind` (a key of PREFIXES), e.g. ``new_id("event")``."""
    return f"{PREFIXES[kind]}_{_ulid()}"


def id_factory(kind: str):
    """A column default that makes ids of `kind`."""
    prefix = PREFIXES[kind]
    return lambda: f"{prefix}_{_ulid()}"
