"""A real HTTP receiver on loopback that records what it gets and answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import wait_until


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    """A scripted answer: status, headers, body, and an optional delay before answering."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """Scripts are per path: a queue of replies used in order, then the path's default."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._scripts: dict[str, list[Reply]] = defaultdict(list)
        self._defaults: dict[str, Reply] = {}
        self._lock = threading.Lock()
        self._open: dict[str, int] = defaultdict(int)  # requests being answered, per path
        self._most_open: dict[str, int] = defaultdict(int)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                path = self.path
                reply = receiver._next_reply(path)
                with receiver._lock:
                    receiver.requests.append(
                        Received(path, dict(self.headers.items()), body, time.monotonic())
                    )
                    receiver._open[path] += 1
                    receiver._most_open[path] = max(receiver._most_open[path], receiver._open[path])
                if reply.delay:
                    time.sleep(reply.delay)
                with receiver._lock:
                    receiver._open[path] -= 1
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 refuses bursts of connections

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def script(self, path: str, *replies: Reply, default: Reply | None = None) -> None:
        """Answer the next requests to `path` with `replies`, then with `default`."""
        with self._lock:
            self._scripts[path].extend(replies)
            if default is not None:
                self._defaults[path] = default

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            if self._scripts[path]:
                return self._scripts[path].pop(0)
            return self._defaults.get(path, Reply())

    def most_concurrent(self, path: str) -> int:
        """The most requests to `path` that were being answered at one time."""
        with self._lock:
            return self._most_open[path]

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        """Wait until `count` requests (to `path`) arrived; return them."""

        def arrived() -> list[Received] | None:
            got = self.received(path)
            return got if len(got) >= count else None

        return wait_until(
            arrived,
            timeout,
            interval=0.02,
            what=lambda: (
                f"{count} requests to {path or 'any path'} (got {len(self.received(path))})"
            ),
        )

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
