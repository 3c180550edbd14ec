"""Fixtures for tests that run real `flask worker` processes on a Redis of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.connection import get_redis
from portal import create_app
from portal.extensions import db
from tests.conftest import TEST_CONFIG, _clean_database
from tests.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """`flask worker` processes pointed at the test database and the test's own Redis."""

    def __init__(self, redis_url: str) -> None:
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "HOOKLINE_SWEEP_INTERVAL": "1",
            "HOOKLINE_DELIVERY_TIMEOUT": "2",
            # An attempt that fails on a loaded machine is retried within seconds, not minutes.
            "HOOKLINE_RETRY_SCHEDULE": "1,1,2,2,5,5,10",
            "FLASK_APP": "wsgi.py",
        }
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def own_redis():
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def fault_app(test_env, own_redis):
    app = create_app({**TEST_CONFIG, "REDIS_URL": own_redis.url})
    with app.app_context():
        _clean_database()
        get_redis().flushdb()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def workers(own_redis):
    pool = Workers(own_redis.url)
    yield pool
    pool.stop_all()
