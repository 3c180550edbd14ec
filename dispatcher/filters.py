"""Which event types a subscription's filter selects."""

from __future__ import annotations

from collections.abc import Iterable


def matches(event_filter: Iterable[str], event_type: str) -> bool:
    """True if `event_type` is selected by a filter of names, `group.*` wildcards or `*`."""
    for pattern in event_filter:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
