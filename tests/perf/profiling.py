"""Where a worker's time goes under load: py-spy attached to the 1-worker backlog run.

This run is extra (not one of the measured repetitions). py-spy samples without pausing the
worker (--nonblocking) and only threads holding the GIL (--gil): the worker is one Python
process, so GIL time is the budget every delivery spends from. Samples taken while the worker
was still importing are left out.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.perf import delivery
from tests.perf.context import Context

log = logging.getLogger("bench")

TOP = 10


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _function(frame: str) -> str:
    """'post (dispatcher/http.py)' from py-spy's 'post (dispatcher/http.py:123)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})" if where else name


# Where a frame's file says its time belongs, first match wins.
PACKAGES = (
    ("sqlalchemy/", "SQLAlchemy"),
    ("sqlite3/", "sqlite3 driver"),
    ("psycopg/", "psycopg driver"),
    ("aiohttp/", "aiohttp + asyncio"),
    ("yarl/", "aiohttp + asyncio"),
    ("multidict/", "aiohttp + asyncio"),
    ("asyncio/", "aiohttp + asyncio"),
    ("selectors.py", "aiohttp + asyncio"),
    ("socket.py", "aiohttp + asyncio"),
    ("ssl.py", "aiohttp + asyncio"),
    ("json/", "json"),
    ("redis/", "redis + rq"),
    ("rq/", "redis + rq"),
    ("concurrent/", "threads and futures"),
    ("threading.py", "threads and futures"),
    ("queue.py", "threads and futures"),
    ("cryptography/", "cryptography (Fernet)"),
    ("hmac.py", "signing (hmac)"),
    ("dispatcher/", "dispatcher (own code)"),
    ("portal/", "portal (own code)"),
)


def _package(function: str) -> str:
    return next((label for marker, label in PACKAGES if marker in function), "other")


def top_functions(raw: str, top: int = TOP) -> dict:
    """From py-spy's raw (collapsed) output: the functions with the most samples of their own,
    self samples summed by package, and the dispatcher's own functions with everything they
    call (inclusive)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "_find_and_load" in stack:
            continue
        frames = [_function(f) for f in stack.split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    share = lambda n: round(100 * n / total, 1) if total else 0.0  # noqa: E731
    packages: collections.Counter[str] = collections.Counter()
    for function, samples in own.items():
        packages[_package(function)] += samples
    dispatcher = [(f, n) for f, n in inclusive.most_common() if "dispatcher/" in f]
    return {
        "samples": total,
        "self": [{"function": f, "percent": share(n)} for f, n in own.most_common(top)],
        "packages": [{"package": p, "percent": share(n)} for p, n in packages.most_common()],
        "dispatcher_inclusive": [{"function": f, "percent": share(n)} for f, n in dispatcher][
            : top + 2
        ],
    }


def profile(ctx: Context) -> dict:
    """Profile one worker through the throughput backlog."""
    binary = _py_spy()
    if binary is None:
        ctx.notes.append("py-spy is not installed (pip install py-spy): no profile.")
        return {"available": False}
    output = ctx.workdir / "profile.txt"
    spies: list[subprocess.Popen] = []

    def attach(pids: list[int]) -> None:
        command = [binary, "record", "--nonblocking", "--gil", "--format", "raw", "--rate", "250"]
        spies.append(
            subprocess.Popen(
                [*command, "--output", str(output), "--pid", str(pids[0])],
                stdout=subprocess.DEVNULL,
                stderr=open(ctx.workdir / "py-spy.log", "w"),  # noqa: SIM115
            )
        )

    fleet = delivery.backlog_fleet(ctx)
    try:
        with delivery.running_workers(ctx, 1, on_running=attach):
            run = delivery.replay(ctx, fleet)
    finally:
        for spy in spies:  # the worker has stopped: py-spy writes its file and exits
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(10)
    if not output.exists():
        ctx.notes.append("py-spy produced no profile (see py-spy.log in the bench directory).")
        return {"available": False}
    result = top_functions(output.read_text())
    result.update(available=True, per_second_while_profiled=run["per_second"])
    log.info("profile: top self %s", [f["function"] for f in result["self"][:5]])
    return result
