"""The dispatcher's notion of now, in one place so tests can move it (monkeypatch `now`)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, aware and in UTC."""
    return datetime.now(UTC)
