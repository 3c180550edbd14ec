"""The delivery log's first page over 1,000,000 attempts: the API and the portal.

Synthetic history for one tenant (by default 250k deliveries of 125k events to 10 endpoints,
4 attempts each) is bulk-inserted — COPY on PostgreSQL, sqlite3 executemany on SQLite — then the
first page is fetched 50 times per run through Flask's test client, with and without filters.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import Table, text

from portal import create_app
from portal.extensions import db
from portal.models import Attempt, Delivery, Event
from portal.services import accounts
from portal.services import subscriptions as subscription_service
from tests.perf import system
from tests.perf.context import Context
from tests.perf.stats import combine, latency_summary

log = logging.getLogger("bench")

ATTEMPTS_PER_DELIVERY = 4
FANOUT = 2
ENDPOINTS = 10
CHUNK = 20_000
WARMUP = 3
PASSWORD = "bench-password-1"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 80% succeeded, 15% failed (the selective filter a user looks for), 5% pending
STATUS_CYCLE = ("succeeded",) * 16 + ("failed",) * 3 + ("pending",)


@functools.lru_cache(maxsize=4096)
def _time_part(ms: int) -> str:
    return "".join(_ALPHABET[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))


def _sortable_id(prefix: str, ms: int) -> str:
    """An id shaped like Hookline's (prefix + 26 Crockford characters, milliseconds first);
    the random part is 64 bits in hex, which is quicker to make and still in the alphabet."""
    return f"{prefix}_{_time_part(ms)}{random.getrandbits(64):016X}"


def _rows(tenant_id: str, endpoints: list[str], deliveries: int) -> Iterator[tuple[str, dict]]:
    """(table, row) for events, deliveries and attempts, oldest first, over the last 7 days."""
    start = datetime.now(UTC) - timedelta(days=7)
    step = timedelta(days=7) / max(1, deliveries // FANOUT)
    for e in range(deliveries // FANOUT):
        at = start + e * step
        ms = int(at.timestamp() * 1000)
        event_id = _sortable_id("evt", ms)
        event_type = f"bench.e{e % 10:02d}"
        yield "events", {
            "id": event_id, "tenant_id": tenant_id, "type": event_type,
            "data": {"n": e}, "idempotency_key": None, "fingerprint": "0" * 64, "created_at": at,
        }  # fmt: skip
        for f in range(FANOUT):
            delivery_id = _sortable_id("dlv", ms)
            status = STATUS_CYCLE[(e * FANOUT + f) * 7 % len(STATUS_CYCLE)]
            yield "deliveries", {
                "id": delivery_id, "tenant_id": tenant_id, "event_id": event_id,
                "subscription_id": endpoints[(e * FANOUT + f) % len(endpoints)],
                "event_type": event_type, "status": status, "priority": False, "is_test": False,
                "attempt_count": ATTEMPTS_PER_DELIVERY, "next_trigger": "auto",
                "next_attempt_at": at + timedelta(hours=6) if status == "pending" else None,
                "lease_expires_at": None, "last_response_status": 200 if status == "succeeded"
                else 500, "last_attempt_at": at, "created_at": at, "updated_at": at,
            }  # fmt: skip
            for n in range(1, ATTEMPTS_PER_DELIVERY + 1):
                ok = status == "succeeded" and n == ATTEMPTS_PER_DELIVERY
                yield "attempts", {
                    "id": _sortable_id("att", ms + n), "tenant_id": tenant_id,
                    "delivery_id": delivery_id, "number": n, "trigger": "auto", "started_at": at,
                    "duration_ms": 3, "request_headers": {"webhook-id": event_id},
                    "response_status": 200 if ok else 500, "response_headers": {},
                    "response_body": "ok" if ok else "error", "response_truncated": False,
                    "error": None,
                }  # fmt: skip


TABLES: dict[str, Table] = {
    "events": Event.__table__,
    "deliveries": Delivery.__table__,
    "attempts": Attempt.__table__,
}


def _copy(app: Flask, batches: dict[str, list[dict]]) -> None:
    """Write the batches with PostgreSQL's COPY (JSON columns as text)."""
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            with raw.driver_connection.cursor() as cursor:
                for table, rows in batches.items():
                    if not rows:
                        continue
                    columns = ", ".join(rows[0])
                    with cursor.copy(f"COPY {TABLES[table].name} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(
                                [json.dumps(v) if isinstance(v, dict) else v for v in row.values()]
                            )
            raw.commit()
        finally:
            raw.close()


def _sqlite_value(value):
    """What SQLAlchemy would store in SQLite for this value (its DATETIME text format)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _executemany(app: Flask, batches: dict[str, list[dict]]) -> None:
    """Write the batches with the sqlite3 driver's executemany, values pre-converted."""
    with app.app_context(), db.engine.begin() as connection:
        for table, rows in batches.items():
            if not rows:
                continue
            columns = list(rows[0])
            statement = (
                f"INSERT INTO {TABLES[table].name} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            connection.exec_driver_sql(
                statement, [tuple(_sqlite_value(v) for v in row.values()) for row in rows]
            )


def fill(app: Flask, tenant_id: str, endpoints: list[str], deliveries: int) -> float:
    """Bulk-insert the synthetic history; returns the seconds it took."""
    started = time.monotonic()
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    write = _copy if postgres else _executemany
    batches: dict[str, list[dict]] = {name: [] for name in TABLES}
    for table, row in _rows(tenant_id, endpoints, deliveries):
        batches[table].append(row)
        if len(batches["attempts"]) >= CHUNK:
            write(app, batches)
            batches = {name: [] for name in TABLES}
    write(app, batches)
    if postgres:  # what autovacuum would have done by the time a table holds a million rows
        with app.app_context(), db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return time.monotonic() - started


def _seed(app: Flask, url: str) -> tuple[str, list[str], str, str]:
    """A tenant with endpoints, an admin and an API key; returns their handles."""
    with app.app_context():
        tenant = accounts.create_tenant("delivery log")
        endpoints = []
        for i in range(ENDPOINTS):
            subscription, _ = subscription_service.create(
                tenant.id, url=f"{url}?e={i}", events=["*"]
            )
            endpoints.append(subscription.id)
        email = f"admin-{tenant.id.lower()}@bench.example"
        accounts.create_user(tenant.id, email, PASSWORD)
        _, key = accounts.create_api_key(tenant.id, "bench")
        db.session.commit()
        tenant_id = tenant.id
        db.session.remove()
    return tenant_id, endpoints, email, key


def _time_requests(client, path: str, headers: dict, count: int) -> dict:
    timings = []
    for i in range(WARMUP + count):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise AssertionError(f"GET {path} answered {response.status_code}")
        if i >= WARMUP:
            timings.append(elapsed)
    return latency_summary(timings)


def _pages(endpoint: str) -> dict[str, tuple[str, bool]]:
    """Name → (path, is the API) for each page measured."""
    api = "/api/v1/webhooks/deliveries?limit=50"
    return {
        "API, no filter": (api, True),
        "API, status=failed": (api + "&status=failed", True),
        "API, subscription_id": (f"{api}&subscription_id={endpoint}", True),
        "portal /deliveries, no filter": ("/deliveries", False),
        "portal /deliveries, status=failed": ("/deliveries?status=failed", False),
    }


def measure_database(ctx: Context, uri: str) -> dict:
    """Fill one database and time each page."""
    base = system.make_app(uri) if uri != ctx.database_uri else ctx.app
    system.migrate(base)
    tenant_id, endpoints, email, key = _seed(base, ctx.receiver.url)
    seconds = fill(base, tenant_id, endpoints, ctx.settings.log_deliveries)
    app = create_app({"SQLALCHEMY_DATABASE_URI": uri, "TESTING": True, "WTF_CSRF_ENABLED": False})
    portal = app.test_client()
    login = portal.post("/login", data={"email": email, "password": PASSWORD})
    if login.status_code != 302:
        raise AssertionError(f"portal login answered {login.status_code}")
    api = app.test_client()
    bearer = {"Authorization": f"Bearer {key}"}
    pages = {}
    for name, (path, is_api) in _pages(endpoints[0]).items():
        client, headers = (api, bearer) if is_api else (portal, {})
        runs = [
            _time_requests(client, path, headers, ctx.settings.log_requests)
            for _ in range(ctx.settings.reps)
        ]
        pages[name] = combine(runs, ("p50", "p95"))
    for flask_app in {base, app}:
        with flask_app.app_context():
            db.engine.dispose()
    attempts = ctx.settings.log_deliveries * ATTEMPTS_PER_DELIVERY
    return {"attempts": attempts, "fill_seconds": seconds, "pages": pages}


def delivery_log(ctx: Context) -> dict:
    """First-page latency on PostgreSQL (the production database) and on SQLite."""
    result: dict = {"deliveries": ctx.settings.log_deliveries}
    targets = [("sqlite", f"sqlite:///{ctx.workdir / 'log.db'}")]
    if ctx.postgres_uri:
        targets.insert(0, ("postgresql", ctx.postgres_uri))
    for name, uri in targets:
        result[name] = measure_database(ctx, uri)
        worst = max(page["p95"]["median"] for page in result[name]["pages"].values())
        log.info("delivery log on %s: worst first-page p95 %.1f ms", name, worst)
    result["pages"] = {
        f"{page} ({name})": figure
        for name, _ in targets
        for page, figure in result[name]["pages"].items()
    }
    return result
