"""Which URLs Hookline will send to, and the address it connects to (checked once, then pinned).

A name is resolved, every address it resolves to is checked, and the delivery connects to the
checked address itself, so a DNS answer that changes between check and connect (rebinding)
cannot redirect a webhook into the private network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from dispatcher.errors import TargetRefused

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked destination: where to connect (`address`) and what to call it (`host`)."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _is_public(mapped)
        if address in ipaddress.IPv6Network("64:ff9b::/96"):
            return _is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def _parse(url: str, https_only: bool) -> SplitResult:
    if not isinstance(url, str) or not url.strip():
        raise TargetRefused("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise TargetRefused("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise TargetRefused(f"the URL is not valid: {exc}") from None
    if parts.scheme not in {"http", "https"}:
        raise TargetRefused("the URL must start with https:// (or http:// in development)")
    if https_only and parts.scheme != "https":
        raise TargetRefused("only https:// URLs are allowed in production")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise TargetRefused("the URL must not contain a user name or password")
    if not parts.hostname:
        raise TargetRefused("the URL has no host name")
    return parts


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TargetRefused(f"the host name {host!r} does not resolve") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_target(url: str, *, allow_private: bool, https_only: bool) -> Target:
    """Check `url` and return where to connect; raise TargetRefused with a reason otherwise."""
    parts = _parse(url, https_only)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not addresses:
        raise TargetRefused(f"the host name {host!r} does not resolve")
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise TargetRefused(
                    f"{host!r} resolves to {address}, a loopback, private, link-local, reserved "
                    "or multicast address; webhooks may only go to public addresses"
                )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, str(addresses[0]), path)
