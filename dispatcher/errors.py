"""Exceptions the dispatcher raises to its callers."""

from __future__ import annotations


class ConfigError(RuntimeError):
    """The settings cannot make a working app (a production setting is missing or invalid)."""


class PublishError(ValueError):
    """The event was refused and nothing was written. `code` is stable for programs to test."""

    code = "publish_error"


class UnknownEventType(PublishError):
    """The type is not in the tenant's catalog."""

    code = "unknown_event_type"


class ArchivedEventType(PublishError):
    """The type exists but is archived, so nothing may publish it any more."""

    code = "archived_event_type"


class InvalidPayload(PublishError):
    """The data is not a JSON object, cannot be encoded as JSON, or breaks the type's schema."""

    code = "invalid_payload"


class PayloadTooLarge(PublishError):
    """The encoded data is larger than HOOKLINE_MAX_PAYLOAD_BYTES."""

    code = "payload_too_large"


class InvalidIdempotencyKey(PublishError):
    """The idempotency key is not text of 1 to 255 characters."""

    code = "invalid_idempotency_key"


class IdempotencyConflict(PublishError):
    """The idempotency key was used before with a different type or data."""

    code = "idempotency_conflict"


class TargetRefused(ValueError):
    """A subscription URL that Hookline will not send to (bad scheme, private address, …)."""


class InvalidSecret(ValueError):
    """A signing secret supplied by an admin is not a valid `whsec_` secret."""
