"""`publish()` latency: publish + commit, in-process, for fan-out 1, 10 and 100.

The event is a standard type with a JSON Schema (invoice.created, its catalog example), so the
figure includes validation. Each fan-out is measured twice, for the two things a commit's kick
can find in Redis:

- a drain job already waiting (the drain-waiting flag is set): the kick is one SET NX. This is
  what nearly every publish pays while workers are busy, since only the first commit after a
  drain starts finds the flag gone;
- no drain waiting (the flag is cleared before each publish): the kick also enqueues an RQ job,
  as the first publish into an idle system does.
"""

from __future__ import annotations

import cProfile
import logging
import pstats
import time

from flask import Flask

from dispatcher import publish, queues
from portal.catalog import STANDARD_EVENT_TYPES
from portal.extensions import db
from portal.services import accounts
from portal.services import subscriptions as subscription_service
from tests.perf import system
from tests.perf.context import Context
from tests.perf.infra import ROOT
from tests.perf.stats import combine, latency_summary

log = logging.getLogger("bench")

FANOUTS = (1, 10, 100)
EVENT_TYPE = "invoice.created"
WARMUP = 10


def _example() -> dict:
    return next(t.example for t in STANDARD_EVENT_TYPES if t.name == EVENT_TYPE)


def _seed(app: Flask, fanout: int, url: str) -> str:
    with app.app_context():
        tenant = accounts.create_tenant(f"publish fan-out {fanout}")
        for _ in range(fanout):
            subscription_service.create(tenant.id, url=url, events=[EVENT_TYPE])
        db.session.commit()
        tenant_id = tenant.id
        db.session.remove()
    return tenant_id


MODES = ("drain_waiting", "no_drain_waiting")


def _one_run(app: Flask, tenant_id: str, samples: int, mode: str = "no_drain_waiting") -> dict:
    data = _example()
    timings: list[float] = []
    with app.app_context():
        for i in range(WARMUP + samples):
            if mode == "no_drain_waiting":
                queues.clear_kick_flag(False)
            started = time.perf_counter()
            publish(EVENT_TYPE, data, tenant_id=tenant_id)
            db.session.commit()
            if i >= WARMUP:
                timings.append((time.perf_counter() - started) * 1000)
        db.session.remove()
    return latency_summary(timings)


# Where publish's time can go; cProfile rows from other files are left out of the table.
PROFILED = ("dispatcher/", "jsonschema/", "/rq/", "/redis/", "sqlalchemy/orm/session.py")


def _short(path: str) -> str:
    return path.split("site-packages/")[-1].replace(str(ROOT) + "/", "")


def publish_profile(app: Flask, tenant_id: str, samples: int, top: int = 12) -> list[dict]:
    """cProfile of `samples` publishes: cumulative share of the time per function."""
    profiler = cProfile.Profile()
    profiler.enable()
    _one_run(app, tenant_id, samples)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, name), (_, _, _, ct, _) in stats.items() if name == "_one_run")
    rows = sorted(
        (
            (ct, f"{name} ({_short(path)})")
            for (path, _, name), (_, _, _, ct, _) in stats.items()
            if any(marker in path for marker in PROFILED)
            and ("jsonschema/" not in path or name in {"validate", "check_schema"})
        ),
        reverse=True,
    )
    return [{"function": label, "percent": round(100 * ct / total, 1)} for ct, label in rows[:top]]


def _databases(ctx: Context) -> list[tuple[str, str]]:
    found = [("sqlite", f"sqlite:///{ctx.workdir / 'publish.db'}")]
    if ctx.postgres_uri:
        found.append(("postgresql", ctx.postgres_uri))
    return found


def publish_latency(ctx: Context) -> dict:
    """p50/p95 of publish + commit per fan-out and kick mode, on a fresh SQLite file and on
    PostgreSQL. `result[db]` holds the drain-waiting figures, `result[db + "_no_drain_waiting"]`
    the others."""
    result: dict = {"event_type": EVENT_TYPE, "samples_per_run": ctx.settings.publish_samples}
    for name, uri in _databases(ctx):
        app = ctx.app if uri == ctx.database_uri else system.make_app(uri)
        system.migrate(app)
        figures: dict[str, dict] = {mode: {} for mode in MODES}
        for fanout in FANOUTS:
            tenant_id = _seed(app, fanout, ctx.receiver.url)
            for mode in MODES:
                runs = [
                    _one_run(app, tenant_id, ctx.settings.publish_samples, mode)
                    for _ in range(ctx.settings.reps)
                ]
                figures[mode][str(fanout)] = combine(runs, ("p50", "p95", "p99"))
                log.info(
                    "publish %s fan-out %d, %s: p50 %.2f ms",
                    name,
                    fanout,
                    mode.replace("_", " "),
                    figures[mode][str(fanout)]["p50"]["median"],
                )
            if fanout == 1 and name == "sqlite":
                result["profile_fanout_1_sqlite"] = publish_profile(app, tenant_id, 100)
        result[name] = figures["drain_waiting"]
        result[f"{name}_no_drain_waiting"] = figures["no_drain_waiting"]
        if app is not ctx.app:
            with app.app_context():
                db.engine.dispose()
    ctx.redis.client().flushdb()  # the drain jobs nobody will run
    return result
