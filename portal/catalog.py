"""Standard event-type catalog for Hookline.

The catalog is plain data rather than database rows or code paths so that it can be reviewed,
diffed and tested in isolation. A sync service elsewhere upserts these entries into the
database idempotently on deploy; tenants then subscribe endpoints to them by name.
"""

from dataclasses import dataclass
from typing import Any

from dispatcher.filters import group_of

_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_TIME = {"type": "string", "format": "date-time"}


def _endpoint_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """The schema of an operational `endpoint.*` payload: which endpoint it is about (its id and
    URL) plus the type's own fields, all of them always present."""
    return {
        "$schema": _DRAFT,
        "type": "object",
        "required": ["endpoint_id", "url", *properties],
        "properties": {
            "endpoint_id": {"type": "string", "pattern": "^sub_[0-9A-HJKMNP-TV-Z]{26}$"},
            "url": {"type": "string", "format": "uri"},
            **properties,
        },
    }


@dataclass(frozen=True)
class StandardEventType:
    """One standard event type: its name, when it fires, an example payload and an optional schema.

    ``name`` has the form ``group.action`` (lowercase, dot-separated); ``example`` is a realistic
    ``data`` object and, when ``schema`` is given, must validate against it (JSON Schema 2020-12).
    """

    name: str
    description: str
    example: dict[str, Any]
    schema: dict[str, Any] | None = None

    @property
    def group(self) -> str:
        """The catalog group (see `group_of`)."""
        return group_of(self.name)


GROUP_LABELS: dict[str, str] = {
    "webhook": "Webhooks",
    "endpoint": "Endpoints",
    "invoice": "Billing — invoices",
    "payment": "Payments",
    "subscription": "Subscriptions",
    "customer": "Customers",
    "user": "Users",
    "email": "Email",
    "bulk_email": "Bulk email",
    "file": "Files",
    "storage": "Storage",
    "import": "Data imports",
    "export": "Data exports",
    "metric": "Metrics",
    "report": "Reports",
    "security": "Security",
    "compliance": "Compliance",
    "ticket": "Support tickets",
}


STANDARD_EVENT_TYPES: tuple[StandardEventType, ...] = (
    StandardEventType(
        name="webhook.test",
        description=(
            "A test event sent from the portal or API so you can confirm an endpoint receives "
            "and verifies deliveries."
        ),
        example={
            "message": "This is a test event from Hookline.",
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "sent_at": "2024-05-14T09:30:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "endpoint_id": {"type": "string", "pattern": "^sub_[0-9A-HJKMNP-TV-Z]{26}$"},
                "sent_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="endpoint.created",
        description=(
            "Fires when a new webhook endpoint is added to the account. Like every endpoint.* "
            "event it goes to the account's other endpoints that subscribe to it by name or "
            "with endpoint.* ('*' leaves these out), never to the endpoint it is about."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "event_types": ["invoice.created", "invoice.paid"],
            "signature_scheme": "hmac",
            "created_at": "2024-05-14T09:12:44Z",
        },
        schema=_endpoint_schema(
            {
                "event_types": {"type": "array", "items": {"type": "string"}},
                "signature_scheme": {"enum": ["hmac", "ed25519"]},
                "created_at": _TIME,
            }
        ),
    ),
    StandardEventType(
        name="endpoint.updated",
        description=(
            "Fires when an endpoint's settings change (URL, description, event types, data "
            "filter, headers, rate limit or signature scheme); changed_fields names them."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/v2/hookline",
            "changed_fields": ["url"],
            "updated_at": "2024-05-15T11:02:09Z",
        },
        schema=_endpoint_schema(
            {
                "changed_fields": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "updated_at": _TIME,
            }
        ),
    ),
    StandardEventType(
        name="endpoint.deleted",
        description="Fires when an endpoint is permanently removed and will get no more events.",
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "deleted_at": "2024-06-01T08:00:00Z",
        },
        schema=_endpoint_schema({"deleted_at": _TIME}),
    ),
    StandardEventType(
        name="endpoint.disabled",
        description=(
            "Fires when an endpoint is disabled, either manually or automatically after "
            "repeated delivery failures (or a 410 Gone)."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "reason": "Disabled after 5 consecutive days of failed deliveries (HTTP 503).",
            "disabled_at": "2024-05-20T03:15:27Z",
        },
        schema=_endpoint_schema({"reason": {"type": "string"}, "disabled_at": _TIME}),
    ),
    StandardEventType(
        name="endpoint.enabled",
        description="Fires when a disabled endpoint is re-enabled and deliveries resume.",
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "enabled_at": "2024-05-21T10:40:00Z",
        },
        schema=_endpoint_schema({"enabled_at": _TIME}),
    ),
    StandardEventType(
        name="endpoint.secret_rotated",
        description=(
            "Fires when an endpoint's signing secret (or ed25519 key) is rotated; the old one "
            "keeps signing until previous_secret_expires_at (null: it stopped at once)."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "signature_scheme": "hmac",
            "rotated_at": "2024-05-22T14:00:00Z",
            "previous_secret_expires_at": "2024-05-23T14:00:00Z",
        },
        schema=_endpoint_schema(
            {
                "signature_scheme": {"enum": ["hmac", "ed25519"]},
                "rotated_at": _TIME,
                "previous_secret_expires_at": {"type": ["string", "null"], "format": "date-time"},
            }
        ),
    ),
    StandardEventType(
        name="endpoint.delivery_failed",
        description=(
            "Fires when a delivery to an endpoint has used up its automatic attempts (or the "
            "endpoint answered 410 Gone) and will not be retried unless someone retries it. "
            "Failed deliveries of endpoint.* events do not fire it."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "delivery_id": "dlv_01HXZ3M2TQ7W8R5V4N6P1B0C9D",
            "event_id": "evt_01HXZ3K9P4QW8R7T5V4N6P1B0E",
            "event_type": "invoice.paid",
            "attempts": 4,
            "last_response_status": 503,
            "last_error": None,
            "failed_at": "2024-05-14T15:42:10Z",
        },
        schema=_endpoint_schema(
            {
                "delivery_id": {"type": "string", "pattern": "^dlv_"},
                "event_id": {"type": "string", "pattern": "^evt_"},
                "event_type": {"type": "string"},
                "attempts": {"type": "integer", "minimum": 1},
                "last_response_status": {"type": ["integer", "null"]},
                "last_error": {"type": ["string", "null"]},
                "failed_at": _TIME,
            }
        ),
    ),
    StandardEventType(
        name="endpoint.failing",
        description=(
            "Fires when an endpoint's circuit breaker opens after failures in a row: deliveries "
            "to it wait (using up no attempts) and one probe tests it after paused_until."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "consecutive_failures": 5,
            "last_error": "HTTP 503",
            "failing_since": "2024-05-14T15:40:00Z",
            "paused_until": "2024-05-14T15:40:05Z",
        },
        schema=_endpoint_schema(
            {
                "consecutive_failures": {"type": "integer", "minimum": 1},
                "last_error": {"type": ["string", "null"]},
                "failing_since": _TIME,
                "paused_until": {"type": ["string", "null"], "format": "date-time"},
            }
        ),
    ),
    StandardEventType(
        name="endpoint.recovered",
        description=(
            "Fires when a failing endpoint answers again (its circuit breaker closes) and the "
            "deliveries that waited for it are sent."
        ),
        example={
            "endpoint_id": "sub_01HXZ3K9M2QW8R7T5V4N6P1B0C",
            "url": "https://hooks.example.com/hookline",
            "recovered_at": "2024-05-14T15:52:30Z",
        },
        schema=_endpoint_schema({"recovered_at": _TIME}),
    ),
    StandardEventType(
        name="invoice.created",
        description="Fires when a new invoice is drafted for a customer.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "number": "INV-2024-0042",
            "amount_due": 12900,
            "currency": "USD",
            "status": "draft",
            "due_date": "2024-06-14",
            "created_at": "2024-05-14T09:30:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["invoice_id"],
            "properties": {
                "invoice_id": {"type": "string", "pattern": "^inv_"},
                "amount": {"type": "number", "minimum": 0},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "number": {"type": "string"},
                "amount_due": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "status": {"enum": ["draft", "open", "paid", "void", "uncollectible"]},
                "due_date": {"type": "string", "format": "date"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="invoice.finalized",
        description="Fires when a draft invoice is finalized and can no longer be edited.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "number": "INV-2024-0042",
            "amount_due": 12900,
            "currency": "USD",
            "finalized_at": "2024-05-14T10:00:00Z",
        },
    ),
    StandardEventType(
        name="invoice.sent",
        description="Fires when an invoice is emailed to the customer.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "recipient": "billing@acme.example",
            "sent_at": "2024-05-14T10:01:12Z",
        },
    ),
    StandardEventType(
        name="invoice.paid",
        description="Fires when an invoice is paid in full.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "payment_id": "pay_6Hn3Ws8QeZ",
            "amount_paid": 12900,
            "currency": "USD",
            "paid_at": "2024-05-20T16:45:03Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["invoice_id"],
            "properties": {
                "invoice_id": {"type": "string", "pattern": "^inv_"},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "payment_id": {"type": "string", "pattern": "^pay_"},
                "amount_paid": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "paid_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="invoice.payment_failed",
        description="Fires when an attempt to collect payment for an invoice fails.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "amount_due": 12900,
            "currency": "USD",
            "failure_reason": "card_declined",
            "attempt_count": 2,
            "next_attempt_at": "2024-05-23T16:45:00Z",
        },
    ),
    StandardEventType(
        name="invoice.overdue",
        description="Fires when an open invoice passes its due date without being paid.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "amount_due": 12900,
            "currency": "USD",
            "due_date": "2024-06-14",
            "days_overdue": 1,
        },
    ),
    StandardEventType(
        name="invoice.voided",
        description="Fires when an invoice is voided and no longer needs to be paid.",
        example={
            "invoice_id": "inv_8JkQ2mVw3R",
            "customer_id": "cus_4Tq9Lm2XaP",
            "voided_by": "usr_7Pd2Kx9MbN",
            "voided_at": "2024-05-15T12:00:00Z",
        },
    ),
    StandardEventType(
        name="payment.succeeded",
        description="Fires when a payment is captured successfully.",
        example={
            "payment_id": "pay_6Hn3Ws8QeZ",
            "customer_id": "cus_4Tq9Lm2XaP",
            "invoice_id": "inv_8JkQ2mVw3R",
            "amount": 12900,
            "currency": "USD",
            "method": "card",
            "card_last4": "4242",
            "succeeded_at": "2024-05-20T16:45:03Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["payment_id"],
            "properties": {
                "payment_id": {"type": "string", "pattern": "^pay_"},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "invoice_id": {"type": ["string", "null"], "pattern": "^inv_"},
                "amount": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "method": {"enum": ["card", "bank_transfer", "direct_debit", "wallet"]},
                "card_last4": {"type": "string", "pattern": "^[0-9]{4}$"},
                "succeeded_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="payment.failed",
        description="Fires when a payment attempt is declined or otherwise fails.",
        example={
            "payment_id": "pay_9Ru4Yb1CdK",
            "customer_id": "cus_4Tq9Lm2XaP",
            "amount": 12900,
            "currency": "USD",
            "failure_code": "card_declined",
            "failure_message": "Your card was declined.",
            "failed_at": "2024-05-20T16:44:10Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["payment_id"],
            "properties": {
                "payment_id": {"type": "string", "pattern": "^pay_"},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "amount": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "failure_code": {"type": "string"},
                "failure_message": {"type": "string"},
                "failed_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="payment.refunded",
        description="Fires when all or part of a payment is refunded to the customer.",
        example={
            "payment_id": "pay_6Hn3Ws8QeZ",
            "refund_id": "ref_3Xc7Vn2LpQ",
            "customer_id": "cus_4Tq9Lm2XaP",
            "amount_refunded": 4300,
            "currency": "USD",
            "reason": "requested_by_customer",
            "refunded_at": "2024-05-25T09:10:00Z",
        },
    ),
    StandardEventType(
        name="payment.disputed",
        description="Fires when a customer's bank opens a dispute or chargeback against a payment.",
        example={
            "payment_id": "pay_6Hn3Ws8QeZ",
            "dispute_id": "dsp_5Gk8Qw1ZrT",
            "amount": 12900,
            "currency": "USD",
            "reason": "fraudulent",
            "evidence_due_by": "2024-06-10T23:59:59Z",
        },
    ),
    StandardEventType(
        name="payment.method_updated",
        description="Fires when a customer adds or changes their default payment method.",
        example={
            "customer_id": "cus_4Tq9Lm2XaP",
            "payment_method_id": "pm_1Lb6Tr4HsW",
            "type": "card",
            "card_brand": "visa",
            "card_last4": "4242",
            "updated_at": "2024-05-18T13:22:00Z",
        },
    ),
    StandardEventType(
        name="subscription.created",
        description="Fires when a customer starts a new subscription.",
        example={
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "customer_id": "cus_4Tq9Lm2XaP",
            "plan_id": "plan_pro_monthly",
            "status": "active",
            "quantity": 5,
            "amount": 4900,
            "currency": "USD",
            "interval": "month",
            "current_period_end": "2024-06-14T00:00:00Z",
            "created_at": "2024-05-14T09:30:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["subscription_id"],
            "properties": {
                "subscription_id": {"type": "string", "pattern": "^sbn_"},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "plan_id": {"type": "string"},
                "status": {"enum": ["trialing", "active", "past_due", "canceled", "paused"]},
                "quantity": {"type": "integer", "minimum": 1},
                "amount": {"type": "integer", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "interval": {"enum": ["day", "week", "month", "year"]},
                "current_period_end": {"type": "string", "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="subscription.updated",
        description="Fires when a subscription's plan, quantity or billing details change.",
        example={
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "customer_id": "cus_4Tq9Lm2XaP",
            "previous_plan_id": "plan_pro_monthly",
            "plan_id": "plan_business_monthly",
            "quantity": 10,
            "updated_at": "2024-05-28T08:00:00Z",
        },
    ),
    StandardEventType(
        name="subscription.renewed",
        description="Fires when a subscription successfully renews for a new billing period.",
        example={
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "customer_id": "cus_4Tq9Lm2XaP",
            "invoice_id": "inv_5Pq1Zs7NdF",
            "current_period_start": "2024-06-14T00:00:00Z",
            "current_period_end": "2024-07-14T00:00:00Z",
        },
    ),
    StandardEventType(
        name="subscription.trial_ending",
        description="Fires three days before a subscription's free trial ends.",
        example={
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "customer_id": "cus_4Tq9Lm2XaP",
            "trial_end": "2024-05-31T00:00:00Z",
        },
    ),
    StandardEventType(
        name="subscription.paused",
        description="Fires when billing for a subscription is paused.",
        example={
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "customer_id": "cus_4Tq9Lm2XaP",
            "resumes_at": "2024-08-01T00:00:00Z",
            "paused_at": "2024-06-01T00:00:00Z",
        },
    ),
    StandardEventType(
        name="subscription.canceled",
        description="Fires when a subscription is canceled, immediately or at period end.",
        example={
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "customer_id": "cus_4Tq9Lm2XaP",
            "cancel_at_period_end": True,
            "reason": "too_expensive",
            "canceled_at": "2024-06-20T15:04:05Z",
            "ends_at": "2024-07-14T00:00:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["subscription_id"],
            "properties": {
                "subscription_id": {"type": "string", "pattern": "^sbn_"},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "cancel_at_period_end": {"type": "boolean"},
                "reason": {"type": ["string", "null"]},
                "canceled_at": {"type": "string", "format": "date-time"},
                "ends_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="customer.created",
        description="Fires when a new customer record is created.",
        example={
            "customer_id": "cus_4Tq9Lm2XaP",
            "name": "Acme Corp",
            "email": "billing@acme.example",
            "country": "US",
            "currency": "USD",
            "created_at": "2024-05-14T09:00:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["customer_id"],
            "properties": {
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "name": {"type": "string"},
                "email": {"type": "string", "format": "email"},
                "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="customer.updated",
        description="Fires when a customer's details such as name, email or address change.",
        example={
            "customer_id": "cus_4Tq9Lm2XaP",
            "changed_fields": ["email"],
            "email": "accounts@acme.example",
            "updated_at": "2024-05-19T10:15:00Z",
        },
    ),
    StandardEventType(
        name="customer.deleted",
        description="Fires when a customer record is deleted.",
        example={
            "customer_id": "cus_4Tq9Lm2XaP",
            "deleted_at": "2024-09-01T12:00:00Z",
        },
    ),
    StandardEventType(
        name="user.created",
        description="Fires when a new user account is created in the workspace.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "email": "jane.doe@acme.example",
            "name": "Jane Doe",
            "role": "member",
            "created_at": "2024-05-14T09:05:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["user_id"],
            "properties": {
                "user_id": {"type": "string", "pattern": "^usr_"},
                "email": {"type": "string", "format": "email"},
                "name": {"type": "string"},
                "role": {"enum": ["owner", "admin", "member", "viewer"]},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="user.invited",
        description="Fires when someone is invited to join the workspace.",
        example={
            "invitation_id": "invt_3Mw8Rb2KqS",
            "email": "sam.lee@acme.example",
            "role": "member",
            "invited_by": "usr_7Pd2Kx9MbN",
            "expires_at": "2024-05-21T09:05:00Z",
        },
    ),
    StandardEventType(
        name="user.updated",
        description="Fires when a user's profile or role changes.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "changed_fields": ["role"],
            "role": "admin",
            "updated_at": "2024-05-16T11:30:00Z",
        },
    ),
    StandardEventType(
        name="user.deleted",
        description="Fires when a user account is removed from the workspace.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "deleted_by": "usr_1Ab2Cd3EfG",
            "deleted_at": "2024-07-01T08:00:00Z",
        },
    ),
    StandardEventType(
        name="user.logged_in",
        description="Fires when a user signs in successfully.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "ip_address": "203.0.113.24",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)",
            "mfa_used": True,
            "logged_in_at": "2024-05-14T08:59:12Z",
        },
    ),
    StandardEventType(
        name="user.password_reset",
        description="Fires when a user completes a password reset.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "ip_address": "203.0.113.24",
            "reset_at": "2024-05-17T19:20:00Z",
        },
    ),
    StandardEventType(
        name="email.sent",
        description="Fires when a transactional email is accepted for delivery.",
        example={
            "message_id": "msg_4Jt7Nc1WpH",
            "to": "jane.doe@acme.example",
            "subject": "Your invoice INV-2024-0042",
            "template": "invoice_sent",
            "sent_at": "2024-05-14T10:01:12Z",
        },
    ),
    StandardEventType(
        name="email.failed",
        description="Fires when an email could not be sent at all (refused before it left: an "
        "invalid address, a suppressed recipient, a provider error). Compare email.bounced, "
        "which the recipient's server rejected after sending.",
        example={
            "message_id": "msg_7Pq3Lx9VbN",
            "to": "nobody@acme.invalid",
            "subject": "Your invoice INV-2024-0042",
            "reason": "invalid_address",
            "failed_at": "2024-05-14T10:01:12Z",
        },
    ),
    StandardEventType(
        name="email.delivered",
        description="Fires when the recipient's mail server confirms delivery of an email.",
        example={
            "message_id": "msg_4Jt7Nc1WpH",
            "to": "jane.doe@acme.example",
            "delivered_at": "2024-05-14T10:01:15Z",
        },
    ),
    StandardEventType(
        name="email.opened",
        description="Fires when a recipient opens an email with open tracking enabled.",
        example={
            "message_id": "msg_4Jt7Nc1WpH",
            "to": "jane.doe@acme.example",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
            "opened_at": "2024-05-14T10:22:40Z",
        },
    ),
    StandardEventType(
        name="email.clicked",
        description="Fires when a recipient clicks a tracked link in an email.",
        example={
            "message_id": "msg_4Jt7Nc1WpH",
            "to": "jane.doe@acme.example",
            "url": "https://billing.example.com/invoices/inv_8JkQ2mVw3R",
            "clicked_at": "2024-05-14T10:23:02Z",
        },
    ),
    StandardEventType(
        name="email.bounced",
        description="Fires when the recipient's mail server rejects an email as undeliverable.",
        example={
            "message_id": "msg_8Kd2Fv6TyB",
            "to": "old.address@acme.example",
            "bounce_type": "hard",
            "smtp_code": 550,
            "diagnostic": "550 5.1.1 The email account that you tried to reach does not exist.",
            "bounced_at": "2024-05-14T10:01:18Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["message_id"],
            "properties": {
                "message_id": {"type": "string", "pattern": "^msg_"},
                "to": {"type": "string", "format": "email"},
                "bounce_type": {"enum": ["hard", "soft"]},
                "smtp_code": {"type": "integer", "minimum": 200, "maximum": 599},
                "diagnostic": {"type": "string"},
                "bounced_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="email.complained",
        description="Fires when a recipient marks an email as spam.",
        example={
            "message_id": "msg_4Jt7Nc1WpH",
            "to": "jane.doe@acme.example",
            "feedback_type": "abuse",
            "complained_at": "2024-05-15T07:45:00Z",
        },
    ),
    StandardEventType(
        name="bulk_email.scheduled",
        description="Fires when a bulk email campaign is scheduled for a future send time.",
        example={
            "campaign_id": "cmp_6Qs1Lr8VnD",
            "name": "June product update",
            "recipient_count": 18250,
            "scheduled_for": "2024-06-03T14:00:00Z",
        },
    ),
    StandardEventType(
        name="bulk_email.started",
        description="Fires when a bulk email campaign begins sending.",
        example={
            "campaign_id": "cmp_6Qs1Lr8VnD",
            "recipient_count": 18250,
            "started_at": "2024-06-03T14:00:02Z",
        },
    ),
    StandardEventType(
        name="bulk_email.completed",
        description="Fires when every message in a bulk email campaign has been processed.",
        example={
            "campaign_id": "cmp_6Qs1Lr8VnD",
            "sent": 18112,
            "bounced": 96,
            "suppressed": 42,
            "completed_at": "2024-06-03T14:37:51Z",
        },
    ),
    StandardEventType(
        name="bulk_email.failed",
        description="Fires when a bulk email campaign stops before finishing because of an error.",
        example={
            "campaign_id": "cmp_6Qs1Lr8VnD",
            "sent": 4020,
            "error": "Sending domain news.acme.example failed DKIM verification.",
            "failed_at": "2024-06-03T14:09:30Z",
        },
    ),
    StandardEventType(
        name="file.uploaded",
        description="Fires when a file finishes uploading and is available for download.",
        example={
            "file_id": "file_9Wm4Hx2CjR",
            "filename": "q2-contract.pdf",
            "content_type": "application/pdf",
            "size_bytes": 482113,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "uploaded_by": "usr_7Pd2Kx9MbN",
            "uploaded_at": "2024-05-14T12:00:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["file_id"],
            "properties": {
                "file_id": {"type": "string", "pattern": "^file_"},
                "filename": {"type": "string"},
                "content_type": {"type": "string"},
                "size_bytes": {"type": "integer", "minimum": 0},
                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "uploaded_by": {"type": "string", "pattern": "^usr_"},
                "uploaded_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="file.downloaded",
        description="Fires when a stored file is downloaded.",
        example={
            "file_id": "file_9Wm4Hx2CjR",
            "downloaded_by": "usr_1Ab2Cd3EfG",
            "ip_address": "198.51.100.7",
            "downloaded_at": "2024-05-15T09:12:00Z",
        },
    ),
    StandardEventType(
        name="file.shared",
        description="Fires when a file is shared with another user or via a public link.",
        example={
            "file_id": "file_9Wm4Hx2CjR",
            "shared_by": "usr_7Pd2Kx9MbN",
            "shared_with": "legal@partner.example",
            "link_expires_at": "2024-05-21T12:00:00Z",
        },
    ),
    StandardEventType(
        name="file.deleted",
        description="Fires when a file is deleted.",
        example={
            "file_id": "file_9Wm4Hx2CjR",
            "deleted_by": "usr_7Pd2Kx9MbN",
            "deleted_at": "2024-08-01T00:00:00Z",
        },
    ),
    StandardEventType(
        name="file.scan_failed",
        description="Fires when an uploaded file is quarantined after a malware scan flags it.",
        example={
            "file_id": "file_2Tz5Kp8GhM",
            "filename": "invoice.pdf.exe",
            "threat": "Win.Trojan.Agent-1234",
            "quarantined_at": "2024-05-14T12:00:04Z",
        },
    ),
    StandardEventType(
        name="storage.quota_warning",
        description="Fires when storage usage crosses 80% of the account's quota.",
        example={
            "used_bytes": 85899345920,
            "quota_bytes": 107374182400,
            "percent_used": 80.0,
            "measured_at": "2024-05-14T00:00:00Z",
        },
    ),
    StandardEventType(
        name="storage.quota_exceeded",
        description="Fires when storage usage reaches the quota and new uploads are rejected.",
        example={
            "used_bytes": 107374182400,
            "quota_bytes": 107374182400,
            "exceeded_at": "2024-05-29T17:03:00Z",
        },
    ),
    StandardEventType(
        name="storage.bucket_created",
        description="Fires when a new storage bucket is created.",
        example={
            "bucket_id": "bkt_3Nr7Wd1QxV",
            "name": "customer-uploads",
            "region": "eu-west-1",
            "created_at": "2024-05-14T09:40:00Z",
        },
    ),
    StandardEventType(
        name="storage.bucket_deleted",
        description="Fires when a storage bucket and its contents are deleted.",
        example={
            "bucket_id": "bkt_3Nr7Wd1QxV",
            "name": "customer-uploads",
            "deleted_at": "2024-09-14T09:40:00Z",
        },
    ),
    StandardEventType(
        name="import.started",
        description="Fires when a data import job starts processing.",
        example={
            "import_id": "imp_5Yc2Bn9LsT",
            "source": "customers.csv",
            "format": "csv",
            "started_at": "2024-05-14T13:00:00Z",
        },
    ),
    StandardEventType(
        name="import.completed",
        description="Fires when a data import job finishes, with imported and skipped row counts.",
        example={
            "import_id": "imp_5Yc2Bn9LsT",
            "rows_total": 12040,
            "rows_imported": 11987,
            "rows_skipped": 53,
            "completed_at": "2024-05-14T13:04:21Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["import_id"],
            "properties": {
                "import_id": {"type": "string", "pattern": "^imp_"},
                "rows_total": {"type": "integer", "minimum": 0},
                "rows_imported": {"type": "integer", "minimum": 0},
                "rows_skipped": {"type": "integer", "minimum": 0},
                "completed_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="import.failed",
        description="Fires when a data import job stops because of an unrecoverable error.",
        example={
            "import_id": "imp_5Yc2Bn9LsT",
            "error": "Row 1: missing required column 'email'.",
            "failed_at": "2024-05-14T13:00:03Z",
        },
    ),
    StandardEventType(
        name="export.requested",
        description="Fires when a user requests a data export.",
        example={
            "export_id": "exp_7Hf3Mq6RwC",
            "resource": "invoices",
            "format": "csv",
            "requested_by": "usr_7Pd2Kx9MbN",
            "requested_at": "2024-05-14T14:00:00Z",
        },
    ),
    StandardEventType(
        name="export.completed",
        description="Fires when a data export is ready to download.",
        example={
            "export_id": "exp_7Hf3Mq6RwC",
            "download_url": "https://files.hookline.example/exports/exp_7Hf3Mq6RwC.csv",
            "row_count": 2318,
            "expires_at": "2024-05-21T14:00:00Z",
            "completed_at": "2024-05-14T14:01:37Z",
        },
    ),
    StandardEventType(
        name="export.failed",
        description="Fires when a data export could not be generated.",
        example={
            "export_id": "exp_7Hf3Mq6RwC",
            "error": "Export exceeded the 1,000,000-row limit; narrow the date range.",
            "failed_at": "2024-05-14T14:05:00Z",
        },
    ),
    StandardEventType(
        name="metric.threshold_exceeded",
        description="Fires when a monitored metric crosses the threshold set in an alert rule.",
        example={
            "alert_id": "alr_2Lk9Vb4NpX",
            "metric": "api.error_rate",
            "value": 0.071,
            "threshold": 0.05,
            "window": "5m",
            "triggered_at": "2024-05-14T15:20:00Z",
        },
    ),
    StandardEventType(
        name="metric.recovered",
        description="Fires when a metric that breached its threshold returns to normal.",
        example={
            "alert_id": "alr_2Lk9Vb4NpX",
            "metric": "api.error_rate",
            "value": 0.012,
            "threshold": 0.05,
            "recovered_at": "2024-05-14T15:45:00Z",
        },
    ),
    StandardEventType(
        name="metric.usage_recorded",
        description="Fires when metered usage is recorded against a customer's subscription.",
        example={
            "usage_id": "use_8Gd1Rt5KmZ",
            "subscription_id": "sbn_2Vd9Hq5MxL",
            "metric": "api_calls",
            "quantity": 1500,
            "period_start": "2024-05-14T00:00:00Z",
            "period_end": "2024-05-14T23:59:59Z",
        },
    ),
    StandardEventType(
        name="report.generated",
        description="Fires when a scheduled or on-demand report has been generated.",
        example={
            "report_id": "rpt_4Cs8Np2JvQ",
            "type": "monthly_revenue",
            "period": "2024-04",
            "download_url": "https://files.hookline.example/reports/rpt_4Cs8Np2JvQ.pdf",
            "generated_at": "2024-05-01T06:00:00Z",
        },
    ),
    StandardEventType(
        name="report.failed",
        description="Fires when a report could not be generated.",
        example={
            "report_id": "rpt_4Cs8Np2JvQ",
            "type": "monthly_revenue",
            "error": "Data source timed out after 300 seconds.",
            "failed_at": "2024-05-01T06:05:00Z",
        },
    ),
    StandardEventType(
        name="report.shared",
        description="Fires when a report is shared with other users.",
        example={
            "report_id": "rpt_4Cs8Np2JvQ",
            "shared_by": "usr_7Pd2Kx9MbN",
            "recipients": ["cfo@acme.example", "finance@acme.example"],
            "shared_at": "2024-05-01T09:00:00Z",
        },
    ),
    StandardEventType(
        name="security.login_failed",
        description="Fires when a sign-in attempt fails because of a wrong password or MFA code.",
        example={
            "email": "jane.doe@acme.example",
            "ip_address": "192.0.2.55",
            "reason": "invalid_password",
            "failed_attempts": 3,
            "attempted_at": "2024-05-14T02:11:09Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["email"],
            "properties": {
                "email": {"type": "string", "format": "email"},
                "ip_address": {"type": "string"},
                "reason": {"enum": ["invalid_password", "invalid_mfa_code", "account_locked"]},
                "failed_attempts": {"type": "integer", "minimum": 1},
                "attempted_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="security.mfa_enabled",
        description="Fires when a user turns on multi-factor authentication.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "method": "totp",
            "enabled_at": "2024-05-14T09:10:00Z",
        },
    ),
    StandardEventType(
        name="security.mfa_disabled",
        description="Fires when multi-factor authentication is turned off for a user.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "disabled_by": "usr_1Ab2Cd3EfG",
            "disabled_at": "2024-06-02T10:00:00Z",
        },
    ),
    StandardEventType(
        name="security.api_key_created",
        description="Fires when a new API key is created.",
        example={
            "api_key_id": "key_6Tn2Wq9HrL",
            "name": "CI deploy key",
            "prefix": "hl_live_6Tn2",
            "created_by": "usr_7Pd2Kx9MbN",
            "created_at": "2024-05-14T09:20:00Z",
        },
    ),
    StandardEventType(
        name="security.api_key_revoked",
        description="Fires when an API key is revoked and can no longer be used.",
        example={
            "api_key_id": "key_6Tn2Wq9HrL",
            "revoked_by": "usr_7Pd2Kx9MbN",
            "revoked_at": "2024-07-14T09:20:00Z",
        },
    ),
    StandardEventType(
        name="security.suspicious_activity",
        description="Fires when activity on the account matches a suspicious-behaviour rule.",
        example={
            "user_id": "usr_7Pd2Kx9MbN",
            "rule": "impossible_travel",
            "ip_address": "198.51.100.201",
            "country": "BR",
            "previous_country": "US",
            "detected_at": "2024-05-14T03:00:00Z",
        },
    ),
    StandardEventType(
        name="compliance.data_export_requested",
        description="Fires when a data subject requests a copy of their personal data.",
        example={
            "request_id": "dsr_3Fx6Lc1PwN",
            "subject_email": "jane.doe@acme.example",
            "regulation": "GDPR",
            "due_by": "2024-06-13T00:00:00Z",
            "requested_at": "2024-05-14T09:00:00Z",
        },
    ),
    StandardEventType(
        name="compliance.data_deletion_requested",
        description="Fires when a data subject asks for their personal data to be erased.",
        example={
            "request_id": "dsr_9Kv2Rm7BtS",
            "subject_email": "jane.doe@acme.example",
            "regulation": "CCPA",
            "due_by": "2024-06-28T00:00:00Z",
            "requested_at": "2024-05-14T09:00:00Z",
        },
    ),
    StandardEventType(
        name="compliance.data_deletion_completed",
        description="Fires when a personal data erasure request has been fully carried out.",
        example={
            "request_id": "dsr_9Kv2Rm7BtS",
            "records_deleted": 37,
            "completed_at": "2024-05-20T11:00:00Z",
        },
    ),
    StandardEventType(
        name="compliance.audit_log_exported",
        description="Fires when the audit log is exported for a compliance review.",
        example={
            "export_id": "exp_1Qz8Hs4VkD",
            "from": "2024-01-01T00:00:00Z",
            "to": "2024-03-31T23:59:59Z",
            "exported_by": "usr_7Pd2Kx9MbN",
            "exported_at": "2024-04-02T10:00:00Z",
        },
    ),
    StandardEventType(
        name="compliance.retention_policy_applied",
        description="Fires when records older than the retention policy allows are purged.",
        example={
            "policy_id": "ret_5Bw3Nd8QyF",
            "retention_days": 365,
            "records_purged": 12840,
            "applied_at": "2024-05-14T01:00:00Z",
        },
    ),
    StandardEventType(
        name="ticket.created",
        description="Fires when a customer opens a new support ticket.",
        example={
            "ticket_id": "tkt_7Mr4Xc2LnH",
            "customer_id": "cus_4Tq9Lm2XaP",
            "subject": "Unable to download April invoice",
            "priority": "normal",
            "channel": "email",
            "created_at": "2024-05-14T16:00:00Z",
        },
        schema={
            "$schema": _DRAFT,
            "type": "object",
            "required": ["ticket_id"],
            "properties": {
                "ticket_id": {"type": "string", "pattern": "^tkt_"},
                "customer_id": {"type": "string", "pattern": "^cus_"},
                "subject": {"type": "string"},
                "priority": {"enum": ["low", "normal", "high", "urgent"]},
                "channel": {"enum": ["email", "chat", "web", "phone", "api"]},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    ),
    StandardEventType(
        name="ticket.assigned",
        description="Fires when a support ticket is assigned to an agent.",
        example={
            "ticket_id": "tkt_7Mr4Xc2LnH",
            "assignee_id": "usr_1Ab2Cd3EfG",
            "assigned_at": "2024-05-14T16:05:00Z",
        },
    ),
    StandardEventType(
        name="ticket.replied",
        description="Fires when a new reply is added to a support ticket.",
        example={
            "ticket_id": "tkt_7Mr4Xc2LnH",
            "reply_id": "rpl_2Ws9Kb6TdJ",
            "author_type": "agent",
            "author_id": "usr_1Ab2Cd3EfG",
            "replied_at": "2024-05-14T16:20:00Z",
        },
    ),
    StandardEventType(
        name="ticket.status_changed",
        description="Fires when a support ticket moves to a different status.",
        example={
            "ticket_id": "tkt_7Mr4Xc2LnH",
            "previous_status": "open",
            "status": "pending",
            "changed_at": "2024-05-14T16:21:00Z",
        },
    ),
    StandardEventType(
        name="ticket.resolved",
        description="Fires when a support ticket is marked as resolved.",
        example={
            "ticket_id": "tkt_7Mr4Xc2LnH",
            "resolved_by": "usr_1Ab2Cd3EfG",
            "resolution": "Invoice regenerated and resent.",
            "resolved_at": "2024-05-15T09:00:00Z",
        },
    ),
)
