"""What the workers count: deliveries by outcome and how long attempts take.

These are prometheus_client metrics in the process that records the attempt (a worker). With
PROMETHEUS_MULTIPROC_DIR set before the process starts, prometheus_client writes them to files
in that directory, and the web app's /metrics adds up every process's files (portal.metrics).
The dispatcher defines them here so it never needs the portal to record a delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

from dispatcher.states import DeliveryStatus

if TYPE_CHECKING:  # outcomes imports this module, so only the type checker may import it back
    from dispatcher.outcomes import Outcome
    from dispatcher.transitions import AttemptedState

# The state a delivery is in after an attempt, as the outcome label of DELIVERIES: its status,
# except that a delivery pending again after an attempt is "retrying".
RETRYING = "retrying"
OUTCOMES = (DeliveryStatus.SUCCEEDED, RETRYING, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED)

DELIVERIES = Counter(
    "hookline_deliveries",
    "Delivery attempts recorded, by what they left the delivery as: succeeded, retrying "
    "(failed, another attempt is scheduled), failed (no attempt left) or cancelled.",
    ["outcome"],
)
ATTEMPTS = Counter(
    "hookline_attempts",
    "HTTP attempts by response class: 2xx, 3xx, 4xx, 5xx or error (no response).",
    ["result"],
)
ATTEMPT_SECONDS = Histogram(
    "hookline_attempt_duration_seconds",
    "Time from sending a delivery's request to the end of its response.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)

# Every series exists from the start at 0 (so rate() works from the first scrape), and the
# children are looked up once: `labels()` costs more than the increment itself.
_BY_OUTCOME = {outcome: DELIVERIES.labels(outcome) for outcome in OUTCOMES}
_BY_RESULT = {result: ATTEMPTS.labels(result) for result in ("2xx", "3xx", "4xx", "5xx", "error")}


def _result(status: int | None) -> str:
    if status is None or not 100 <= status < 600:
        return "error"
    return "error" if status < 200 else f"{status // 100}xx"


def observe(outcomes: Iterable[Outcome], states: Iterable[AttemptedState]) -> None:
    """Count committed outcomes; `states` are the new delivery rows of the attempted ones."""
    status_by_id = {state.id: state.status for state in states}
    for outcome in outcomes:
        if outcome.response is None:
            _BY_OUTCOME[DeliveryStatus.CANCELLED].inc()
            continue
        status = status_by_id.get(outcome.claim.id, DeliveryStatus.FAILED)
        _BY_OUTCOME[RETRYING if status == DeliveryStatus.PENDING else status].inc()
        _BY_RESULT[_result(outcome.response.status)].inc()
        ATTEMPT_SECONDS.observe(outcome.response.duration_ms / 1000)
