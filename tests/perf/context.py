"""What every figure shares: settings, the running servers, the app, and the worker environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from tests.perf.infra import Receiver, RedisServer
from tests.perf.system import Fleet


@dataclass(frozen=True)
class Settings:
    """Sizes of each figure; BENCH_QUICK=1 shrinks them to a smoke run of one repetition."""

    quick: bool
    reps: int
    ceiling_requests: int
    naive_jobs: int
    backlog_events: int
    subscriptions: int
    latency_seconds: float
    publish_samples: int
    log_deliveries: int
    log_requests: int
    busy_events: int
    dead_events: int  # to every one of the 100 endpoints
    dead_seconds: float  # the longest a dead-endpoint run may take before it is cut off
    neighbour_backlog: int
    neighbour_events: int
    throttle_events: int
    capped_events: int
    only: frozenset[str]
    database: str  # where the single-database figures (profile, latency, slow) run
    databases: tuple[str, ...]  # where the per-database delivery figures run, in order
    postgres_url: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        quick = env.get("BENCH_QUICK", "").strip().lower() in {"1", "true", "yes"}
        only = {name.strip() for name in env.get("BENCH_ONLY", "").split(",") if name.strip()}
        return cls(
            quick=quick,
            reps=int(env.get("BENCH_REPS") or (1 if quick else 3)),
            ceiling_requests=1000 if quick else 5000,
            naive_jobs=30 if quick else 60,
            backlog_events=int(env.get("BENCH_EVENTS") or (500 if quick else 5000)),
            subscriptions=50,
            latency_seconds=3.0 if quick else 10.0,
            publish_samples=30 if quick else 100,
            log_deliveries=2_500 if quick else 250_000,
            log_requests=10 if quick else 50,
            busy_events=300 if quick else 1500,
            dead_events=10 if quick else 40,
            dead_seconds=30.0 if quick else 120.0,
            neighbour_backlog=4000 if quick else 10_000,
            neighbour_events=6 if quick else 20,
            throttle_events=300,
            capped_events=60 if quick else 200,
            only=frozenset(only),
            database=_database_name(env.get("BENCH_DATABASE", "sqlite")),
            databases=tuple(
                _database_name(name)
                for name in env.get("BENCH_DATABASES", "sqlite,postgresql").split(",")
                if name.strip()
            ),
            postgres_url=env.get(
                "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/hookline_bench"
            ),
        )

    def wants(self, figure: str) -> bool:
        return not self.only or figure in self.only


def _database_name(name: str) -> str:
    """sqlite or postgresql (postgres and pg are accepted too)."""
    lowered = name.strip().lower()
    if lowered in {"postgres", "postgresql", "pg"}:
        return "postgresql"
    if lowered == "sqlite":
        return "sqlite"
    raise ValueError(f"unknown bench database {name!r}: sqlite or postgresql")


@dataclass
class Context:
    """The running system one bench invocation measures."""

    settings: Settings
    workdir: Path
    receiver: Receiver
    redis: RedisServer
    env: dict[str, str]  # what worker processes get on top of os.environ
    app: Flask  # on the delivery database
    database_uri: str
    postgres_uri: str | None
    notes: list[str] = field(default_factory=list)
    fleets: dict[str, Fleet] = field(default_factory=dict)
    figures: dict[str, dict] = field(default_factory=dict)  # results so far, by figure name

    @property
    def database(self) -> str:
        """sqlite or postgresql: where this context's app and workers keep their rows."""
        return "postgresql" if self.database_uri.startswith("postgresql") else "sqlite"
