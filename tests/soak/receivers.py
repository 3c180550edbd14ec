"""The soak's webhook consumers: one threaded HTTP server, in its own process, for every endpoint.

The path says how an endpoint behaves: `/ok/<n>` answers 200 at once, `/slow/<n>` after 1–3 s,
`/fail/<n>` always 500. Every request's signature is checked with the `standardwebhooks`
library against the endpoint's secret (from the secrets file), and every arrival is counted by
(path, webhook-id) and by whether it was answered 2xx. A request cut off by a killed worker
is counted apart and never as an arrival. `GET /_stats` returns the counts.

    python -m tests.soak.receivers PORT SECRETS_JSON   (arrivals.log is written beside it)
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook

SLOW_SECONDS = (1.0, 3.0)


class Tally:
    """What the receivers saw, shared by the handler threads."""

    def __init__(self, log_path: Path) -> None:
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1 << 16)  # noqa: SIM115 (for the process's life)
        self.arrivals: Counter[tuple[str, str]] = Counter()  # every request
        self.answered_ok: Counter[tuple[str, str]] = Counter()  # requests answered 2xx
        self.bad_signatures = 0
        self.incomplete = 0  # the sender vanished mid-request (a SIGKILLed worker)
        self.connection_errors = 0  # ... or before reading its answer
        self.first_at: float | None = None
        self.last_at: float | None = None

    def record(self, path: str, webhook_id: str, ok: bool, signed: bool) -> None:
        now = time.time()
        with self.lock:
            self.log.write(f"{now:.3f} {path} {webhook_id} {int(ok)}\n")
            self.arrivals[(path, webhook_id)] += 1
            if ok:
                self.answered_ok[(path, webhook_id)] += 1
            if not signed:
                self.bad_signatures += 1
            self.first_at = self.first_at or now
            self.last_at = now

    def as_json(self) -> bytes:
        with self.lock:
            self.log.flush()
            return json.dumps(
                {
                    "arrivals": [[p, i, n] for (p, i), n in self.arrivals.items()],
                    "answered_ok": [[p, i, n] for (p, i), n in self.answered_ok.items()],
                    "bad_signatures": self.bad_signatures,
                    "incomplete": self.incomplete,
                    "connection_errors": self.connection_errors,
                    "first_at": self.first_at,
                    "last_at": self.last_at,
                }
            ).encode()


def make_server(port: int, secrets: dict[str, str], log_path: Path) -> ThreadingHTTPServer:
    """The server for every soak endpoint; `secrets` maps each path to its signing secret.
    Every request is also logged to `log_path` as "<unix time> <path> <webhook-id> <2xx?>"."""
    tally = Tally(log_path)
    verifiers = {path: Webhook(secret) for path, secret in secrets.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if len(body) < length:  # nobody is left to answer, and it is no delivery
                with tally.lock:
                    tally.incomplete += 1
                self.close_connection = True
                return
            path = self.path
            try:
                verifiers[path].verify(body, dict(self.headers.items()))
                signed = True
            except Exception as exc:  # any verification failure (or an unknown path) counts
                print(f"bad signature on {path}: {exc!r}", flush=True)
                signed = False
            if path.startswith("/fail/"):
                status = 500
            else:
                if path.startswith("/slow/"):
                    time.sleep(random.uniform(*SLOW_SECONDS))
                status = 200
            tally.record(path, self.headers.get("webhook-id", "-"), status == 200, signed)
            self._answer(status, b"ok" if status == 200 else b"failing on purpose")

        def do_GET(self) -> None:
            if self.path != "/_stats":
                self._answer(404, b"not found")
                return
            self._answer(200, tally.as_json(), "application/json")

        def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # three workers open many kept-alive connections at once

        def handle_error(self, request, client_address) -> None:
            """A killed worker resets its connections; count that instead of printing it."""
            with tally.lock:
                tally.connection_errors += 1

    return Server(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    secrets_file = Path(sys.argv[2])
    arrivals = secrets_file.with_name("arrivals.log")
    make_server(int(sys.argv[1]), json.loads(secrets_file.read_text()), arrivals).serve_forever()
