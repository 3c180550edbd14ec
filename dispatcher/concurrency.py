"""Each endpoint's in-flight limit, following how it answers (AIMD, per worker process).

The limit starts at INITIAL_LIMIT. Like TCP's congestion window it doubles per round trip
(+1 per quick success) until the endpoint first shows strain, then grows by about one per
round trip (+1/limit per quick success), up to HOOKLINE_ENDPOINT_CONCURRENCY. A timeout, a
connection error, a 5xx or a 429 halves it, at most once per round trip (failures of requests
sent before the last cut do not cut again), never below 1. A success slower than
QUICK_SECONDS leaves it where it is: a slow endpoint keeps a small share and only delays
itself. A fast endpoint grows into most of a worker within a second or two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dispatcher.http import Response

INITIAL_LIMIT = 4
QUICK_SECONDS = 1.0
MAX_TRACKED = 10_000  # endpoints remembered per process; past that the oldest start over


def strained(response: Response) -> bool:
    """Whether an answer says the endpoint is overloaded (as opposed to refusing the event)."""
    return response.status is None or response.status == 429 or response.status >= 500


@dataclass
class _Window:
    limit: float
    slow_start: bool = True
    cut_at: float = 0.0  # monotonic time of the last decrease
    proven: bool = False  # its last finished request was a quick success


class EndpointLimits:
    """The adaptive limits of the endpoints this process sends to."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def limit(self, subscription_id: str, ceiling: int) -> int:
        """How many requests may be in flight to the endpoint from this process."""
        window = self._windows.get(subscription_id)
        value = INITIAL_LIMIT if window is None else window.limit
        return max(1, min(ceiling, int(value)))

    def proven(self, subscription_id: str) -> bool:
        """Whether the endpoint's last finished request here was a quick success. Sends to an
        endpoint that has not proven itself (new, failing, hanging) are kept off the working
        slots (dispatcher/sending.py), so a dead endpoint never holds one."""
        window = self._windows.get(subscription_id)
        return window is not None and window.proven

    def observe(
        self, subscription_id: str, response: Response, sent_at: float, ceiling: int
    ) -> None:
        """Adjust the endpoint's limit for one finished request sent at `sent_at` (monotonic)."""
        window = self._windows.get(subscription_id)
        if window is None:
            if len(self._windows) >= MAX_TRACKED:
                self._windows.clear()
            window = self._windows[subscription_id] = _Window(float(min(INITIAL_LIMIT, ceiling)))
        window.proven = response.succeeded and response.duration_ms <= QUICK_SECONDS * 1000
        if response.succeeded:
            if window.proven:
                step = 1.0 if window.slow_start else 1.0 / window.limit
                window.limit = min(float(ceiling), window.limit + step)
        elif strained(response) and sent_at >= window.cut_at:
            window.limit = max(1.0, window.limit / 2)
            window.slow_start = False
            window.cut_at = time.monotonic()
