"""The processes a soak starts and abuses: its own Redis, `flask worker`s, the receivers.

Each runs in its own session (process group), so a SIGKILL to the group also takes what it
forked (RQ's scheduler), and each is stopped by its own id however the soak ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.servers import free_port, kill_group, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    """`flask worker` processes with the soak's environment; each logs to its own file."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {**env, "FLASK_APP": "wsgi.py"}
        self.workdir = workdir
        self.live: dict[int, subprocess.Popen] = {}  # slot -> process
        self.started = 0
        self._files: list = []

    def start(self, slot: int) -> int:
        """Start a worker in `slot` (replacing a dead one); returns its pid."""
        self.started += 1
        log = open(self.workdir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
        self._files.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.live[slot] = process
        return process.pid

    def kill(self, slot: int) -> int:
        """SIGKILL the worker in `slot` and what it forked, mid-whatever; returns its pid."""
        process = self.live.pop(slot)
        kill_group(process)
        return process.pid

    def dead(self) -> list[int]:
        """Slots whose worker exited by itself (it never should)."""
        return [slot for slot, process in self.live.items() if process.poll() is not None]

    def stop_all(self) -> None:
        for process in self.live.values():
            kill_group(process)
        self.live.clear()
        for log in self._files:
            log.close()


class Receivers:
    """The receiver process (tests.soak.receivers) on a free port."""

    def __init__(self, secrets_file: Path, workdir: Path) -> None:
        self.port = free_port()
        self.secrets_file = secrets_file
        self.log = workdir / "receivers.log"
        self.process: subprocess.Popen | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.soak.receivers", str(self.port),
                 str(self.secrets_file)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for_port(self.port)

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url("/_stats"), timeout=30) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None
