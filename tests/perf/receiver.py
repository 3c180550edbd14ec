"""A small threaded HTTP receiver: 200 to every POST, after an optional delay.

Used for the slow endpoints (2 s each), the busy endpoint (50 ms), the throttling endpoint
(every Nth request answered 429 with Retry-After) and as the fallback when nginx cannot be
installed. Each request is logged as "<unix seconds> <webhook-id> <path> <status>", like the
nginx arrivals log (which has no status column): the arrival time for a 200, the moment the
answer went out for a 429.

    python -m tests.perf.receiver PORT DELAY_SECONDS ARRIVALS_FILE [EVERY_NTH RETRY_AFTER]
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(
    port: int, delay: float, arrivals_path: str, throttle_every: int = 0, retry_after: int = 0
) -> None:
    """Serve on 127.0.0.1:port until killed; with `throttle_every`, every that many-th request
    (counted over all paths) gets `429 Too Many Requests` and `Retry-After: retry_after`."""
    log = open(arrivals_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # The status line and headers go out in one write and the body in another: with
            # Nagle on, the body waits for the client's delayed ACK, 40 ms on every request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.time()
            webhook_id = self.headers.get("webhook-id", "-")
            with lock:
                seen[0] += 1
                throttled = bool(throttle_every) and seen[0] % throttle_every == 0
                if not throttled:
                    log.write(f"{arrived:.6f} {webhook_id} {self.path} 200\n")
            if throttled:
                self._answer(429, {"Retry-After": str(retry_after)})
                with lock:
                    log.write(f"{time.time():.6f} {webhook_id} {self.path} 429\n")
                return
            if delay:
                time.sleep(delay)
            self._answer(200, {})

        def _answer(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            self.wfile.flush()

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512  # the slow endpoints get many connections at once

    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    extra = [int(x) for x in sys.argv[4:6]]
    serve(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], *extra)
