"""`make run`'s orchestrator, end to end: it serves, delivers to its demo receiver, and a Ctrl-C
leaves no process behind (web, worker, the worker's scheduler, the embedded Redis)."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from devtools.devrun import port_is_free

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 180.0  # generous: other test runs may share the two cores
FLASK = [sys.executable, "-m", "flask"]
PAYLOAD = '{"invoice_id": "inv_devrun"}'

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (the orchestrator's web, worker and setup steps)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Output:
    """The orchestrator's stdout, line by line, readable with a timeout."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stream = stream
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        for line in self.stream:
            self.lines.put(line)

    def close(self) -> None:
        """Once the process has exited: finish reading and close the pipe."""
        self.pump.join(timeout=10)
        self.stream.close()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(f"no line matched {pattern!r}; output was:\n{''.join(self.seen)}")


@pytest.fixture
def devrun_env(tmp_path):
    """An environment that keeps this run's data under tmp_path, not in the repo's instance/."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_URL", "FLASK_APP", "HOOKLINE_ENV"}
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'devrun.db'}",
        SECRET_KEY="devrun-test",
        HOOKLINE_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        HOOKLINE_QUEUE_PREFIX=f"hookline-devrun-{os.getpid()}",
        HOOKLINE_PORT=str(_free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


def _start(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    launcher = (
        "import sys; from pathlib import Path; from devtools.devrun import main; "
        "sys.exit(main([], instance=Path(sys.argv[1])))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", launcher, str(tmp_path / "instance")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_make_run_serves_delivers_and_ctrl_c_leaves_no_process(tmp_path, devrun_env):
    port = int(devrun_env["HOOKLINE_PORT"])
    devrun = _start(tmp_path, devrun_env)
    output = Output(devrun.stdout)
    try:
        tenant = output.wait_for(r"tenant: (ten_\w+)", STARTUP_TIMEOUT).group(1)
        output.wait_for(r"Press Ctrl-C to stop everything", 10)
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
                assert reply.status == 200

        redis_socket = tmp_path / "instance" / "redis.sock"
        redis_pid = int((tmp_path / "instance" / "redis.pid").read_text())
        published = subprocess.run(
            [*FLASK, "events", "publish", "--tenant", tenant, "invoice.created", PAYLOAD],
            cwd=ROOT,
            env=dict(devrun_env, REDIS_URL=f"unix://{redis_socket}", FLASK_APP="wsgi:app"),
            capture_output=True,
            text=True,
            check=True,
        )
        event_id = published.stdout.strip().splitlines()[-1]
        output.wait_for(rf"\[demo receiver\] invoice\.created\s+webhook-id={event_id}", 30)

        groups = _children_of(devrun.pid)
        assert len(groups) == 2, "expected the web and worker processes"
        devrun.send_signal(signal.SIGINT)
        assert devrun.wait(timeout=30) == 0
        output.wait_for(r"stopped; nothing left running", 5)
    finally:
        if devrun.poll() is None:
            os.killpg(devrun.pid, signal.SIGKILL)
            devrun.wait()
        output.close()

    for pgid in groups:
        assert not _group_exists(pgid), f"process group {pgid} outlived make run"
    assert not Path(f"/proc/{redis_pid}").exists() or "Z" in _state(redis_pid)
    assert port_is_free(port)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_make_run_refuses_a_busy_port_and_starts_nothing(tmp_path, devrun_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        devrun_env["HOOKLINE_PORT"] = str(busy.getsockname()[1])
        devrun = _start(tmp_path, devrun_env)
        out, _ = devrun.communicate(timeout=60)
    assert devrun.returncode == 1
    assert "is in use; stop what listens there or set HOOKLINE_PORT" in out
    assert not (tmp_path / "instance" / "redis.pid").exists()
