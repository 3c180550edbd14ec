"""`flask worker`: an RQ worker with its scheduler, periodic maintenance, and reconnection.

RQ's own loop retries a lost connection while it waits for a job, but gives up if Redis goes
away while it records one. This loop starts a fresh RQ worker whenever that happens, so a
Redis restart needs no operator (the failure of Svix issue #1844).
"""

from __future__ import annotations

import gc
import logging
import threading
import time

import redis
from flask import Flask, current_app
from rq import SimpleWorker

from dispatcher import maintenance, queues, sending
from dispatcher.connection import get_redis
from dispatcher.settings import get_settings

log = logging.getLogger(__name__)

MAINTENANCE_LOCK = "maintenance-lock"  # under HOOKLINE_QUEUE_PREFIX, like every Redis key
# At SIGTERM, sends in flight get this long to finish; the rest are given back to the fleet.
HAND_BACK_SECONDS = 2.0


class _Worker(SimpleWorker):
    """RQ's in-process worker, which also tells the running drain when a warm shutdown starts
    (RQ alone would let it claim on for the rest of its time budget)."""

    def request_stop(self, signum, frame) -> None:
        sending.request_stop()
        super().request_stop(signum, frame)

    def request_force_stop(self, signum, frame) -> None:
        sending.request_stop()
        super().request_force_stop(signum, frame)


def _maintenance_loop(app: Flask, stop: threading.Event) -> None:
    """Run the periodic jobs every sweep interval, one worker in the fleet at a time."""
    settings = get_settings(app)
    interval = settings.sweep_interval
    lock = f"{settings.queue_prefix}:{MAINTENANCE_LOCK}"
    while not stop.wait(interval):
        with app.app_context():
            try:
                if get_redis().set(lock, "1", nx=True, ex=max(1, interval - 1)):
                    maintenance.run_all()
            except Exception:  # keep the loop alive through Redis or database outages
                log.exception("periodic maintenance failed; trying again in %s s", interval)


def _freeze_startup_objects() -> None:
    """Move everything loaded so far (modules, the app, SQLAlchemy's mappers: ~140,000 objects)
    out of the garbage collector's reach. They live as long as the process, yet every full
    collection walked them all with the GIL held (up to 141 ms in the bench; 11-15 ms once
    frozen), and meanwhile no send progressed and no round was claimed. It also keeps the
    pages RQ's forked scheduler child shares with the worker from being copied."""
    gc.collect()
    gc.freeze()


def run(queue_names: list[str] | None = None, burst: bool = False) -> None:
    """Work the delivery queues until stopped (or, with `burst`, until they are empty)."""
    app = current_app._get_current_object()
    names = queue_names or queues.worker_queue_names()
    _freeze_startup_objects()
    stop = threading.Event()
    if not burst:
        threading.Thread(
            target=_maintenance_loop, args=(app, stop), name="hookline-maintenance", daemon=True
        ).start()
    backoff = 1.0
    try:
        while True:
            try:
                worker = _Worker(names, connection=get_redis())
                started = time.monotonic()
                worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
                if time.monotonic() - started > 60:
                    backoff = 1.0  # it ran a good while: this is a new outage, not the same one
                if burst or sending.stopping():  # a signal asked us to stop, not an error
                    return
                log.warning("the RQ worker stopped on an error; starting a new one")
            except redis.RedisError as exc:
                log.warning("Redis is unreachable (%s); retrying in %.0f s", exc, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
    finally:
        stop.set()
        # Sends outlive drain jobs: what is in flight finishes and is recorded, or, if it
        # takes longer than HAND_BACK_SECONDS (a slow or hanging receiver), is given back so
        # another worker sends it now: a rolling restart leaves no lease to run out.
        sending.hand_back(HAND_BACK_SECONDS)
