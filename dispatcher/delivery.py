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
from dispatcher.ssrf import check_target
from portal.extensions import db
from portal.models import Event, Subscription

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02

_executor: ThreadPoolExecutor | None = None


def _pool(size: int) -> ThreadPoolExecutor:
    global _executor
    if _executor is None or _executor._max_workers != size:
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="hookline-send")
    return _executor


def _prepare(claims: list[Claim]) -> tuple[list[tuple[Claim, Outcome, tuple]], list[Outcome]]:
    """Build each claim's request; claims that cannot be sent become cancel/fail outcomes."""
    config = current_app.config
    events = {
        e.id: e
        for e in db.session.scalars(select(Event).where(Event.id.in_({c.event_id for c in claims})))
    }
    subscriptions = {
        s.id: s
        for s in db.session.scalars(
            select(Subscription).where(Subscription.id.in_({c.subscription_id for c in claims}))
        )
    }
    now = clock.now()
    ready: list[tuple[Claim, Outcome, tuple]] = []
    unsendable: list[Outcome] = []
    keys_by_subscription: dict[str, list[bytes]] = {}
    for claim in claims:
        event = events.get(claim.event_id)
        subscription = subscriptions.get(claim.subscription_id)
        if event is None or subscription is None or not subscription.is_active:
            unsendable.append(Outcome(claim, {}, cancel_reason="endpoint disabled or deleted"))
            continue
        if subscription.id not in keys_by_subscription:
            stored = signing.decrypt_secrets(subscription.secrets_encrypted)
            keys_by_subscription[subscription.id] = [
                signing.secret_key_bytes(s.secret) for s in signing.valid_secrets(stored, now)
            ]
        body = message.body_for(event.id, event.type, event.created_at, event.tenant_id, event.data)
        headers = message.headers_for(
            event_id=event.id,
            event_type=event.type,
            attempt_number=claim.attempt_number,
            body=body,
            keys=keys_by_subscription[subscription.id],
            timestamp=int(time.time()),
            custom=subscription.headers,
        )
        outcome = Outcome(claim, headers)
        try:
            target = check_target(
                subscription.url,
                allow_private=config["HOOKLINE_ALLOW_PRIVATE_TARGETS"],
                https_only=config["HOOKLINE_HTTPS_ONLY"],
            )
        except TargetRefused as exc:
            outcome.response = http.Response(
                started_at=clock.now(), duration_ms=0, error=f"refused before sending: {exc}"
            )
            unsendable.append(outcome)
            continue
        ready.append((claim, outcome, (target, body, headers)))
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

    in_flight: dict[Future, Claim] = {}
    busy = Counter[str]()
    delivered = 0
    saw_more = False
    while True:
        free = concurrency - len(in_flight)
        if free and time.monotonic() < budget_ends:
            full = frozenset(sub for sub, n in busy.items() if n >= per_endpoint)
            claims = claim_due(
                free, lease=lease, priority_only=priority, exclude_subscriptions=full
            )
            saw_more = len(claims) == free
            ready, unsendable = _prepare(claims) if claims else ([], [])
            record(unsendable)
            delivered += len(unsendable)
            for claim, outcome, (target, body, headers) in ready:
                future = pool.submit(_send, outcome, target, body, headers, timeout, connect)
                in_flight[future] = claim
                busy[claim.subscription_id] += 1
        elif time.monotonic() >= budget_ends:
            saw_more = True
        if not in_flight:
            break
        done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
        finished = []
        for future in done:
            claim = in_flight.pop(future)
            busy[claim.subscription_id] -= 1
            finished.append(future.result())
        record(finished)
        delivered += len(finished)
    if saw_more:
        queues.kick(priority)
    return delivered
