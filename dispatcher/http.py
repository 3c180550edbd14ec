"""The HTTP client of the workers: kept-alive connections to checked, pinned addresses.

urllib3 is used directly (requests sits on it) because a delivery needs three things requests
makes awkward: connecting to the address the SSRF check approved while sending the real Host
and TLS name, never following redirects, and a limit on the whole exchange rather than on each
socket read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version

import urllib3
import urllib3.connection
from urllib3.exceptions import HTTPError

from dispatcher import clock
from dispatcher.ssrf import Target

MAX_BODY_BYTES = 16 * 1024
_MAX_POOLS = 2000
# Connections kept per receiving host unless the caller says (the sender passes its thread
# count, so no connection is opened only to be thrown away when the pool is full).
DEFAULT_POOL_SIZE = 32

try:
    USER_AGENT = f"Hookline/{version('hookline')}"
except PackageNotFoundError:  # running from a checkout that was not installed
    USER_AGENT = "Hookline/0.1.0"


@dataclass
class Response:
    """What came back from one attempt (or why nothing did)."""

    started_at: datetime
    duration_ms: int
    status: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    truncated: bool = False
    error: str | None = None
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        """A 2xx that arrived in time; a 2xx past the total timeout still counts as a failure."""
        return self.status is not None and 200 <= self.status < 300 and self.error is None


_pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
_pools_lock = threading.Lock()
_request_deadline = threading.local()


class _Watchdog:
    """Cuts connections whose exchange outlives its total timeout.

    urllib3's read timeout bounds each socket read, so a receiver that trickles a byte at a
    time could hold a sending thread forever. The watchdog shuts such a socket down at the
    deadline; the blocked read then fails and the attempt is recorded as timed out.
    """

    def __init__(self) -> None:
        self._watched: dict[int, tuple[float, urllib3.connection.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, connection: urllib3.connection.HTTPConnection) -> None:
        with self._lock:
            self._watched[threading.get_ident()] = (deadline, connection)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hookline-watchdog", daemon=True
                )
                self._thread.start()

    def cut_all(self) -> None:
        """Shut down every watched connection now (the worker is exiting)."""
        with self._lock:
            connections = [conn for _, conn in self._watched.values()]
        for connection in connections:
            _shut(connection)

    def forget(self) -> None:
        with self._lock:
            self._watched.pop(threading.get_ident(), None)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self._lock:
                late = [conn for deadline, conn in self._watched.values() if deadline < now]
            for connection in late:
                _shut(connection)


def _shut(connection: urllib3.connection.HTTPConnection) -> None:
    """Shut the socket down: a read blocked on it fails at once."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def request(self, *args, **kwargs):
        _watchdog.watch(_request_deadline.value, self)
        return super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def request(self, *args, **kwargs):
        _watchdog.watch(_request_deadline.value, self)
        return super().request(*args, **kwargs)


def cut_connections() -> None:
    """Cut every request in flight in this process (its attempts fail as connection errors)."""
    _watchdog.cut_all()


def _pool(target: Target, pool_size: int) -> urllib3.HTTPConnectionPool:
    key = (target.scheme, target.host, target.port, target.address)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            if len(_pools) >= _MAX_POOLS:
                for old in _pools.values():
                    old.close()
                _pools.clear()
            if target.scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    target.address,
                    target.port,
                    maxsize=pool_size,
                    server_hostname=target.host,
                    assert_hostname=target.host,
                    cert_reqs="CERT_REQUIRED",
                )
            else:
                pool = urllib3.HTTPConnectionPool(target.address, target.port, maxsize=pool_size)
            pool.ConnectionCls = (
                _WatchedHTTPSConnection if target.scheme == "https" else _WatchedHTTPConnection
            )
            _pools[key] = pool
    return pool


def parse_retry_after(value: str | None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - clock.now()).total_seconds())


def _decode(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    connect_timeout: float,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> Response:
    """POST `body` to `target`; never raises for network trouble, which becomes `error`."""
    # started_at is a timestamp for the delivery log (the injectable clock); the deadline and
    # the duration are measured on the monotonic clock, which no clock change can skew.
    response = Response(started_at=clock.now(), duration_ms=0)
    start = time.monotonic()
    deadline = start + timeout
    raw = None
    _request_deadline.value = deadline
    try:
        raw = _pool(target, pool_size).urlopen(
            "POST",
            target.path,
            body=body,
            headers={"Host": _host_header(target), **headers},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=min(connect_timeout, timeout), read=timeout),
        )
        _read_response(raw, response, deadline, timeout)
    except HTTPError as exc:
        response.error = _describe(exc)
    except OSError as exc:
        response.error = f"connection error: {exc}"
    finally:
        _watchdog.forget()
        if time.monotonic() > deadline:
            response.error = _too_slow(timeout)
        if raw is not None:
            # A body we stopped reading would poison a kept-alive connection: drop it instead.
            if response.truncated or response.error:
                raw.close()
            raw.release_conn()
        response.duration_ms = int((time.monotonic() - start) * 1000)
    return response


def _host_header(target: Target) -> str:
    """The Host header of the URL's name (the connection goes to the checked address)."""
    host = target.host if ":" not in target.host else f"[{target.host}]"
    return host if target.port in (80, 443) else f"{host}:{target.port}"


def _read_response(
    raw: urllib3.BaseHTTPResponse, response: Response, deadline: float, timeout: float
) -> None:
    """Fill `response` from what arrived: the status, the headers, and the body up to
    MAX_BODY_BYTES, read only while the total timeout lasts."""
    response.status = raw.status
    response.headers = {k: v for k, v in raw.headers.items()}
    if time.monotonic() > deadline:
        response.error = _too_slow(timeout)
    chunks: list[bytes] = []
    size = 0
    if response.error is None:
        for chunk in raw.stream(4096):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                response.truncated = True
                break
            if time.monotonic() > deadline:
                response.error = _too_slow(timeout)
                response.truncated = True
                break
    response.body = _decode(b"".join(chunks)[:MAX_BODY_BYTES])
    if response.status in (429, 503):
        response.retry_after = parse_retry_after(raw.headers.get("Retry-After"))


def _too_slow(timeout: float) -> str:
    return f"timed out: the response took longer than {timeout:g} s in total"


def _describe(exc: HTTPError) -> str:
    """What went wrong, in the words the delivery log shows (by urllib3's exception types;
    a refused connection first, as urllib3 makes NewConnectionError a kind of timeout)."""
    if isinstance(exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.MaxRetryError):
        return f"could not connect: {exc}"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return f"timed out ({exc})"
    return f"{type(exc).__name__}: {exc}"
