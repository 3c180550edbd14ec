"""The one place that knows queue names, job ids, timeouts and TTLs.

Jobs are triggers, not carriers: the database rows are the outbox. A "drain" job claims due
deliveries from the database and sends them, so a lost job loses nothing — the sweeper simply
enqueues another drain. At most one drain job waits in each queue at a time (a Redis flag),
which keeps a burst of publishes from flooding Redis with jobs.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError

from dispatcher.connection import get_redis
from dispatcher.settings import get_settings

log = logging.getLogger(__name__)

DRAIN_JOB = "dispatcher.delivery.drain"
DRAIN_TIMEOUT = 180  # seconds: a drain stops claiming after its budget, then finishes in-flight
KICK_FLAG_TTL = 60  # seconds: a stale flag (job lost with its worker) blocks kicks this long


def queue_name(priority: bool = False) -> str:
    """Test events and manual retries go to the priority queue; everything else to deliveries."""
    prefix = get_settings().queue_prefix
    return f"{prefix}-priority" if priority else f"{prefix}-deliveries"


def worker_queue_names() -> list[str]:
    """The queues a worker listens on, most urgent first."""
    return [queue_name(priority=True), queue_name(priority=False)]


def get_queue(priority: bool = False) -> Queue:
    """The RQ queue for normal or priority drains."""
    return Queue(queue_name(priority), connection=get_redis())


def _kick_flag(priority: bool) -> str:
    return f"{queue_name(priority)}:drain-waiting"


def clear_kick_flag(priority: bool) -> None:
    """Called by a drain as it starts, so work committed from now on kicks a fresh drain."""
    get_redis().delete(_kick_flag(priority))


def take_kick_flag(priority: bool) -> bool:
    """Whether work was committed since the drain last looked (a publish set the flag); clears
    it, so the next commit kicks again. A running drain polls this instead of the database."""
    try:
        return bool(get_redis().delete(_kick_flag(priority)))
    except redis.RedisError:
        return True  # cannot tell: look in the database


def drain_waiting(priority: bool) -> bool:
    """Whether a drain job waits in the queue (its kick flag is set), without taking the flag.
    A busy normal drain asks this before it looks in the database for priority work."""
    try:
        return bool(get_redis().exists(_kick_flag(priority)))
    except redis.RedisError:
        return True  # cannot tell: look in the database


def kick(priority: bool = False, *, sweeping: bool = False) -> bool:
    """Make sure a drain job waits in the queue. Returns False if Redis could not be reached:
    the deliveries are safe in the database and the sweeper will kick again.

    The kick flag saves a publisher the enqueue when a drain is already waiting. `sweeping`
    (the periodic sweeper) enqueues whenever no drain job is queued, whatever the flag says:
    a worker killed between taking the job and clearing the flag leaves it set, and every
    kick would then be ignored until it expired (a minute without deliveries, in the soak)."""
    try:
        connection = get_redis()
        flagged = connection.set(_kick_flag(priority), "1", nx=True, ex=KICK_FLAG_TTL)
        if sweeping and not flagged and get_queue(priority).count == 0:
            connection.set(_kick_flag(priority), "1", ex=KICK_FLAG_TTL)
            flagged = True
        if flagged:
            with connection.pipeline() as pipe:  # one round trip instead of RQ's three
                get_queue(priority).enqueue(
                    DRAIN_JOB,
                    priority,
                    job_timeout=DRAIN_TIMEOUT,
                    result_ttl=0,
                    failure_ttl=86400,
                    description="drain due deliveries",
                    pipeline=pipe,
                )
                pipe.execute()
        return True
    except redis.RedisError as exc:
        log.warning("could not enqueue a delivery drain (%s); the sweeper will retry", exc)
        return False


def schedule_drain(at: datetime) -> None:
    """Enqueue a drain for `at` (a retry's time) on RQ's scheduler, one job per second.

    The job runs at the next whole second, never before the retry falls due."""
    second = math.ceil(at.timestamp())
    job_id = f"{queue_name()}-drain-at-{second}"
    try:
        get_queue().enqueue_at(
            datetime.fromtimestamp(second, UTC),
            DRAIN_JOB,
            False,
            job_id=job_id,
            unique=True,
            job_timeout=DRAIN_TIMEOUT,
            result_ttl=0,
            failure_ttl=86400,
            description="drain retries due",
        )
    except DuplicateJobError:
        pass
    except redis.RedisError as exc:
        log.warning("could not schedule a retry drain (%s); the sweeper will retry", exc)
