"""`make run`: the whole of Hookline on one machine, started and stopped by one command.

Starts the embedded Redis (unless REDIS_URL is set), migrates, syncs the catalog, seeds the demo
tenant with an endpoint pointing at a tiny demo receiver, then runs the web app and one worker
until Ctrl-C or SIGTERM. Each child runs in its own process group, so stopping one stops what it
forked too (the worker's RQ scheduler, the web reloader); the terminal's Ctrl-C reaches only this
process, which stops every child's group, then Redis, and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import redis

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0
DEMO_DESCRIPTION = "Demo receiver"  # what `flask demo seed` names the demo endpoint
REPOINT = "--repoint-demo-endpoint"  # internal: run as a child with the app loaded


class SetupFailed(RuntimeError):
    """A step before serving failed; the message says which and how."""


def say(message: str, stream: IO[str] | None = None) -> None:
    """Print a line of the orchestrator's own, flushed so it interleaves with the children."""
    print(f"[make run] {message}", file=stream or sys.stdout, flush=True)


class DemoReceiver:
    """A webhook consumer on 127.0.0.1 that answers 200 and prints one line per delivery."""

    def __init__(self, port_file: Path) -> None:
        self.port_file = port_file
        self.moved = port_file.exists()  # until the last run's port turns out to be free
        self.server = self._bind(port_file)
        self.port = self.server.server_address[1]

    def _bind(self, port_file: Path) -> ThreadingHTTPServer:
        """Reuse the last run's port so the seeded endpoint's URL stays right; else any."""
        with contextlib.suppress(ValueError, OSError):
            server = ThreadingHTTPServer(("127.0.0.1", int(port_file.read_text())), _DemoHandler)
            self.moved = False
            return server
        return ThreadingHTTPServer(("127.0.0.1", 0), _DemoHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"

    def start(self) -> DemoReceiver:
        self.port_file.write_text(f"{self.port}\n")
        self.server.daemon_threads = True
        serve = threading.Thread(target=self.server.serve_forever, name="demo-receiver")
        serve.daemon = True
        serve.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event_type = self.headers.get("X-Webhook-Event-Type")
        if event_type is None:
            with contextlib.suppress(ValueError, AttributeError):
                event_type = json.loads(body).get("type")
        print(
            f"[demo receiver] {event_type or '?'}  webhook-id={self.headers.get('webhook-id')}"
            f"  attempt={self.headers.get('X-Webhook-Attempt', '?')}",
            flush=True,
        )
        self._reply(200, b"ok")

    def do_GET(self) -> None:
        self._reply(200, b"Hookline demo receiver: POST webhooks here.\n")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: do_POST prints the one line that matters."""


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be listened on (as the web server will, with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in {"Z", "X"}


class Child:
    """A process started in its own process group (so its own children stop with it)."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], **popen: Any) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(args), cwd=ROOT, env=env, start_new_session=True, **popen
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal_group(self, signum: int) -> None:
        """Signal every process in the child's group (it and whatever it forked)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def gone(self) -> bool:
        """True once the child and everything in its process group have exited."""
        return self.process.poll() is not None and not _group_alive(self.pid)


class DevRun:
    """Starts everything in order, waits, and on a signal or a crash stops all it started."""

    def __init__(self, instance: Path, web_port: int) -> None:
        self.instance = instance
        self.web_port = web_port
        self.stop_requested = threading.Event()
        self.signals = 0
        self.children: list[Child] = []
        self.receiver: DemoReceiver | None = None
        self.own_redis: Path | None = None
        self.seed_output = ""
        self.env = dict(os.environ, FLASK_APP="wsgi:app", PYTHONUNBUFFERED="1")

    def on_signal(self, signum: int, _frame: Any) -> None:
        """First signal: stop gracefully. A second one: stop without waiting long."""
        self.signals += 1
        self.stop_requested.set()

    def run(self) -> int:
        """Start, then serve until stopped; 0 for a requested stop, 1 for a failure."""
        try:
            self.start()
            return self.serve()
        except SetupFailed as exc:
            say(f"error: {exc}", sys.stderr)
            return 1
        finally:
            self.shutdown()

    def start(self) -> None:
        """Everything `make run` promises, in dependency order; returns early on a signal."""
        if not port_is_free(self.web_port):
            raise SetupFailed(
                f"127.0.0.1:{self.web_port} is in use; stop what listens there or set HOOKLINE_PORT"
            )
        self.instance.mkdir(parents=True, exist_ok=True)
        if not self.env.get("REDIS_URL"):
            self.env["REDIS_URL"] = self.start_redis()
        flask = [sys.executable, "-m", "flask"]
        self.step("flask db upgrade", [*flask, "db", "upgrade"])
        self.step("flask event-types sync", [*flask, "event-types", "sync"])
        self.receiver = DemoReceiver(self.instance / "demo-receiver.port").start()
        url = self.receiver.url
        seed = [*flask, "demo", "seed", "--endpoint-url", url]
        self.seed_output = self.step("flask demo seed", seed, echo=False)
        if self.receiver.moved:  # an earlier run's demo endpoint may point at another port
            self.step("demo endpoint", [sys.executable, "-m", "devtools.devrun", REPOINT, url])
        if self.stop_requested.is_set():
            return
        web = [*flask, "run", "--debug", "--host", "127.0.0.1", "--port", str(self.web_port)]
        self.children.append(Child("web", web, self.env))
        self.children.append(Child("worker", [*flask, "worker"], self.env))
        if self.wait_until_ready():
            self.announce()

    def start_redis(self) -> str:
        """Start the embedded Redis, or reuse (and then leave running) one that already runs."""
        from dispatcher.connection import ensure_embedded_redis  # loads the app's packages

        db_path = self.instance / "redis.db"
        already = _redis_answers(db_path)
        try:
            url = ensure_embedded_redis(db_path)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            raise SetupFailed(f"could not start the embedded Redis: {exc}") from None
        if already:
            say(f"reusing the embedded Redis already running at {url}; it will be left running")
        else:
            self.own_redis = db_path
            say(f"started the embedded Redis at {url}")
        return url

    def step(self, label: str, args: list[str], echo: bool = True) -> str:
        """Run one setup command to completion and return its output; fail loudly on error."""
        if self.stop_requested.is_set():
            return ""
        child = Child(label, args, self.env, stdout=subprocess.PIPE, text=True)
        self.children.append(child)
        chunks: list[str] = []
        reader = threading.Thread(target=_collect, args=(child.process.stdout, chunks))
        reader.start()
        while child.process.poll() is None:
            if self.stop_requested.wait(0.1):
                self.stop_children([child])
        reader.join()
        child.process.stdout.close()
        self.children.remove(child)
        output = "".join(chunks)
        if child.process.returncode != 0 and not self.stop_requested.is_set():
            sys.stdout.write(output)
            raise SetupFailed(f"`{label}` failed with exit status {child.process.returncode}")
        for line in output.splitlines() if echo else ():
            say(f"{label}: {line}")
        return output

    def wait_until_ready(self) -> bool:
        """Poll /readyz until it answers 200 (True), or a stop is requested (False)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.stop_requested.is_set():
            self.check_children()
            if _answers_200(f"http://127.0.0.1:{self.web_port}/readyz"):
                return True
            if time.monotonic() > deadline:
                raise SetupFailed(f"/readyz did not answer 200 within {READY_TIMEOUT:.0f} s")
            self.stop_requested.wait(0.25)
        return False

    def announce(self) -> None:
        """Where to go, how to sign in, and how to see a webhook arrive."""
        assert self.receiver is not None
        seeded = [line.strip() for line in self.seed_output.splitlines() if line.strip()]
        tenant = next((line.split()[-1] for line in seeded if line.startswith("tenant:")), "ID")
        example = '\'{"invoice_id": "inv_1"}\''
        publish = f"flask events publish --tenant {tenant} invoice.created {example}"
        lines = [
            "",
            "Hookline is running.",
            f"  portal:        http://127.0.0.1:{self.web_port}/login",
            *(f"  {line}" for line in seeded),
            f"  demo receiver: {self.receiver.url}  (prints one line per webhook)",
            f"  redis:         {self.env['REDIS_URL']}",
            f"  try:           .venv/bin/{publish}",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        print("\n".join(lines), flush=True)

    def check_children(self) -> None:
        """Raise if a long-running child has died (a crash stops the whole set)."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                raise SetupFailed(f"the {child.name} process exited with status {code}")

    def serve(self) -> int:
        """Wait for a signal; a child that dies is an error that stops everything."""
        while not self.stop_requested.wait(0.5):
            self.check_children()
        return 0

    def stop_children(self, children: list[Child]) -> None:
        """SIGTERM every group at once, wait for all, then SIGKILL what is left. A second
        Ctrl-C cuts the wait short."""
        for child in children:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while not all(child.gone() for child in children):
            if time.monotonic() > deadline or self.signals > 1:
                break
            time.sleep(0.05)
        for child in children:
            if not child.gone():
                say(f"{child.name} did not stop in time; killing it")
                child.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)

    def shutdown(self) -> None:
        """Stop the web app and the worker (their whole process groups), the receiver, Redis."""
        say("stopping…")
        self.stop_children(self.children)
        self.children.clear()
        if self.receiver is not None:
            self.receiver.stop()
            self.receiver = None
        if self.own_redis is not None:
            _stop_redis(self.own_redis)
            self.own_redis = None
        say("stopped; nothing left running")


def _collect(stream: IO[str], into: list[str]) -> None:
    into.extend(stream)


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _redis_answers(db_path: Path) -> bool:
    socket_path = db_path.with_suffix(".sock")  # as dispatcher.connection.socket_path_for
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _redis_pid(db_path: Path) -> int | None:
    """The embedded server's pid from its pid file, if that process still runs."""
    try:
        pid = int(db_path.with_suffix(".pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _stop_redis(db_path: Path) -> None:
    """SIGTERM the server (Redis saves its data for the next run, then exits) and wait."""
    pid = _redis_pid(db_path)
    if pid is None:
        from dispatcher.connection import stop_embedded_redis

        stop_embedded_redis(db_path)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            say("the embedded Redis did not stop; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def repoint_demo_endpoint(url: str) -> None:
    """Point the demo endpoint at `url` when an earlier run's receiver had another port."""
    from sqlalchemy import select

    from dispatcher.store import db
    from portal import create_app
    from portal.cli import DEMO_EMAIL
    from portal.models import Subscription, User
    from portal.services import subscriptions

    with create_app().app_context():
        user = db.session.scalar(select(User).where(User.email == DEMO_EMAIL))
        stale = db.session.scalars(
            select(Subscription).where(
                Subscription.tenant_id == (user.tenant_id if user else None),
                Subscription.description == DEMO_DESCRIPTION,
                Subscription.url != url,
            )
        ).all()
        for subscription in stale:
            subscriptions.update(subscription.tenant_id, subscription.id, {"url": url})
            print(f"{subscription.id} now points at {url}")
        db.session.commit()


def main(argv: Sequence[str] = (), instance: Path | None = None) -> int:
    """Entry point of `make run` (`python -m devtools.devrun`); `instance` holds the embedded
    Redis and the demo receiver's port (tests pass a temporary folder)."""
    argv = list(argv)
    if argv[:1] == [REPOINT] and len(argv) == 2:
        repoint_demo_endpoint(argv[1])
        return 0
    try:
        web_port = int(os.environ.get("HOOKLINE_PORT") or 5000)
    except ValueError:
        say("error: HOOKLINE_PORT must be a port number", sys.stderr)
        return 1
    devrun = DevRun(instance or ROOT / "instance", web_port)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, devrun.on_signal)
    return devrun.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
