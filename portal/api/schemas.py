"""Request and response schemas: they validate input, serialise output and, through flask-smorest,
are the OpenAPI document. Serialisation lives here, not on the models."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_dump
from marshmallow.validate import Length, OneOf, Range

from dispatcher import filters
from dispatcher.health import STATES
from dispatcher.publishing import MAX_IDEMPOTENCY_KEY_LENGTH
from dispatcher.signing import MAX_GRACE_SECONDS, SCHEMES
from dispatcher.ssrf import MAX_URL_LENGTH
from dispatcher.states import STATUSES, TRIGGERS
from dispatcher.throttle import MAX_RATE_LIMIT, MIN_RATE_LIMIT
from portal.api.fields import StrictBoolean, Text, Timestamp, WireTimestamp
from portal.services import event_types as event_type_service
from portal.services import subscriptions as subscription_service
from portal.services.paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT

# The limits below are the services' (and the dispatcher's) own, so the OpenAPI document shows
# the rules that are applied; the services check them again for the portal and the CLI.
TYPE_NAME = Length(1, event_type_service.MAX_NAME_LENGTH)


class Extended:
    """An object seen with extra attributes, so one schema can dump a row plus what a service
    computed beside it (a subscription and its new secret, a delivery and its attempts)."""

    def __init__(self, base: Any, **extra: Any) -> None:
        self._base = base
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


class Presence(fields.Boolean):
    """True when the attribute it reads is set (a custom event type has a tenant)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> bool:
        return value is not None


# --- problems ---------------------------------------------------------------------------------


class ProblemSchema(Schema):
    """An RFC 9457 problem document (served as application/problem+json)."""

    type = fields.String(
        required=True,
        metadata={
            "description": "A stable URI naming the kind of problem.",
            "example": "https://hookline.dev/problems/validation-error",
        },
    )
    title = fields.String(required=True, metadata={"description": "Short summary of the type."})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = fields.String(metadata={"description": "What went wrong with this request."})
    instance = fields.String(metadata={"description": "The request path."})
    code = fields.String(metadata={"description": "A stable machine name for the problem."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Messages per input field (validation problems)."},
    )


# --- shared arguments ---------------------------------------------------------------------------


class PageArgs(Schema):
    """`limit` and `cursor` (the `next_cursor` of the previous page)."""

    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=Range(1, MAX_LIMIT))
    cursor = Text(line=True, validate=Length(max=MAX_CURSOR_LENGTH))


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """The `{"data": [...], "next_cursor": ...}` envelope of a list of `item`."""
    return Schema.from_dict(
        {
            "data": fields.List(fields.Nested(item), attribute="items", required=True),
            "next_cursor": fields.String(
                required=True,
                allow_none=True,
                metadata={"description": "Pass as `cursor` for the next page; null at the end."},
            ),
        },
        name=name,
    )


# --- event types --------------------------------------------------------------------------------


class EventTypePageArgs(PageArgs):
    """Event types page by name, so the cursor is a name."""

    cursor = Text(line=True, validate=Length(max=event_type_service.MAX_NAME_LENGTH))


class EventTypeSchema(Schema):
    """A catalog entry (standard or the tenant's custom type)."""

    name = fields.String(required=True, metadata={"example": "invoice.paid"})
    group = fields.String(required=True)
    description = fields.String(required=True)
    example = fields.Dict(required=True)
    schema = fields.Dict(allow_none=True, metadata={"description": "JSON Schema of `data`."})
    archived = fields.Boolean(required=True)
    custom = Presence(attribute="tenant_id", required=True)


EventTypePage = page_of(EventTypeSchema, "EventTypePage")


class EventTypeCreateArgs(Schema):
    """A custom event type: `group.action` in lowercase, e.g. `order.shipped`."""

    name = Text(line=True, required=True, validate=TYPE_NAME)
    description = Text(validate=Length(max=event_type_service.MAX_DESCRIPTION))
    example = fields.Dict()
    schema = fields.Dict(allow_none=True)


# --- subscriptions ------------------------------------------------------------------------------

_URL = {"description": "Where events are POSTed.", "example": "https://example.com/hooks"}
_EVENTS = {"description": "Event type names, `group.*` wildcards, or `*`.", "example": ["*"]}
_RATE_LIMIT_TEXT = (
    "At most this many deliveries per second to the endpoint, across all workers "
    f"({MIN_RATE_LIMIT}–{MAX_RATE_LIMIT}); null for no limit."
)
# The value is taken as sent and checked by subscriptions.check_rate_limit, the rule the
# portal's form shares; these properties only describe it in the OpenAPI document.
_RATE_LIMIT_INPUT = {
    "type": "integer",
    "minimum": MIN_RATE_LIMIT,
    "maximum": MAX_RATE_LIMIT,
    "description": _RATE_LIMIT_TEXT,
    "example": 50,
}


_DATA_FILTER_TEXT = (
    "Optional filter on the event's `data`; only events it selects are delivered (null: every "
    "event of the subscribed types). An object whose keys are dotted paths into `data` (a digit "
    "segment indexes a list) or `$and`/`$or` (lists of filters) and `$not` (a filter); every "
    "clause must hold. A path maps to a value (equality) or to operators: `$eq`, `$neq`, `$in`, "
    "`$nin`, `$gt`, `$gte`, `$lt`, `$lte` (numbers), `$exists` (boolean), `$startsWith` (text). "
    f"At most {filters.MAX_FILTER_BYTES} bytes, {filters.MAX_DEPTH} levels deep and "
    f"{filters.MAX_CONDITIONS} conditions; a path absent from the data fails every operator but "
    "`$neq`, `$nin` and `$exists: false`."
)
_DATA_FILTER_EXAMPLE = {"amount": {"$gte": 100}, "customer.country": {"$in": ["DE", "FR"]}}
# Taken as sent and checked by subscriptions.check_data_filter, the rule the portal shares.
_DATA_FILTER_INPUT = {
    "type": "object",
    "nullable": True,
    "description": _DATA_FILTER_TEXT,
    "example": _DATA_FILTER_EXAMPLE,
}
_SCHEME_TEXT = (
    "`hmac` (default): `v1,` HMAC-SHA256 signatures with a `whsec_` secret the consumer shares. "
    "`ed25519`: Standard Webhooks `v1a,` signatures; Hookline keeps the private key and the "
    "consumer verifies with the `whpk_` public key. Changing it on PATCH rotates to a new key of "
    "that scheme; the old key keeps signing for 24 hours."
)


class EndpointHealthSchema(Schema):
    """How sending to the endpoint goes now: `healthy`; `failing` (the circuit breaker opened
    after failures in a row: deliveries wait, then one probe tests the endpoint); `throttled`
    (the receiver asked, with Retry-After on a 429 or 503, to wait until `paused_until`).
    Waiting deliveries stay pending and use up no attempts."""

    state = fields.String(required=True, validate=OneOf(STATES))
    since = Timestamp(
        allow_none=True,
        required=True,
        metadata={"description": "When the breaker opened (set while failing)."},
    )
    paused_until = Timestamp(
        allow_none=True,
        required=True,
        metadata={"description": "Nothing is sent before this time (null when not paused)."},
    )
    consecutive_failures = fields.Integer(
        required=True, metadata={"description": "Failed attempts since the last success."}
    )
    last_error = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Why the last failed attempt failed."},
    )


class SubscriptionSchema(Schema):
    """An endpoint; the secret is never part of it (see the `secret` operations)."""

    id = fields.String(required=True, metadata={"example": "sub_01J9Z3K9M2QW8R7T5V4N6P1B0C"})
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    description = fields.String(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    rate_limit = fields.Integer(
        allow_none=True, required=True, metadata={"description": _RATE_LIMIT_TEXT}
    )
    data_filter = fields.Dict(
        allow_none=True,
        required=True,
        metadata={"description": _DATA_FILTER_TEXT, "example": _DATA_FILTER_EXAMPLE},
    )
    signature_scheme = fields.String(
        required=True, validate=OneOf(SCHEMES), metadata={"description": _SCHEME_TEXT}
    )
    public_key = fields.String(
        allow_none=True,
        required=True,
        metadata={
            "description": "For `ed25519`: the `whpk_` key that verifies deliveries (null for "
            "`hmac`, whose secret is shown only by the `secret` operations).",
            "example": "whpk_8f3J1oQm2y0Yt9sSxk1u3XQyRr1VbWJp3FqgE5nN3cQ=",
        },
    )
    is_active = fields.Boolean(required=True)
    disabled_reason = fields.String(allow_none=True, required=True)
    health = fields.Nested(EndpointHealthSchema, required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)

    @pre_dump
    def _with_health(self, subscription: Any, **kwargs: Any) -> Extended:
        """Health and the public key are derived from the row when it is shown (health by the
        dispatcher's one rule)."""
        return Extended(
            subscription,
            health=subscription_service.health(subscription),
            public_key=subscription_service.public_key(subscription),
        )


class SubscriptionCreatedSchema(SubscriptionSchema):
    """The new endpoint with what its consumer verifies with, shown in this response only."""

    secret = fields.String(
        required=True,
        metadata={
            "description": "The `whsec_` secret (hmac), or the `whpk_` public key (ed25519).",
            "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    )


SubscriptionPage = page_of(SubscriptionSchema, "SubscriptionPage")


def _url(**kwargs: Any) -> Text:
    return Text(line=True, validate=Length(1, MAX_URL_LENGTH), metadata=_URL, **kwargs)


def _event_filter(**kwargs: Any) -> fields.List:
    return fields.List(
        Text(line=True, validate=TYPE_NAME),
        validate=Length(1, subscription_service.MAX_FILTER_ENTRIES),
        metadata=_EVENTS,
        **kwargs,
    )


class _EndpointArgs(Schema):
    """What create and change share (all optional here)."""

    url = _url()
    events = _event_filter()
    description = Text(allow_none=True, validate=Length(max=subscription_service.MAX_DESCRIPTION))
    headers = fields.Dict(
        keys=Text(line=True, validate=Length(1, subscription_service.MAX_HEADER_NAME)),
        values=Text(validate=Length(max=subscription_service.MAX_HEADER_VALUE)),
        validate=Length(max=subscription_service.MAX_HEADERS),
        metadata={"description": "Extra headers sent with every delivery."},
    )
    rate_limit = fields.Raw(allow_none=True, metadata=_RATE_LIMIT_INPUT)
    data_filter = fields.Raw(allow_none=True, metadata=_DATA_FILTER_INPUT)
    signature_scheme = Text(
        line=True, validate=OneOf(SCHEMES), metadata={"description": _SCHEME_TEXT}
    )


class SubscriptionCreateArgs(_EndpointArgs):
    """A new endpoint; a secret is generated unless one is supplied."""

    url = _url(required=True)
    events = _event_filter(required=True)
    secret = Text(
        line=True,
        validate=Length(max=200),
        metadata={"description": "`whsec_…` for hmac, or a `whsk_…` private key for ed25519."},
    )


class SubscriptionUpdateArgs(_EndpointArgs):
    """Only the fields given change; `rate_limit: null` removes the limit."""

    is_active = StrictBoolean()


class SecretSchema(Schema):
    """What the consumer verifies with: the primary `whsec_` secret (hmac), or the primary key's
    `whpk_` public key (ed25519; the private key never leaves Hookline)."""

    secret = fields.String(required=True)


class FilterTestArgs(Schema):
    """A data filter and an example `data` object to try it on."""

    data_filter = fields.Raw(required=True, metadata=_DATA_FILTER_INPUT)
    data = fields.Dict(required=True, metadata={"example": {"amount": 250, "customer": {}}})


class FilterTestedSchema(Schema):
    """Whether an event with that data would be delivered."""

    matches = fields.Boolean(required=True)


class RotateArgs(Schema):
    """How long the previous secret keeps signing (default 24 h, at most 7 days)."""

    grace_period_seconds = fields.Integer(strict=True, validate=Range(0, MAX_GRACE_SECONDS))


class RotatedSchema(Schema):
    """The new secret (or `whpk_` public key for ed25519), and when the previous one stops
    signing (null with no grace)."""

    secret = fields.String(required=True)
    previous_secret_expires_at = Timestamp(allow_none=True, required=True)


class TestArgs(Schema):
    """Which type's example to send (default `webhook.test`)."""

    event_type = Text(line=True, validate=TYPE_NAME)


class TestQueuedSchema(Schema):
    """The delivery carrying the test event; GET it to see the result."""

    delivery_id = fields.String(required=True)


class RecoverArgs(Schema):
    """Re-deliver failed deliveries created in [since, until]."""

    since = Timestamp(required=True)
    until = Timestamp()


class RecoveredSchema(Schema):
    """How many deliveries were queued again."""

    queued = fields.Integer(required=True)


# Deliveries by status: one count for each DeliveryStatus.
StatusCountsSchema = Schema.from_dict(
    {str(status): fields.Integer(required=True) for status in STATUSES},
    name="StatusCountsSchema",
)


class LatencySchema(Schema):
    """Response times of answered attempts, in milliseconds (null when there were none)."""

    p50 = fields.Integer(allow_none=True, required=True)
    p95 = fields.Integer(allow_none=True, required=True)
    p99 = fields.Integer(allow_none=True, required=True)
    samples = fields.Integer(required=True)


class StatsSchema(Schema):
    """An endpoint's last 24 hours (test deliveries are not counted)."""

    subscription_id = fields.String(required=True)
    since = Timestamp(required=True)
    until = Timestamp(required=True)
    counts = fields.Nested(StatusCountsSchema, required=True)
    total = fields.Integer(required=True)
    success_rate = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "succeeded / (succeeded + failed); null before any finished."},
    )
    latency_ms = fields.Nested(LatencySchema, required=True)


# --- events -------------------------------------------------------------------------------------


class PublishArgs(Schema):
    """An event to publish; `data` must match the type's JSON Schema if it has one."""

    type = Text(line=True, required=True, validate=TYPE_NAME, metadata={"example": "invoice.paid"})
    data = fields.Dict(required=True, metadata={"example": {"invoice_id": "inv_123"}})


class IdempotencyArgs(Schema):
    """Publishing twice with the same key and body returns the first event."""

    idempotency_key = Text(
        line=True,
        data_key="Idempotency-Key",
        validate=Length(1, MAX_IDEMPOTENCY_KEY_LENGTH),
        metadata={
            "description": "Any unique string, e.g. a UUID (at most "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} printable characters)."
        },
    )


class EventSchema(Schema):
    """A published event and how many deliveries it fanned out to."""

    id = fields.String(required=True, metadata={"example": "evt_01J9Z3K9M2QW8R7T5V4N6P1B0C"})
    type = fields.String(required=True)
    timestamp = WireTimestamp(attribute="created_at", required=True)
    data = fields.Dict(required=True)
    deliveries = fields.Integer(required=True)


EventPage = page_of(EventSchema, "EventPage")


class EventListArgs(PageArgs):
    """Filter events by type."""

    type = Text(line=True, validate=TYPE_NAME)


# --- deliveries ---------------------------------------------------------------------------------


class DeliveryListArgs(PageArgs):
    """Filter the delivery log; `since`/`until` bound the creation time (inclusive)."""

    status = fields.String(validate=OneOf(STATUSES))
    subscription_id = Text(line=True, validate=Length(1, MAX_CURSOR_LENGTH))
    event_type = Text(line=True, validate=TYPE_NAME)
    since = Timestamp()
    until = Timestamp()


class DeliverySchema(Schema):
    """One event on its way to one endpoint."""

    id = fields.String(required=True, metadata={"example": "dlv_01J9Z3K9M2QW8R7T5V4N6P1B0C"})
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    subscription_id = fields.String(required=True)
    status = fields.String(required=True, validate=OneOf(STATUSES))
    attempt_count = fields.Integer(required=True)
    next_attempt_at = Timestamp(allow_none=True, required=True)
    last_attempt_at = Timestamp(allow_none=True, required=True)
    last_response_status = fields.Integer(allow_none=True, required=True)
    is_test = fields.Boolean(required=True)
    created_at = Timestamp(required=True)


class AttemptSchema(Schema):
    """One HTTP try: what was sent and what came back (body cut at 16 KiB)."""

    number = fields.Integer(required=True)
    trigger = fields.String(required=True, validate=OneOf(TRIGGERS))
    started_at = Timestamp(required=True)
    duration_ms = fields.Integer(required=True)
    request_headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    response_status = fields.Integer(allow_none=True, required=True)
    response_headers = fields.Dict(
        keys=fields.String(), values=fields.String(), allow_none=True, required=True
    )
    response_body = fields.String(allow_none=True, required=True)
    response_truncated = fields.Boolean(required=True)
    error = fields.String(allow_none=True, required=True)


class DeliveryDetailSchema(DeliverySchema):
    """A delivery with every attempt, first to last."""

    attempts = fields.List(fields.Nested(AttemptSchema), required=True)


DeliveryPage = page_of(DeliverySchema, "DeliveryPage")
