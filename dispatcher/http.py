"""The HTTP client of the workers: non-blocking sends to checked, pinned addresses.

Every send of a worker process runs on one asyncio event loop in a thread of its own
(aiohttp), so a receiver that hangs costs a socket and a timer, not a thread, and a hundred
sends in flight cost no more CPU than one. The loop also keeps the Python threads that record
and claim from fighting sixty-four sending threads for the interpreter lock, which is what made
a database round trip beside a full thread pool ten times slower.

A delivery needs three things a general client makes awkward, all done here: connecting to the
address the SSRF check approved while sending the real Host header and TLS name, never following
redirects, and a limit on the whole exchange rather than on each socket read.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from dispatcher import clock
from dispatcher.ssrf import Target
from dispatcher.version import VERSION

MAX_BODY_BYTES = 16 * 1024
_MAX_SESSIONS = 2000
USER_AGENT = f"Hookline/{VERSION}"
CUT_MESSAGE = "connection cut: the worker is shutting down"


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


class _Client:
    """The process's event loop thread, its sessions (kept-alive connections per checked
    destination) and the sends in flight on it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.sessions: dict[tuple[str, str, int, str], aiohttp.ClientSession] = {}
        self.tasks: set[asyncio.Task] = set()
        thread = threading.Thread(target=self.loop.run_forever, name="hookline-http", daemon=True)
        thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Close the kept-alive connections (at the process's exit)."""
        if self.pid != os.getpid() or not self.loop.is_running():
            return

        async def close_all() -> None:
            sessions, self.sessions = list(self.sessions.values()), {}
            for session in sessions:
                await session.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=2)

    def session(self, target: Target) -> aiohttp.ClientSession:
        """The session of one destination (its name *and* its checked address), so a kept-alive
        TLS connection made for one name is never reused for another. Runs on the loop."""
        key = (target.scheme, target.host, target.port, target.address)
        session = self.sessions.get(key)
        if session is None:
            if len(self.sessions) >= _MAX_SESSIONS:
                for old in self.sessions.values():
                    self.loop.create_task(old.close())
                self.sessions.clear()
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, use_dns_cache=False),  # IP literals only
                cookie_jar=aiohttp.DummyCookieJar(),  # a receiver's cookies are never sent back
                trust_env=False,  # no proxy from the environment: the checked address is the peer
                timeout=aiohttp.ClientTimeout(total=None),  # the exchange's own limit applies
                skip_auto_headers=("Accept",),  # the documented request has none
                # It asks for no compression (Accept-Encoding: identity) and inflates none: a
                # small compressed body must not become megabytes in memory.
                auto_decompress=False,
            )
            self.sessions[key] = session
        return session


_client: _Client | None = None
_client_lock = threading.Lock()


def _the_client() -> _Client:
    """The process's client, started on first use (and anew in a forked child, which inherits
    the loop object but not its thread)."""
    global _client
    with _client_lock:
        if _client is None or _client.pid != os.getpid():
            _client = _Client()
        return _client


def send(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    connect_timeout: float,
) -> Future[Response]:
    """Start POSTing `body` to `target`; the future's result is the Response. It never raises
    for network trouble, which becomes `Response.error`."""
    client = _the_client()
    return asyncio.run_coroutine_threadsafe(
        _post(client, target, body, headers, timeout, connect_timeout), client.loop
    )


def cut_connections() -> None:
    """Cut every request in flight in this process (its attempts fail with CUT_MESSAGE)."""
    client = _client
    if client is None or client.pid != os.getpid():
        return

    def cut() -> None:
        for task in list(client.tasks):
            task.cancel()

    client.loop.call_soon_threadsafe(cut)


async def _post(
    client: _Client,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    connect_timeout: float,
) -> Response:
    # started_at is a timestamp for the delivery log (the injectable clock); the deadline and
    # the duration are measured on the monotonic clock, which no clock change can skew.
    response = Response(started_at=clock.now(), duration_ms=0)
    start = time.monotonic()
    task = asyncio.current_task()
    client.tasks.add(task)
    try:
        async with asyncio.timeout(timeout):
            await _exchange(client, target, body, headers, connect_timeout, response)
    except TimeoutError:
        response.error = _too_slow(timeout) if response.status else _timed_out(timeout)
    except asyncio.CancelledError:
        response.error = CUT_MESSAGE
    except aiohttp.ClientError as exc:
        response.error = _describe(exc)
    except OSError as exc:
        response.error = f"connection error: {exc}"
    finally:
        client.tasks.discard(task)
        response.duration_ms = int((time.monotonic() - start) * 1000)
    return response


async def _exchange(
    client: _Client,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    connect_timeout: float,
    response: Response,
) -> None:
    """Send the request to the checked address and fill `response` from what comes back: the
    status, the headers, and the body up to MAX_BODY_BYTES."""
    path, _, query = target.path.partition("?")
    url = URL.build(  # encoded: the path and query go out exactly as the endpoint's URL has them
        scheme=target.scheme,
        host=f"[{target.address}]" if ":" in target.address else target.address,
        port=target.port,
        path=path,
        query_string=query,
        encoded=True,
    )
    raw = await client.session(target).post(
        url,
        data=body,
        headers={"Host": _host_header(target), "Accept-Encoding": "identity", **headers},
        allow_redirects=False,
        server_hostname=target.host if target.scheme == "https" else None,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
    )
    try:
        response.status = raw.status
        response.headers = dict(raw.headers)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BODY_BYTES and (chunk := await raw.content.read(4096)):
            chunks.append(chunk)
            size += len(chunk)
        response.truncated = size > MAX_BODY_BYTES
        response.body = _decode(b"".join(chunks)[:MAX_BODY_BYTES])
        if response.status in (429, 503):
            response.retry_after = parse_retry_after(raw.headers.get("Retry-After"))
    finally:
        # A body we stopped reading would poison a kept-alive connection: drop it instead.
        if response.truncated or response.body is None:
            raw.close()
        else:
            raw.release()


def _host_header(target: Target) -> str:
    """The Host header of the URL's name (the connection goes to the checked address)."""
    host = target.host if ":" not in target.host else f"[{target.host}]"
    return host if target.port in (80, 443) else f"{host}:{target.port}"


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


def _too_slow(timeout: float) -> str:
    return f"timed out: the response took longer than {timeout:g} s in total"


def _timed_out(timeout: float) -> str:
    return f"timed out: no response within {timeout:g} s"


def _describe(exc: aiohttp.ClientError) -> str:
    """What went wrong, in the words the delivery log shows (by aiohttp's exception types)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return f"TLS error: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"timed out connecting ({exc})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"could not connect: {exc}"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return f"timed out ({exc})"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return f"connection error: {exc}"
    return f"{type(exc).__name__}: {exc}"
