"""The names of a delivery's states and of what started an attempt.

They are `StrEnum`s, so they are stored and serialised as their plain values ("pending",
"auto", …) and compare equal to them; code names them through these classes so a typo is an
AttributeError, not a silently empty query.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """Where a delivery stands. Only `pending` deliveries are ever claimed and sent."""

    PENDING = "pending"  # due now or at next_attempt_at (a retry, a deferral, a manual retry)
    SUCCEEDED = "succeeded"  # a 2xx arrived
    FAILED = "failed"  # out of retries, or the endpoint answered 410
    CANCELLED = "cancelled"  # its endpoint was disabled or deleted while it waited


class Trigger(StrEnum):
    """What made an attempt happen: the retry schedule, a person, or a test send."""

    AUTO = "auto"  # the first attempt and the scheduled retries
    MANUAL = "manual"  # a retry or recover asked for in the portal or the API
    TEST = "test"  # a test event sent from the portal or the API


STATUSES: tuple[str, ...] = tuple(DeliveryStatus)
TRIGGERS: tuple[str, ...] = tuple(Trigger)
