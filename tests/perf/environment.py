"""The machine and the versions a result came from, so a reader can compare like with like."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import create_engine, text

PACKAGES = ("flask", "sqlalchemy", "rq", "redis", "aiohttp", "psycopg")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def cpu_pressure() -> float | None:
    """Share of the last 60 s in which some runnable task waited for a CPU (Linux PSI), in %."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (FileNotFoundError, IndexError, PermissionError):
        return None
    fields = dict(part.split("=") for part in line.split()[1:])
    return float(fields["avg60"])


def _git_commit() -> str:
    """HEAD, and whether the measured code (dispatcher/, portal/) had uncommitted changes."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "dispatcher", "portal"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not head:
        return "unknown"
    return f"{head} + uncommitted changes in dispatcher/ or portal/" if dirty else head


def describe() -> dict:
    """nproc, memory, CPU model, kernel, load before the run, commit."""
    return {
        "nproc": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "load_before": os.getloadavg(),
        "cpu_pressure_before": cpu_pressure(),
        "commit": _git_commit(),
    }


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def postgres_version(uri: str | None) -> str:
    """The server's version string, or why there is none."""
    if not uri:
        return "unavailable"
    engine = create_engine(uri)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()


def versions(ctx) -> dict:
    """Versions of everything in the measured path."""
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "redis": ctx.redis.version,
        "postgresql": postgres_version(ctx.postgres_uri),
        "receiver": f"{ctx.receiver.kind} {ctx.receiver.version}",
        "database_for_delivery": ctx.database_uri.split(":", 1)[0],
        "packages": {name: _package(name) for name in PACKAGES},
    }
