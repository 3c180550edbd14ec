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
    only: frozenset[str]
    database: str  # where the delivery figures run: sqlite or postgres
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
            only=frozenset(only),
            database=env.get("BENCH_DATABASE", "sqlite").strip().lower(),
            postgres_url=env.get(
                "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/hookline_bench"
            ),
        )

    def wants(self, figure: str) -> bool:
        return not self.only or figure in self.only


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
