"""A small threaded HTTP receiver: 200 to every POST, after an optional delay.

Used for the slow endpoints (2 s each) and as the fallback when nginx cannot be installed.
Each arrival is logged as "<unix seconds> <webhook-id>", like the nginx arrivals log.

    python -m tests.perf.receiver PORT DELAY_SECONDS ARRIVALS_FILE
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port: int, delay: float, arrivals_path: str) -> None:
    """Serve on 127.0.0.1:port until killed."""
    log = open(arrivals_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            arrived = time.time()
            with lock:
                log.write(f"{arrived:.6f} {self.headers.get('webhook-id', '-')}\n")
            if delay:
                time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512  # the slow endpoints get many connections at once

    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
