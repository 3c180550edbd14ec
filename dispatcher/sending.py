"""The worker process's sends in flight and its recorder, shared by every drain job it runs.

Sends run on the HTTP client's event loop (dispatcher/http.py), so one in flight costs a socket
and a timer, not a thread. HOOKLINE_WORKER_CONCURRENCY is how many sends may be *working* at
once. A send that has taken longer than SLOW_SECONDS (a hanging or very slow receiver), or that
goes to an endpoint whose last answer here was not a quick success (new, failing or hanging: it
has to prove itself), does not count against it: it sits in a bulkhead of
HOOKLINE_SLOW_SEND_CAPACITY further sends, costing its endpoint a socket, and healthy endpoints
keep every working slot. Only when the bulkhead is full do such sends count against the working
slots again.

Sends outlive the drain job that started them (a drain may end while a receiver hangs), so
finished sends are written by a recorder thread of the process, in batches, rather than by the
job; `finish()` waits for what is in flight and writes it before the worker exits. A process
killed mid-send leaves its leases to expire, and the deliveries are claimed again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError

from dispatcher import claims, clock, health, http, queues
from dispatcher.concurrency import EndpointLimits
from dispatcher.outcomes import Outcome, record
from dispatcher.settings import get_settings
from dispatcher.ssrf import Target
from dispatcher.store import db

log = logging.getLogger(__name__)

SLOW_SECONDS = 1.0
RECORD_EVERY_SECONDS = 0.05  # finished sends wait at most this long to be written in one batch
RECORD_RETRY_SECONDS = 1.0  # after a failed write (database down), try the batch again


class Sender:
    """What is in flight, per-endpoint limits, and the recorder."""

    def __init__(self, app: Flask, working: int, slow_capacity: int) -> None:
        self.app = app
        self.working = working
        self.slow_capacity = slow_capacity
        self.limits = EndpointLimits()
        self.wake = threading.Event()  # set when a send finishes and enough slots are free
        # The drain's refill threshold: waking it for every finished send of a full pool cost
        # a loop turn per delivery for claims it would not make yet.
        self.wake_at_free = 1
        self.sent_count = 0  # sends finished so far (the drain compares it between claims)
        self._lock = threading.Lock()
        # future → (outcome, when it started, from when it counts as slow), all monotonic
        self._started: dict[Future[http.Response], tuple[Outcome, float, float]] = {}
        self._per_endpoint = Counter[str]()
        self._held: dict[str, datetime] = {}  # Retry-After seen here, before it is recorded
        self._pause_timers: dict[str, threading.Timer] = {}  # endpoint → kick at its pause end
        self._handed_back: set[str] = set()  # deliveries given back at shutdown: not recorded
        self._finished: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._unrecorded = 0
        self._closed = threading.Event()
        self.consumer = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._recorder = threading.Thread(target=self._record_loop, name="hookline-record")
        self._recorder.daemon = True
        self._recorder.start()

    def submit(
        self,
        outcome: Outcome,
        target: Target,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
        connect: float,
    ) -> None:
        """Start sending one prepared delivery."""
        subscription_id = outcome.claim.subscription_id
        with self._lock:
            self._per_endpoint[subscription_id] += 1
            self._unrecorded += 1
            proven = self.limits.proven(subscription_id)
        future = http.send(target, body, headers, timeout=timeout, connect_timeout=connect)
        started = time.monotonic()
        # An endpoint that has not answered quickly yet counts as slow from the start.
        slow_from = started + SLOW_SECONDS if proven else started
        with self._lock:
            self._started[future] = (outcome, started, slow_from)
        future.add_done_callback(self._sent)

    def add_unsendable(self, outcomes: list[Outcome]) -> None:
        """Deliveries that could not be sent (cancelled, refused target): record them too."""
        with self._lock:
            self._unrecorded += len(outcomes)
        for outcome in outcomes:
            self._finished.put(outcome)

    def _sent(self, future: Future[http.Response]) -> None:
        """A send finished (on the HTTP client's loop): count it and queue it for recording."""
        with self._lock:
            outcome, started, _ = self._started.pop(future)
            # http.send never raises: network trouble is in the response
            outcome.response = future.result()
            subscription_id = outcome.claim.subscription_id
            self._per_endpoint[subscription_id] -= 1
            if not self._per_endpoint[subscription_id]:
                del self._per_endpoint[subscription_id]
            ceiling = get_settings(self.app).endpoint_concurrency
            self.limits.observe(subscription_id, outcome.response, started, ceiling)
            retry_after = outcome.response.retry_after
            if retry_after:
                self._held[subscription_id] = clock.now() + timedelta(seconds=retry_after)
            self.sent_count += 1
            wake = self._free_locked(time.monotonic()) >= self.wake_at_free
            handed_back = outcome.claim.id in self._handed_back
            if handed_back:  # another worker sends it now: this attempt is not recorded
                self._unrecorded -= 1
                self._recorded.notify_all()
        if not handed_back:
            self._finished.put(outcome)
        if wake:
            self.wake.set()

    # What the drain asks before it claims.

    def free_slots(self) -> int:
        """Working slots free now; sends slower than SLOW_SECONDS take none while the bulkhead
        has room for them."""
        now = time.monotonic()
        with self._lock:
            return self._free_locked(now)

    def _free_locked(self, now: float) -> int:
        slow = sum(1 for _, _, slow_from in self._started.values() if slow_from <= now)
        working = len(self._started) - slow + max(0, slow - self.slow_capacity)
        return max(0, self.working - working)

    def in_flight(self, subscription_id: str | None = None) -> int:
        """Sends in flight from this process (to one endpoint, or in all)."""
        with self._lock:
            if subscription_id is None:
                return len(self._started)
            return self._per_endpoint.get(subscription_id, 0)

    def room(self, subscription_id: str) -> int:
        """How many more sends the endpoint's adaptive limit allows from this process now."""
        ceiling = get_settings(self.app).endpoint_concurrency
        with self._lock:
            limit = self.limits.limit(subscription_id, ceiling)
            return limit - self._per_endpoint.get(subscription_id, 0)

    def held_until(self, subscription_id: str, now: datetime) -> datetime | None:
        """When a Retry-After this process saw (and may not have recorded yet) runs out."""
        with self._lock:
            until = self._held.get(subscription_id)
            if until is not None and until <= now:
                del self._held[subscription_id]
                return None
            return until

    # Recording. Whoever holds `consumer` writes what has finished: the running drain job
    # (so one thread does all of a worker's database writes, and SQLite's lock is never
    # fought over inside one process), else the recorder thread, for sends that outlived
    # their drain.

    def record_finished(self, wait: float = 0.0, gather: float = 0.0) -> int:
        """Write what has finished, waiting up to `wait` for the first and then gathering
        more for up to `gather` seconds while sends are in flight. Hold `consumer`."""
        try:
            first = self._finished.get(timeout=wait) if wait > 0 else self._finished.get_nowait()
        except queue.Empty:
            return 0
        batch = [first]
        deadline = time.monotonic() + gather
        while (left := deadline - time.monotonic()) > 0 and self.in_flight():
            try:
                batch.append(self._finished.get(timeout=left))
            except queue.Empty:
                break
        while True:
            try:
                batch.append(self._finished.get_nowait())
            except queue.Empty:
                break
        self._write(batch)
        return len(batch)

    def _record_loop(self) -> None:
        with self.app.app_context():
            while not self._closed.is_set():
                with self.consumer:
                    self.record_finished(wait=RECORD_EVERY_SECONDS, gather=RECORD_EVERY_SECONDS)

    def _write(self, batch: list[Outcome]) -> None:
        """Record the batch, retrying while the database is away: a lease outlives a short
        outage, and past it the delivery is sent again rather than lost."""
        # Whatever went wrong on this thread's session before (a claim that failed mid-way)
        # must not make this batch fail: start from a clean transaction.
        db.session.rollback()
        while True:
            try:
                record(batch)
                break
            except (OperationalError, InterfaceError) as exc:  # the database is unreachable
                log.warning("could not record %d attempts (%s); retrying", len(batch), exc)
                db.session.rollback()
                db.session.remove()
                time.sleep(RECORD_RETRY_SECONDS)
            except Exception:
                # A bug, not an outage: say so loudly; the leases expire and the deliveries
                # are sent again, so nothing is lost.
                log.exception("recording %d attempts failed; they will be sent again", len(batch))
                db.session.rollback()
                break
        db.session.remove()
        with self._lock:
            self._unrecorded -= len(batch)
            self._recorded.notify_all()
        self._kick_when_paused_ends(batch)

    def _kick_when_paused_ends(self, batch: list[Outcome]) -> None:
        """Start a drain the moment a receiver's Retry-After runs out. The drain that saw the
        429 may have ended by then, and RQ's scheduler (the durable fallback, queued by
        `record`) moves jobs only once a second, which kept a paused endpoint waiting up to
        two seconds longer than it asked."""
        cap = health.pause_cap(get_settings(self.app).retry_schedule)
        for outcome in batch:
            retry_after = outcome.response.retry_after if outcome.response else None
            subscription_id = outcome.claim.subscription_id
            if not retry_after or subscription_id in self._pause_timers:
                continue  # one timer per endpoint: a burst of 429s is one pause
            timer = threading.Timer(min(retry_after, cap), self._kick, args=(subscription_id,))
            timer.daemon = True
            self._pause_timers[subscription_id] = timer
            timer.start()

    def _kick(self, subscription_id: str) -> None:
        self._pause_timers.pop(subscription_id, None)
        with self.app.app_context():
            queues.kick()

    def finish(self, timeout: float | None = None) -> bool:
        """Wait until everything in flight is sent and recorded. False if `timeout` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._unrecorded > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._recorded.wait(left)
        return True

    def hand_back(self, grace: float) -> int:
        """Shut down: wait up to `grace` seconds for the sends in flight, then give the rest
        back — their leases cleared, so another worker sends them at once instead of when the
        lease runs out — and cut their connections. Returns how many were given back."""
        if self.finish(grace):
            return 0
        with self._lock:
            left = [outcome.claim for outcome, _, _ in self._started.values()]
            self._handed_back.update(claim.id for claim in left)
        with self.app.app_context():
            try:
                claims.release(left)
                queues.kick()
            except (OperationalError, InterfaceError) as exc:
                log.warning("could not hand %d deliveries back (%s)", len(left), exc)
        http.cut_connections()  # the sends waiting on them end, and the process can exit
        self.finish(RECORD_RETRY_SECONDS)  # what finished meanwhile is still recorded
        log.info("handed %d in-flight deliveries back to the other workers", len(left))
        return len(left)

    def close(self) -> None:
        """Stop the recorder and the pause timers (call after `finish`)."""
        self._closed.set()
        for timer in list(self._pause_timers.values()):
            timer.cancel()
        self._recorder.join(timeout=10)


_sender: Sender | None = None
_sender_lock = threading.Lock()


def sender(app: Flask) -> Sender:
    """The process's sender for `app`, made on first use (and anew for another app or other
    sizes, once the old one has recorded everything)."""
    global _sender
    settings = get_settings(app)
    working, slow_capacity = settings.worker_concurrency, settings.slow_send_capacity
    with _sender_lock:
        old = _sender
        if old is not None and (old.app, old.working, old.slow_capacity) == (
            app,
            working,
            slow_capacity,
        ):
            return old
        if old is not None:
            old.finish()
            old.close()
        _sender = Sender(app, working, slow_capacity)
        return _sender


_stopping = threading.Event()


def request_stop() -> None:
    """The worker is shutting down (SIGTERM): drains stop claiming and end."""
    _stopping.set()


def stopping() -> bool:
    """Whether the worker process is shutting down."""
    return _stopping.is_set()


def hand_back(grace: float) -> int:
    """At the worker's exit: let what is in flight finish within `grace`, give the rest back."""
    current = _sender
    return 0 if current is None else current.hand_back(grace)


def finish(timeout: float | None = None) -> bool:
    """Wait for the process's in-flight sends to be sent and recorded (the worker's exit)."""
    current = _sender
    return True if current is None else current.finish(timeout)
