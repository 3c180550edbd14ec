"""The wire contract: the exact body and headers a consumer receives."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dispatcher import signing
from dispatcher.http import USER_AGENT

# Custom headers may not replace these (compared lower-cased).
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "host",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)


def is_reserved_header(name: str) -> bool:
    """True for header names Hookline sets itself (custom headers cannot override them)."""
    lowered = name.lower()
    return lowered in RESERVED_HEADERS or lowered.startswith("x-webhook-")


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z, to the second, as in the wire contract."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def body_for(
    event_id: str, event_type: str, created_at: datetime, tenant_id: str, data: Any
) -> bytes:
    """The exact bytes POSTed for an event (compact JSON, UTF-8)."""
    envelope = {
        "id": event_id,
        "type": event_type,
        "timestamp": format_timestamp(created_at),
        "tenant_id": tenant_id,
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def headers_for(
    *,
    event_id: str,
    event_type: str,
    attempt_number: int,
    body: bytes,
    keys: list[signing.SigningKey],
    timestamp: int,
    custom: dict[str, str] | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers, their X-Webhook-* twins, and the subscription's own headers."""
    signature = signing.signature_header(keys, event_id, timestamp, body)
    headers = {
        name: value for name, value in (custom or {}).items() if not is_reserved_header(name)
    }
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "X-Webhook-Event-Id": event_id,
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature": signature,
            "X-Webhook-Event-Type": event_type,
            "X-Webhook-Attempt": str(attempt_number),
        }
    )
    return headers
