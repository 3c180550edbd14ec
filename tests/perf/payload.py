"""The 1 KiB signed webhook every figure sends, built without Hookline so baselines stay plain."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

BODY_BYTES = 1024
# Bench event types all have 9-character names so every body has the same size.
TYPE_NAMES = [f"bench.e{i:02d}" for i in range(100)]
_SAMPLE_ID = "evt_01JABCDEFGHJKMNPQRSTVWXYZ0"
_SAMPLE_TENANT = "ten_01JABCDEFGHJKMNPQRSTVWXYZ0"


def envelope(event_id: str, event_type: str, tenant_id: str, data: dict) -> bytes:
    """The body Hookline sends (same keys, order and compact separators)."""
    return json.dumps(
        {
            "id": event_id,
            "type": event_type,
            "timestamp": "2025-09-30T12:00:00Z",
            "tenant_id": tenant_id,
            "data": data,
        },
        separators=(",", ":"),
    ).encode()


def padded_data() -> dict:
    """Event data that makes the delivered body exactly BODY_BYTES long."""
    data = {"invoice_id": "inv_000123", "amount": 100.0, "currency": "EUR", "note": ""}
    short = len(envelope(_SAMPLE_ID, TYPE_NAMES[0], _SAMPLE_TENANT, data))
    data["note"] = "x" * (BODY_BYTES - short)
    return data


def sample_body() -> tuple[str, bytes]:
    """An event id and its 1 KiB body, for the baselines."""
    return _SAMPLE_ID, envelope(_SAMPLE_ID, TYPE_NAMES[0], _SAMPLE_TENANT, padded_data())


def new_key() -> bytes:
    """A 32-byte signing key, like the one inside a `whsec_` secret."""
    return os.urandom(32)


def signed_headers(key: bytes, event_id: str, body: bytes, attempt: int = 1) -> dict[str, str]:
    """The Standard Webhooks headers and their X-Webhook-* twins, as Hookline sends them."""
    timestamp = str(int(time.time()))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(digest).decode()
    return {
        "Content-Type": "application/json",
        "User-Agent": "Hookline/0.1.0",
        "webhook-id": event_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
        "X-Webhook-Event-Id": event_id,
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": signature,
        "X-Webhook-Event-Type": TYPE_NAMES[0],
        "X-Webhook-Attempt": str(attempt),
    }
