"""The delivery job: claim due deliveries, send them concurrently, record every attempt.

One RQ job ("drain") serves many deliveries, because RQ's per-job cost is several times that of
an HTTP POST on a kept-alive connection. Sends run on a thread pool that lives as long as the
worker process, so connections stay alive across jobs. Each endpoint may hold only a few of the
pool's threads, so a slow endpoint delays its own deliveries and nobody else's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from dispatcher import clock, http, message, queues, signing
from dispatcher.claims import Claim, claim_due
from dispatcher.errors import TargetRefused
from dispatcher.outcomes import Outcome, record
from dispatcher.ssrf import Target, check_target
from portal.extensions import db
from portal.models import Event, Subscription

log = logging.getLogger(__name__)

POLL_SECONDS = 0.005
RECORD_EVERY_SECONDS = 0.05  # results wait at most this long to be written in one batch
TARGET_CACHE_SECONDS = 30.0
CLAIM_EVERY_SECONDS = 0.05  # the longest free slots wait for a claim when the pool is half busy
PRIORITY_LOOK_SECONDS = 0.1  # how often a busy normal drain checks for tests and manual retries

_executor: ThreadPoolExecutor | None = None
_secrets_cache: dict[str, list[signing.StoredSecret]] = {}
_target_cache: dict[tuple[str, bool, bool], tuple[float, Target | TargetRefused]] = {}


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor
    if _executor is None or _executor._max_workers != size:
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="hookline-send")
    return _executor


def _stored_secrets(token: str) -> list[signing.StoredSecret]:
    """Decrypted secrets, cached by their ciphertext (a rotation writes a new token)."""
    stored = _secrets_cache.get(token)
    if stored is None:
        if len(_secrets_cache) > 10_000:
            _secrets_cache.clear()
        stored = _secrets_cache[token] = signing.decrypt_secrets(token)
    return stored


def _target(url: str, allow_private: bool, https_only: bool) -> Target:
    """The checked target for `url`, re-resolved at most every TARGET_CACHE_SECONDS.

    Caching cannot open a rebinding hole: a cached entry is an address that passed the check,
    and the connection goes to that address."""
    key = (url, allow_private, https_only)
    cached = _target_cache.get(key)
    if cached is None or time.monotonic() - cached[0] > TARGET_CACHE_SECONDS:
        if len(_target_cache) > 10_000:
            _target_cache.clear()
        try:
            result: Target | TargetRefused = check_target(
                url, allow_private=allow_private, https_only=https_only
            )
        except TargetRefused as exc:
            result = exc
        cached = _target_cache[key] = (time.monotonic(), result)
    if isinstance(cached[1], TargetRefused):
        raise cached[1]
    return cached[1]


def _prepare(claims: list[Claim]) -> tuple[list[tuple[Outcome, tuple]], list[Outcome]]:
    """Build each claim's request; claims that cannot be sent become cancel/fail outcomes."""
    config = current_app.config
    allow_private = config["HOOKLINE_ALLOW_PRIVATE_TARGETS"]
    https_only = config["HOOKLINE_HTTPS_ONLY"]
    events = {
        row.id: row
        for row in db.session.execute(
            select(Event.id, Event.type, Event.created_at, Event.tenant_id, Event.data).where(
                Event.id.in_({c.event_id for c in claims})
            )
        )
    }
    subscriptions = {
        row.id: row
        for row in db.session.execute(
            select(
                Subscription.id,
                Subscription.url,
                Subscription.headers,
                Subscription.is_active,
                Subscription.secrets_encrypted,
            ).where(Subscription.id.in_({c.subscription_id for c in claims}))
        )
    }
    db.session.commit()  # end the read; nothing here may hold a snapshot while we send
    now = clock.now()
    timestamp = int(time.time())
    bodies: dict[str, bytes] = {}
    keys: dict[str, list[bytes]] = {}
    ready: list[tuple[Outcome, tuple]] = []
    unsendable: list[Outcome] = []
    for claim in claims:
        event = events.get(claim.event_id)
        subscription = subscriptions.get(claim.subscription_id)
        if event is None or subscription is None or not subscription.is_active:
            unsendable.append(Outcome(claim, {}, cancel_reason="endpoint disabled or deleted"))
            continue
        if subscription.id not in keys:
            keys[subscription.id] = [
                signing.secret_key_bytes(s.secret)
                for s in signing.valid_secrets(_stored_secrets(subscription.secrets_encrypted), now)
            ]
        body = bodies.get(event.id)
        if body is None:
            body = bodies[event.id] = message.body_for(
                event.id, event.type, event.created_at, event.tenant_id, event.data
            )
        headers = message.headers_for(
            event_id=event.id,
            event_type=event.type,
            attempt_number=claim.attempt_number,
            body=body,
            keys=keys[subscription.id],
            timestamp=timestamp,
            custom=subscription.headers,
        )
        outcome = Outcome(claim, headers)
        try:
            target = _target(subscription.url, allow_private, https_only)
        except TargetRefused as exc:
            outcome.response = http.Response(
                started_at=clock.now(), duration_ms=0, error=f"refused before sending: {exc}"
            )
            unsendable.append(outcome)
            continue
        ready.append((outcome, (target, body, headers)))
    return ready, unsendable


def _send(outcome: Outcome, target, body: bytes, headers: dict, timeout: float, connect: float):
    outcome.response = http.post(target, body, headers, timeout=timeout, connect_timeout=connect)
    return outcome


def drain(priority: bool = False) -> int:
    """Deliver what is due until nothing is, or the time budget is spent. Returns the count."""
    try:
        return _drain(priority)
    finally:
        # The worker keeps one app context for its whole life, so end the session per job.
        db.session.remove()


def _drain(priority: bool) -> int:
    queues.clear_kick_flag(priority)
    config = current_app.config
    concurrency = config["HOOKLINE_WORKER_CONCURRENCY"]
    per_endpoint = config["HOOKLINE_ENDPOINT_CONCURRENCY"]
    timeout = float(config["HOOKLINE_DELIVERY_TIMEOUT"])
    connect = float(config["HOOKLINE_CONNECT_TIMEOUT"])
    lease = timedelta(seconds=timeout)
    budget_ends = time.monotonic() + config["HOOKLINE_DRAIN_BUDGET"]
    pool = _pool(concurrency)
    http.pool_size = concurrency
    refill_at = max(1, concurrency // 2)

    in_flight: dict[Future, Claim] = {}
    busy = Counter[str]()
    finished: list[Outcome] = []
    last_record = time.monotonic()
    delivered = 0
    saw_more = False
    exhausted = False  # the last claim found nothing more due, and left no endpoint out
    next_priority_look = 0.0
    last_claim = 0.0
    asked_for_help = False
    while True:
        free = concurrency - len(in_flight)
        in_budget = time.monotonic() < budget_ends
        waited = time.monotonic() - last_claim >= CLAIM_EVERY_SECONDS
        # Claim when half the pool is free (or all of it): claiming for every freed slot costs
        # more in SQL than the sends it feeds. Every CLAIM_EVERY at the latest, so endpoints
        # holding many slots cannot stall everyone.
        if in_budget and free and (free >= refill_at or not in_flight or waited):
            last_claim = time.monotonic()
            look_for_priority = priority or time.monotonic() >= next_priority_look
            if look_for_priority:
                next_priority_look = time.monotonic() + PRIORITY_LOOK_SECONDS
            claims, more = claim_due(
                free,
                lease=lease,
                priority_only=priority,
                include_priority=look_for_priority,
                per_endpoint=per_endpoint,
                busy=busy,
            )
            saw_more = more
            if more and not asked_for_help:
                # More is due than this drain can hold: let another worker join in now.
                queues.kick(priority)
                asked_for_help = True
            if claims:
                ready, unsendable = _prepare(claims)
                finished.extend(unsendable)
                for outcome, (target, body, headers) in ready:
                    future = pool.submit(_send, outcome, target, body, headers, timeout, connect)
                    in_flight[future] = outcome.claim
                    busy[outcome.claim.subscription_id] += 1
            # An endpoint at its limit was not looked at, so its due rows may still wait.
            exhausted = not more and all(n < per_endpoint for n in busy.values())
        elif not in_budget:
            saw_more = True
        if in_flight:
            done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                claim = in_flight.pop(future)
                busy[claim.subscription_id] -= 1
                if not busy[claim.subscription_id]:
                    del busy[claim.subscription_id]
                finished.append(future.result())
        now = time.monotonic()
        if finished and (not in_flight or now - last_record >= RECORD_EVERY_SECONDS):
            record(finished)
            delivered += len(finished)
            finished = []
            last_record = now
        if not in_flight and not finished and (exhausted or not in_budget):
            break
    if saw_more:
        queues.kick(priority)
    return delivered
