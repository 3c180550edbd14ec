"""The delivery state machine (dispatcher/transitions.py): where an attempt leaves a delivery,
and that no other module writes a delivery's state."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.claims import Claim
from dispatcher.http import Response
from dispatcher.states import DeliveryStatus, Trigger
from dispatcher.transitions import after_attempt

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SCHEDULE = [300, 3600, 21600]


def _claim(trigger: str = Trigger.AUTO, attempt_number: int = 1) -> Claim:
    return Claim(
        id="dlv_1",
        tenant_id="ten_1",
        event_id="evt_1",
        subscription_id="sub_1",
        event_type="invoice.created",
        attempt_number=attempt_number,
        trigger=trigger,
        is_test=trigger == Trigger.TEST,
        lease_expires_at=NOW,
    )


def _response(status: int | None, error: str | None = None, retry_after=None) -> Response:
    return Response(
        started_at=NOW, duration_ms=5, status=status, error=error, retry_after=retry_after
    )


def test_a_2xx_succeeds_whatever_started_the_attempt() -> None:
    for trigger in Trigger:
        state = after_attempt(_claim(trigger), _response(204), SCHEDULE, NOW)
        assert (state.status, state.next_attempt_at) == (DeliveryStatus.SUCCEEDED, None)
        assert (state.attempt_count, state.last_response_status) == (1, 204)


def test_a_failed_automatic_attempt_waits_for_the_next_retry_of_the_schedule() -> None:
    state = after_attempt(_claim(attempt_number=2), _response(500), SCHEDULE, NOW)

    assert state.status == DeliveryStatus.PENDING
    assert state.next_attempt_at == NOW + timedelta(seconds=3600)
    assert state.last_attempt_at == NOW


def test_retry_after_pushes_the_retry_later_but_not_past_the_longest_delay() -> None:
    later = after_attempt(_claim(), _response(429, retry_after=900), SCHEDULE, NOW)
    capped = after_attempt(_claim(), _response(503, retry_after=10**9), SCHEDULE, NOW)

    assert later.next_attempt_at == NOW + timedelta(seconds=900)
    assert capped.next_attempt_at == NOW + timedelta(seconds=21600)


@pytest.mark.parametrize(
    ("claim", "response"),
    [
        (_claim(attempt_number=4), _response(500)),  # the schedule is used up
        (_claim(), _response(410)),  # the endpoint is gone
        (_claim(Trigger.MANUAL), _response(None, error="could not connect")),  # one attempt
        (_claim(Trigger.TEST), _response(500)),  # a test is never retried
    ],
)
def test_a_failure_with_no_retry_left_fails_the_delivery(claim: Claim, response: Response) -> None:
    state = after_attempt(claim, response, SCHEDULE, NOW)

    assert (state.status, state.next_attempt_at) == (DeliveryStatus.FAILED, None)


# What writing a delivery's state looks like: an UPDATE of the deliveries (Core, or SQL text),
# or an assignment to a loaded Delivery's state columns.
_WRITES = re.compile(
    r"update\(Delivery\)|UPDATE hookline_deliveries"
    r"|\bdelivery\.(status|next_attempt_at|next_trigger)\s*=[^=]",
    re.IGNORECASE,
)
# claims.py updates deliveries too, but only their leases (see its docstring).
_ALLOWED = {"dispatcher/transitions.py", "dispatcher/claims.py"}


def test_only_the_transitions_module_writes_delivery_states() -> None:
    modules = sorted((ROOT / "dispatcher").rglob("*.py")) + sorted((ROOT / "portal").rglob("*.py"))
    assert len(modules) > 40  # the walk found the packages

    writers = {
        str(path.relative_to(ROOT))
        for path in modules
        if "migrations" not in path.parts and _WRITES.search(path.read_text())
    }

    assert writers <= _ALLOWED
    assert "dispatcher/transitions.py" in writers  # the pattern still sees the writes


def test_claims_write_only_leases() -> None:
    source = (ROOT / "dispatcher" / "claims.py").read_text()

    assigned = set(re.findall(r"SET (\w+) =", source)) | set(re.findall(r"values\((\w+)=", source))

    assert assigned == {"lease_expires_at"}
