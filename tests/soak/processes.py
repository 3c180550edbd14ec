"""The processes a soak starts and abuses: its own Redis, `flask worker`s, the receivers.

Each runs in its own session (process group), so a SIGKILL or SIGTERM to the group also reaches
what it forked (RQ's scheduler), as a service manager's stop does, and each is stopped by its
own id however the soak ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port, kill_group, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
READY = "*** Listening on"  # RQ's line once a worker waits on its queues
HANDED_BACK = re.compile(r"handed (\d+) in-flight deliveries back")


class Workers:
    """`flask worker` processes with the soak's environment (tests.soak.worker: the same
    command, with the dispatcher's INFO lines logged); each logs to its own file."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = {**env, "FLASK_APP": "wsgi.py"}
        self.workdir = workdir
        self.live: dict[int, subprocess.Popen] = {}  # slot -> process
        self.started = 0
        self.logs: list[Path] = []
        self.slot_logs: dict[int, Path] = {}  # slot -> its current worker's log
        self._files: list = []

    def start(self, slot: int) -> int:
        """Start a worker in `slot` (replacing a dead one); returns its pid."""
        self.started += 1
        path = self.workdir / f"worker-{self.started}.log"
        log = open(path, "wb")  # noqa: SIM115
        self._files.append(log)
        self.logs.append(path)
        self.slot_logs[slot] = path
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.soak.worker"],
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

    def wait_ready(self, slot: int, timeout: float) -> float | None:
        """Wait until the worker in `slot` listens on its queues (RQ logs "*** Listening on");
        returns how long that took, or None if it did not within `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(OSError):
                if READY in self.slot_logs[slot].read_text(errors="replace"):
                    return time.monotonic() - started
            if self.live[slot].poll() is not None:
                return None
            time.sleep(0.1)
        return None

    def terminate(self, slot: int, timeout: float) -> tuple[int, float, int | None]:
        """SIGTERM the worker in `slot` (its process group, as a deploy's service manager does)
        and wait for it to exit. Returns (pid, seconds until it exited, exit code); the code
        is None if it outlived `timeout` and was SIGKILLed."""
        process = self.live.pop(slot)
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - started
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # anything of its group left behind
        process.wait(10)
        return process.pid, took, code

    def handed_back(self) -> int:
        """Deliveries SIGTERMed workers said they handed back (from their logs)."""
        total = 0
        for path in self.logs:
            with contextlib.suppress(OSError):
                total += sum(int(n) for n in HANDED_BACK.findall(path.read_text(errors="replace")))
        return total

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
