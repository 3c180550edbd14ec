"""Login throttling: failed sign-ins counted in Redis per (email, IP) and per IP, in a window.

Counting failures rather than attempts means an admin who types the right password is never
locked out by their own successful logins; the per-IP budget is larger and slows an attacker
who walks through many email addresses from one address.
"""

from __future__ import annotations

import hashlib
import logging

import redis

from dispatcher.connection import get_redis
from dispatcher.settings import get_settings

log = logging.getLogger(__name__)


def _keys(email: str, ip: str) -> tuple[str, str]:
    prefix = get_settings().queue_prefix
    pair = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()
    return f"{prefix}:login-failures:{pair}", f"{prefix}:login-failures-ip:{ip}"


def _limits() -> tuple[int, int, int]:
    """(failures per email and address, failures per address, window seconds)."""
    settings = get_settings()
    return (
        settings.login_max_failures,
        settings.login_max_failures_per_ip,
        settings.login_window_seconds,
    )


def is_blocked(email: str, ip: str) -> bool:
    """True while this email+IP (or this IP) has used up its failures for the window.

    If Redis cannot be reached the check lets the attempt through: an outage should not lock
    every admin out, and the password check still stands.
    """
    pair_key, ip_key = _keys(email, ip)
    per_pair, per_ip, _ = _limits()
    try:
        pair_count, ip_count = get_redis().mget(pair_key, ip_key)
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s); allowing the attempt", exc)
        return False
    return int(pair_count or 0) >= per_pair or int(ip_count or 0) >= per_ip


def record_failure(email: str, ip: str) -> None:
    """Count one failed sign-in; the window starts at the first failure."""
    pair_key, ip_key = _keys(email, ip)
    _, _, window = _limits()
    try:
        pipe = get_redis().pipeline()
        for key in (pair_key, ip_key):
            pipe.set(key, 0, ex=window, nx=True)  # EXPIRE NX needs Redis 7; this works on 6
            pipe.incr(key)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not record a failed login (%s)", exc)


def clear(email: str, ip: str) -> None:
    """Forget this email+IP's failures after a successful sign-in."""
    pair_key, _ = _keys(email, ip)
    try:
        get_redis().delete(pair_key)
    except redis.RedisError as exc:
        log.warning("could not clear login failures (%s)", exc)
