"""The workers' HTTP client over real loopback sockets: what a delivery needs from it."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dispatcher import http
from dispatcher.ssrf import Target
from tests.support import wait_until

Handler = Callable[[socket.socket], None]


@pytest.fixture
def tcp_server() -> Iterator[Callable[[Handler], int]]:
    """A raw TCP server on loopback: each connection is handed to `handler` on a thread.

    Every socket it opens is closed at teardown, so a handler that hangs leaves no socket for
    the garbage collector to warn about in a later test.
    """
    sockets: list[socket.socket] = []

    def handle(handler: Handler, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # closed under the handler at teardown
            handler(conn)

    def start(handler: Handler) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                sockets.append(conn)
                threading.Thread(
                    target=handle, args=(handler, conn), name="test-server", daemon=True
                ).start()

        threading.Thread(target=serve, name="test-server", daemon=True).start()
        return listener.getsockname()[1]

    yield start
    for sock in sockets:
        sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head


def _target(port: int, path: str = "/hook?x=%2F") -> Target:
    return Target(
        scheme="http", host="hooks.example.com", port=port, address="127.0.0.1", path=path
    )


def _post(port: int, timeout: float = 5.0, path: str = "/hook?x=%2F") -> http.Response:
    return http.send(
        _target(port, path), b'{"a":1}', {"Content-Type": "application/json"},
        timeout=timeout, connect_timeout=1.0,
    ).result()  # fmt: skip


def test_connects_to_the_checked_address_with_the_real_host_and_exact_path(tcp_server) -> None:
    heads: list[bytes] = []
    connections = []

    def answer(conn: socket.socket) -> None:
        connections.append(conn)
        while head := _read_request(conn):
            heads.append(head)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Seen: 1\r\n\r\nok")

    port = tcp_server(answer)
    first, second = _post(port), _post(port)
    assert first.succeeded and second.succeeded
    assert first.body == "ok" and first.headers["X-Seen"] == "1"
    request_line, *header_lines = heads[0].decode().split("\r\n")
    assert request_line == "POST /hook?x=%2F HTTP/1.1"
    assert f"Host: hooks.example.com:{port}" in header_lines
    assert "Accept-Encoding: identity" in header_lines
    assert not any(line.lower().startswith("cookie") for line in header_lines)
    assert len(connections) == 1  # the second send reused the kept-alive connection


def test_a_redirect_is_an_answer_not_followed(tcp_server) -> None:
    requests: list[bytes] = []

    def redirect(conn: socket.socket) -> None:
        while head := _read_request(conn):
            requests.append(head)
            conn.sendall(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                b"Content-Length: 0\r\n\r\n"
            )

    response = _post(tcp_server(redirect))
    assert response.status == 307 and not response.succeeded
    assert len(requests) == 1


def test_a_trickling_receiver_is_cut_at_the_total_timeout(tcp_server) -> None:
    def trickle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            time.sleep(0.05)  # each read succeeds: only a limit on the whole exchange stops it
            try:
                conn.sendall(b"x")
            except OSError:
                return

    started = time.monotonic()
    response = _post(tcp_server(trickle), timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert response.status == 200 and not response.succeeded
    assert "timed out" in response.error


def test_the_body_is_capped_and_a_retry_after_is_read(tcp_server) -> None:
    def big(conn: socket.socket) -> None:
        _read_request(conn)
        body = b"y" * (http.MAX_BODY_BYTES * 4)
        conn.sendall(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    response = _post(tcp_server(big))
    assert response.status == 429 and response.retry_after == 3.0
    assert response.truncated and len(response.body) == http.MAX_BODY_BYTES


def test_hanging_receivers_cost_sockets_not_threads_and_are_cut_at_shutdown(tcp_server) -> None:
    held: list[socket.socket] = []

    def hang(conn: socket.socket) -> None:
        held.append(conn)
        _read_request(conn)  # and never answer

    port = tcp_server(hang)
    http.send(_target(port), b"", {}, timeout=0.2, connect_timeout=1.0).result()  # loop running
    threads = _threads()
    futures = [
        http.send(_target(port), b"{}", {}, timeout=30.0, connect_timeout=1.0) for _ in range(100)
    ]
    wait_until(lambda: len(held) == 101, what="100 hanging requests")
    assert _threads() <= threads  # 100 requests in flight, and no thread more than before
    assert not any(future.done() for future in futures)

    started = time.monotonic()
    http.cut_connections()
    responses = [future.result(timeout=5) for future in futures]
    assert time.monotonic() - started < 2
    assert all(r.error == http.CUT_MESSAGE and r.status is None for r in responses)


def _threads() -> int:
    """Threads of the process, leaving out the test server's own."""
    return sum(1 for thread in threading.enumerate() if thread.name != "test-server")


def test_a_refused_connection_is_described() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]  # closed at once: nothing listens there now
    response = _post(port)
    assert response.status is None and response.error.startswith("could not connect")
