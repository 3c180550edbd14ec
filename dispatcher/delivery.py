"""The delivery job: claim due deliveries fairly across endpoints and send them concurrently.

One RQ job ("drain") serves many deliveries, because RQ's per-job cost is several times that of
an HTTP POST on a kept-alive connection. Sends run on the worker process's sender
(dispatcher/sending.py), which outlives the job, keeps connections alive and records every
attempt. Each claim round gives every endpoint with due work its turn (round-robin), as much as
its adaptive limit allows (dispatcher/concurrency.py), skipping endpoints whose breaker is open
or whose receiver asked for a pause (dispatcher/health.py) and taking rate-limit tokens
(dispatcher/throttle.py): a slow, dead or throttled endpoint delays its own deliveries only.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.fernet import InvalidToken
from flask import current_app
from sqlalchemy import bindparam, select

from dispatcher import claims, clock, health, http, message, queues, sending, signing, throttle
from dispatcher.claims import Claim
from dispatcher.errors import TargetRefused
from dispatcher.models import Event, Subscription
from dispatcher.outcomes import Outcome
from dispatcher.sending import RECORD_EVERY_SECONDS, Sender, sender
from dispatcher.settings import DRAIN_BUDGET_SECONDS, get_settings
from dispatcher.ssrf import Target, check_target
from dispatcher.store import db

log = logging.getLogger(__name__)

TARGET_CACHE_SECONDS = 30.0
CLAIM_EVERY_SECONDS = 0.05  # the longest freed slots wait for a claim when the pool is half busy
LOOK_EVERY_SECONDS = 0.1  # how often a drain looks for new work (a Redis flag) or a new list
IDLE_LOOK_SECONDS = 1.0  # how often a drain with nothing to claim looks in the database anyway
FLAG_LOOK_SECONDS = 0.01  # how often a drain with nothing to claim checks the kick flag
LINGER_SECONDS = 0.25  # a drain that ran out of work waits this long for more before it ends
PRIORITY_LOOK_SECONDS = 0.1  # how often a busy normal drain checks for tests and manual retries

_secrets_cache: dict[str, list[signing.StoredSecret]] = {}
_target_cache: dict[tuple[str, bool, bool], tuple[float, Target | TargetRefused]] = {}


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


# What a round of claims needs to build its requests (built once: a statement made per round
# cost more in SQLAlchemy than the query in the database).
_EVENTS = select(Event.id, Event.type, Event.created_at, Event.tenant_id, Event.data).where(
    Event.id.in_(bindparam("ids", expanding=True))
)
_SUBSCRIPTIONS = select(
    Subscription.id,
    Subscription.url,
    Subscription.headers,
    Subscription.is_active,
    Subscription.secrets_encrypted,
).where(Subscription.id.in_(bindparam("ids", expanding=True)))


UNREADABLE_SECRET = (
    "the endpoint's signing secret cannot be decrypted with any key in "
    "HOOKLINE_ENCRYPTION_KEYS (a key was removed before `flask secrets re-encrypt` finished?)"
)


def _signing_keys(token: str, now: datetime) -> list[signing.SigningKey] | None:
    """The keys that sign now: HMAC (v1) or ed25519 (v1a), by each secret's prefix. None if
    no configured encryption key opens the token: that endpoint's deliveries fail (and are
    retried), the others' go on."""
    try:
        stored = _stored_secrets(token)
    except InvalidToken:
        log.error("a subscription's signing secret cannot be decrypted; its deliveries fail")
        return None
    return [signing.signing_key(s.secret) for s in signing.valid_secrets(stored, now)]


def _refused(claim: Claim, reason: str, headers: dict[str, str] | None = None) -> Outcome:
    """An attempt that failed before any request was made, recorded like any other."""
    response = http.Response(
        started_at=clock.now(), duration_ms=0, error=f"refused before sending: {reason}"
    )
    return Outcome(claim, headers or {}, response=response)


def _prepare(claims: list[Claim]) -> tuple[list[tuple[Outcome, tuple]], list[Outcome]]:
    """Build each claim's request; claims that cannot be sent become cancel/fail outcomes."""
    events, subscriptions = _rows_for(claims)
    requests = _Requests(now=clock.now())
    ready: list[tuple[Outcome, tuple]] = []
    unsendable: list[Outcome] = []
    for claim in claims:
        event = events.get(claim.event_id)
        subscription = subscriptions.get(claim.subscription_id)
        if event is None or subscription is None or not subscription.is_active:
            unsendable.append(Outcome(claim, {}, cancel_reason="endpoint disabled or deleted"))
            continue
        keys = requests.keys_for(subscription)
        if keys is None:
            unsendable.append(_refused(claim, UNREADABLE_SECRET))
            continue
        body = requests.body_for(event)
        headers = requests.headers_for(claim, event, subscription, body, keys)
        try:
            target = requests.target_for(subscription.url)
        except TargetRefused as exc:
            unsendable.append(_refused(claim, str(exc), headers))
            continue
        ready.append((Outcome(claim, headers), (target, body, headers)))
    return ready, unsendable


def _rows_for(claims: list[Claim]) -> tuple[dict, dict]:
    """The claims' events and subscriptions by id, read in one short transaction."""
    event_ids = list({c.event_id for c in claims})
    subscription_ids = list({c.subscription_id for c in claims})
    events = {row.id: row for row in db.session.execute(_EVENTS, {"ids": event_ids})}
    subscriptions = {
        row.id: row for row in db.session.execute(_SUBSCRIPTIONS, {"ids": subscription_ids})
    }
    db.session.commit()  # end the read; nothing here may hold a snapshot while we send
    return events, subscriptions


def _webhook_timestamp() -> int:
    """The `webhook-timestamp` of the attempts made now, in Unix seconds.

    The receiver checks it against its own clock, so it is real (wall-clock) time, never the
    injectable clock, which tests move hours ahead to expire secrets and pauses."""
    return int(time.time())


class _Requests:
    """What a round's requests share: one body per event and one set of signing keys per
    endpoint, both made once, and the same webhook-timestamp for all."""

    def __init__(self, now: datetime) -> None:
        settings = get_settings()
        self.now = now  # when the secrets must be valid (the injectable clock)
        self.timestamp = _webhook_timestamp()
        self.allow_private = settings.allow_private_targets
        self.https_only = settings.https_only
        self._bodies: dict[str, bytes] = {}
        self._keys: dict[str, list[signing.SigningKey] | None] = {}

    def keys_for(self, subscription) -> list[signing.SigningKey] | None:
        """The endpoint's signing keys, or None if its secret cannot be decrypted."""
        if subscription.id not in self._keys:
            self._keys[subscription.id] = _signing_keys(subscription.secrets_encrypted, self.now)
        return self._keys[subscription.id]

    def body_for(self, event) -> bytes:
        body = self._bodies.get(event.id)
        if body is None:
            body = self._bodies[event.id] = message.body_for(
                event.id, event.type, event.created_at, event.tenant_id, event.data
            )
        return body

    def headers_for(
        self, claim: Claim, event, subscription, body: bytes, keys: list[signing.SigningKey]
    ) -> dict[str, str]:
        return message.headers_for(
            event_id=event.id,
            event_type=event.type,
            attempt_number=claim.attempt_number,
            body=body,
            keys=keys,
            timestamp=self.timestamp,
            custom=subscription.headers,
        )

    def target_for(self, url: str) -> Target:
        """The checked address to connect to; TargetRefused if the URL may not be sent to."""
        return _target(url, self.allow_private, self.https_only)


@dataclass
class Round:
    """What one claim round found."""

    claims: list[Claim] = field(default_factory=list)
    more: bool = False  # some endpoint had more due work than it was given
    resume_at: datetime | None = None  # when a held-back endpoint may next be sent to

    @property
    def refill(self) -> bool:
        """Whether finished sends are worth another round: the round had more due than it
        was given, or claimed all that was due with nothing held back. A round that left
        work waiting on a pause or a rate-limit token resumes at `resume_at` instead: a
        round per finished send would only find the same endpoint still held."""
        return self.more or (bool(self.claims) and self.resume_at is None)


def drain(priority: bool = False) -> int:
    """Claim and send what is due until nothing is, or the time budget is spent. Returns how
    many deliveries it started."""
    try:
        return _drain(priority)
    finally:
        # The worker keeps one app context for its whole life, so end the session per job.
        db.session.remove()


def _drain(priority: bool) -> int:
    out = sender(current_app._get_current_object())
    with out.consumer:  # this job writes the attempts while it runs
        try:
            return _drain_with(out, priority)
        except Exception:
            # A claim that failed (the database restarting, a deadlock) leaves the session
            # unusable: roll it back, or recording what finished would fail and drop it.
            db.session.rollback()
            raise
        finally:
            out.record_finished()


def _drain_with(out: Sender, priority: bool) -> int:
    queues.clear_kick_flag(priority)
    return _Drain(out, priority).run()


class _Drain:
    """One drain job's loop: when to claim, when to record, when to sleep, and when to end.

    Its pacing is in monotonic seconds (the budget, the intervals between claims and looks);
    the one timestamp, `round.resume_at` (when a held-back endpoint may be sent to again), is
    a moment on the injectable clock, like the pauses in the database it comes from, and is
    compared with `clock.now()`."""

    def __init__(self, out: Sender, priority: bool) -> None:
        self.out = out
        self.priority = priority
        self.lease = timedelta(seconds=get_settings().delivery_timeout)
        self.budget_ends = time.monotonic() + DRAIN_BUDGET_SECONDS
        self.refill_at = max(1, out.working // 2)  # this many free slots are claimed at once
        self.started = 0  # deliveries this drain has started
        self.asked_for_help = False  # it kicked another drain because more was due
        self.last_claim = 0.0
        self.next_priority_look = 0.0
        self.sent_at_claim = 0  # the sender's count of finished sends at the last claim
        self.last_work = self.last_record = time.monotonic()
        self.round = Round(more=True)
        self.due = DueList()

    def run(self) -> int:
        """Claim and send until nothing is due or the budget is spent; returns how many
        deliveries it started."""
        out = self.out
        while time.monotonic() < self.budget_ends and not sending.stopping():
            now = time.monotonic()
            free = out.free_slots()
            woke = out.sent_count != self.sent_at_claim  # sends finished since the last claim
            if free and self._time_to_claim(now, free, woke):
                self._claim(now, free)
            elif not free:
                out.wake.clear()  # every slot is busy: the next finished send wakes us
                self.sent_at_claim = out.sent_count
            if now - self.last_record >= RECORD_EVERY_SECONDS or not out.in_flight():
                out.record_finished()
                self.last_record = now
            if self._out_of_work(now):
                return self.started  # what is in flight is the sender's to record
            self._sleep(woke)
        queues.kick(self.priority)  # the budget is spent (or the worker stops): another job goes on
        return self.started

    def _time_to_claim(self, now: float, free: int, woke: bool) -> bool:
        """Claim when sends finished (at once when half the pool is free, else every
        CLAIM_EVERY), when a held-back endpoint may go again, and when work was committed
        since (`_time_to_look`); never in a busy loop over endpoints that are at their limit."""
        last = self.round
        if (
            woke
            and last.refill
            and (free >= self.refill_at or now - self.last_claim >= CLAIM_EVERY_SECONDS)
        ):
            return True
        if last.resume_at is not None and last.resume_at <= clock.now():
            return True
        return _time_to_look(last, now - self.last_claim, self.priority)

    def _claim(self, now: float, free: int) -> None:
        """Run a claim round (looking at the priority lane every PRIORITY_LOOK) and start what
        it claimed."""
        out = self.out
        out.wake.clear()
        self.last_claim, self.sent_at_claim = now, out.sent_count
        look = self.priority
        if not look and now >= self.next_priority_look:
            # Tests and manual retries kick the priority queue; while that job waits behind
            # this drain, its flag says so. Asking Redis is cheaper than a claim that finds
            # nothing (an UPDATE and a commit, five times a second at a rate limit). The
            # sweeper kicks again for priority work whose kick was lost.
            self.next_priority_look = now + PRIORITY_LOOK_SECONDS
            look = queues.drain_waiting(priority=True)
        self.round = _claim_round(out, self.due, free, self.lease, self.priority, look)
        out.wake_at_free = self.refill_at if self.round.more else 1
        self.started += _start(out, self.round.claims)
        if self.round.more and not self.asked_for_help:
            # More is due than this drain can hold: let another worker join in now.
            queues.kick(self.priority)
            self.asked_for_help = True

    def _out_of_work(self, now: float) -> bool:
        """Whether the drain should end: nothing was due for LINGER, or all that is due is held
        back past the end of the budget (then RQ's scheduler starts a drain when it may go)."""
        last = self.round
        if last.claims or last.more:
            self.last_work = now
            return False
        if last.resume_at is None:
            # Nothing due. Linger a moment for the next commit: at a steady trickle a fresh
            # event then goes out within FLAG_LOOK instead of waiting for a new RQ job.
            return now - self.last_work >= LINGER_SECONDS
        budget_left = timedelta(seconds=self.budget_ends - now)
        if last.resume_at > clock.now() + budget_left:
            queues.schedule_drain(last.resume_at)
            return True
        return False

    def _sleep(self, woke: bool) -> None:
        """Wait for a send to finish, or until it is time to look again."""
        out = self.out
        out.wake.clear()
        if woke and self.round.refill:
            # Sends are finishing but too few slots are free to claim yet: wake at the next
            # one to finish, when CLAIM_EVERY is up, or at the next look at the kick flag (a
            # fresh commit must not wait out CLAIM_EVERY: at 316 events/s that was 8 ms of p50).
            until_claim = self.last_claim + CLAIM_EVERY_SECONDS - time.monotonic()
            out.wake.wait(max(0.001, min(until_claim, FLAG_LOOK_SECONDS)))
        else:
            waiting = not self.round.refill and not out.in_flight()
            out.wake.wait(_next_look(self.round.resume_at, waiting))


def _time_to_look(last: Round, since_claim: float, priority: bool) -> bool:
    """Whether to run a claim round although no send finished: every LOOK_EVERY while the
    last round found work, else when a commit since then set the kick flag (a cheap Redis
    call every FLAG_LOOK instead of a database round), and every IDLE_LOOK at the latest."""
    if since_claim >= IDLE_LOOK_SECONDS:
        return True
    if last.more:
        # A backlog: rounds follow finished sends, and the due list is renewed every
        # LOOK_EVERY, so new work is found without asking Redis on every turn.
        return since_claim >= LOOK_EVERY_SECONDS
    if last.refill and since_claim >= LOOK_EVERY_SECONDS:
        return True
    return since_claim >= FLAG_LOOK_SECONDS and queues.take_kick_flag(priority)


def _next_look(resume_at: datetime | None, waiting: bool) -> float:
    """Seconds to sleep unless a send finishes first: until the next look at the kick flag,
    or the end of a pause if sooner.

    A drain `waiting` on held-back work alone (nothing in flight, an endpoint paused or out
    of rate-limit tokens until `resume_at`) looks at the flag every LOOK_EVERY instead of
    every FLAG_LOOK: a worker held at a rate limit for minutes would otherwise spend more
    CPU asking Redis than sending. Fresh work for other endpoints then waits up to LOOK_EVERY
    for this worker (an idle worker takes the drain job the commit enqueued at once)."""
    wait = FLAG_LOOK_SECONDS
    if resume_at is not None:
        if waiting:
            wait = LOOK_EVERY_SECONDS
        wait = min(wait, (resume_at - clock.now()).total_seconds())
    return max(0.001, wait)


def _start(out: Sender, claimed: list[Claim]) -> int:
    """Prepare the claimed deliveries and hand them to the sender."""
    if not claimed:
        return 0
    settings = get_settings()
    timeout, connect = float(settings.delivery_timeout), float(settings.connect_timeout)
    ready, unsendable = _prepare(claimed)
    out.add_unsendable(unsendable)
    for outcome, (target, body, headers) in ready:
        out.submit(outcome, target, body, headers, timeout, connect)
    return len(claimed)


class DueList:
    """The endpoints with pending work, as one drain last listed them.

    Listing costs an index probe per endpoint. A drain whose rounds fill every free slot
    (a backlog) lists at most every LOOK_EVERY and in between claims from the list, dropping
    an endpoint once a claim finds nothing more due there; a drain with slots to spare lists
    every round, so fresh work for any endpoint goes out at once."""

    def __init__(self) -> None:
        self._endpoints: dict[str, claims.DueEndpoint] = {}
        self._listed_at = -LOOK_EVERY_SECONDS
        self.thin = True  # the last round left slots free: list again before the next one

    def current(self) -> list[claims.DueEndpoint]:
        stale = time.monotonic() - self._listed_at >= LOOK_EVERY_SECONDS
        if self.thin or stale or not self._endpoints:
            self._endpoints = {e.subscription_id: e for e in claims.due_endpoints()}
            self._listed_at = time.monotonic()
        return list(self._endpoints.values())

    def spent(self, subscription_id: str) -> None:
        """A claim got fewer rows than it asked for: nothing more is due there for now."""
        self._endpoints.pop(subscription_id, None)


def _claim_round(
    out: Sender, due: DueList, free: int, lease: timedelta, priority: bool, look: bool
) -> Round:
    """Claim up to `free` deliveries: priority ones first (when `look`), then the normal lane."""
    round_ = Round()
    if look:
        round_.claims = claims.claim_priority(free, lease=lease)
        round_.more = len(round_.claims) == free
    if priority or len(round_.claims) >= free:
        return round_
    normal = _claim_normal(out, due, free - len(round_.claims), lease)
    normal.claims = round_.claims + normal.claims
    normal.more = normal.more or round_.more
    return normal


def _claim_normal(out: Sender, due: DueList, free: int, lease: timedelta) -> Round:
    """One round-robin turn over the endpoints with due work."""
    now = clock.now()
    round_ = Round()
    wanted = _wanted(out, due.current(), now, round_)
    grants = _share(wanted.rooms, free)
    due.thin = sum(grants.values()) < free
    round_.more = round_.more or sum(grants.values()) < sum(wanted.rooms.values())
    _take_rate_tokens(grants, wanted.rates, now, round_)
    # Database writes last, so SQLite's write lock is held only for the claim itself.
    round_.claims = _lease_granted(grants, wanted.probes, lease)
    counts: Counter[str] = Counter()
    for claim in round_.claims:
        counts[claim.subscription_id] += 1
        _last_turn[claim.subscription_id] = time.monotonic()  # an order, not a timestamp
    for sid, granted in grants.items():
        if counts[sid] < granted:
            due.spent(sid)
    # An endpoint that got all it asked for may have more; a rate-limited one waits for its
    # next token (`resume_at`) instead of a retry on every finished send.
    round_.more = round_.more or any(
        n == grants[sid] for sid, n in counts.items() if sid not in wanted.rates
    )
    return round_


@dataclass
class _Wanted:
    """What the endpoints of a round may take: room under each one's adaptive limit, the rate
    limits to take tokens from, and the open breakers due a probe."""

    rooms: dict[str, int] = field(default_factory=dict)
    rates: dict[str, int] = field(default_factory=dict)
    probes: set[str] = field(default_factory=set)


def _wanted(
    out: Sender, endpoints: list[claims.DueEndpoint], now: datetime, round_: Round
) -> _Wanted:
    """Sort the due endpoints into those that may be sent to now and those held back (which
    set `round_.resume_at`, or `round_.more` for one at its concurrency limit)."""
    wanted = _Wanted()
    for endpoint in endpoints:
        sid = endpoint.subscription_id
        if endpoint.due_at is None or endpoint.due_at > now:
            continue  # only future retries (the scheduler's) or rows in flight
        held = _held_until(out, endpoint, now)
        if held is not None:
            round_.resume_at = min(held, round_.resume_at or held)
        elif endpoint.circuit_open:
            if not out.in_flight(sid):
                wanted.probes.add(sid)  # its pause is over: one request may test it
                wanted.rooms[sid] = 1
        elif (room := out.room(sid)) <= 0:
            round_.more = True  # at its limit: the drain waits for its sends to finish
        else:
            wanted.rooms[sid] = room
            if endpoint.rate_limit:
                wanted.rates[sid] = endpoint.rate_limit
    return wanted


def _held_until(out: Sender, endpoint: claims.DueEndpoint, now: datetime) -> datetime | None:
    """Until when the endpoint may not be sent to: its recorded pause, or a Retry-After this
    process saw and has not recorded yet, whichever ends later (None: not held)."""
    pauses = (endpoint.paused_until, out.held_until(endpoint.subscription_id, now))
    return max((t for t in pauses if t and t > now), default=None)


def _take_rate_tokens(
    grants: dict[str, int], rates: dict[str, int], now: datetime, round_: Round
) -> None:
    """Cut rate-limited endpoints' grants to the tokens they got (fleet-wide, from Redis); the
    round resumes when the next token is due."""
    wanted = {sid: (rate, grants[sid]) for sid, rate in rates.items() if grants.get(sid)}
    for sid, (granted, wait) in throttle.take(wanted).items():
        if granted < grants[sid]:
            grants[sid] = granted
            later = now + timedelta(seconds=wait)
            round_.resume_at = min(later, round_.resume_at or later)


def _lease_granted(grants: dict[str, int], probes: set[str], lease: timedelta) -> list[Claim]:
    """Take the probe rights, lease the granted deliveries, give back the probe rights nothing
    was claimed for, and commit."""
    # In id order: two workers taking probe rows in different orders deadlocked.
    for sid in sorted(probes & set(grants)):
        if not health.claim_probe(sid, lease):
            del grants[sid]  # another worker is probing it
    claimed = claims.claim_for(grants, lease=lease, probes=frozenset(probes))
    got = {c.subscription_id for c in claimed}
    for sid in sorted((probes & set(grants)) - got):
        health.release_probe(sid)
    db.session.commit()
    return claimed


_last_turn: dict[str, float] = {}  # endpoint → when it last got deliveries (round-robin order)


def _share(rooms: dict[str, int], free: int) -> dict[str, int]:
    """Deal `free` slots one at a time over the endpoints, least recently served first, each
    up to its room: with more endpoints than slots, each round serves different ones."""
    if len(_last_turn) > 100_000:
        _last_turn.clear()
    order = sorted(rooms, key=lambda sid: _last_turn.get(sid, 0.0))
    grants = dict.fromkeys(order, 0)
    while free > 0 and order:
        still = []
        for sid in order:
            if free == 0:
                break
            grants[sid] += 1
            free -= 1
            if grants[sid] < rooms[sid]:
                still.append(sid)
        order = still
    return {sid: n for sid, n in grants.items() if n}
