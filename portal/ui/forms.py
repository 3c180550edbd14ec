"""Portal forms: labels, simple presence checks and CSRF. The rules live in the services."""

from __future__ import annotations

import json
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from dispatcher.signing import DEFAULT_GRACE, ED25519, HMAC, MAX_GRACE_SECONDS
from dispatcher.ssrf import MAX_URL_LENGTH
from dispatcher.throttle import MAX_RATE_LIMIT, MIN_RATE_LIMIT
from portal.models import EventType
from portal.services import accounts, event_types, subscriptions
from portal.ui.formatting import type_group_label

# How much typed JSON a form parses at most; the service's own limits apply to what it parses
# to (filters.MAX_FILTER_BYTES, the payload limit), so this only bounds the parsing.
MAX_TYPED_JSON = 20000
# The custom-headers text: room for subscriptions.MAX_HEADERS lines of the longest name and
# value (22 080 characters) and some blank lines; the service checks the parsed headers.
MAX_TYPED_HEADERS = 25000

DEFAULT_GRACE_SECONDS = int(DEFAULT_GRACE.total_seconds())
GRACE_CHOICES = [
    SelectChoice(0, "End it now (no grace period)"),
    SelectChoice(3600, "1 hour"),
    SelectChoice(DEFAULT_GRACE_SECONDS, "24 hours (recommended)"),
    SelectChoice(3 * 86400, "3 days"),
    SelectChoice(MAX_GRACE_SECONDS, "7 days"),
]


SCHEME_CHOICES = [
    SelectChoice(HMAC, "HMAC-SHA256 (v1, shared whsec_ secret)"),
    SelectChoice(ED25519, "Ed25519 (v1a, whpk_ public key)"),
]


class LoginForm(FlaskForm):
    """Email and password; every failure gets the same message."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=accounts.MAX_EMAIL_LENGTH)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=accounts.MAX_PASSWORD_LENGTH)]
    )


class EndpointForm(FlaskForm):
    """URL, description, custom headers and rate limit; the event picker is read from `events`
    directly. The rate limit's bounds are checked by the service (subscriptions.check_rate_limit);
    min/max here only help the browser's number input."""

    url = URLField("Endpoint URL", validators=[DataRequired(), Length(max=MAX_URL_LENGTH)])
    description = TextAreaField(
        "Description", validators=[Optional(), Length(max=subscriptions.MAX_DESCRIPTION)]
    )
    headers = TextAreaField(
        "Custom headers",
        validators=[Optional(), Length(max=MAX_TYPED_HEADERS)],
        description="One per line, as Name: value. Sent with every delivery.",
    )
    rate_limit = IntegerField(
        "Rate limit (deliveries per second)",
        validators=[Optional()],
        description=f"Optional, {MIN_RATE_LIMIT} to {MAX_RATE_LIMIT}: at most this many deliveries "
        "per second to this endpoint, across all workers. Leave empty for no limit.",
        render_kw={"min": MIN_RATE_LIMIT, "max": MAX_RATE_LIMIT, "step": 1, "inputmode": "numeric"},
    )
    data_filter = TextAreaField(
        "Data filter (optional)",
        validators=[Optional(), Length(max=MAX_TYPED_JSON)],
        description='A JSON object over the event data, like {"amount": {"$gte": 100}}. '
        "Only events it selects are sent. Leave empty to send every event of the chosen types.",
    )
    signature_scheme = SelectField(
        "Signature scheme",
        choices=SCHEME_CHOICES,
        default=HMAC,
        description="Ed25519 lets consumers verify with a public key that cannot forge "
        "deliveries. Changing it rotates the key; the old one signs on for 24 hours.",
    )


class FilterTryForm(FlaskForm):
    """A data filter and an example payload to try it on (nothing is saved)."""

    data_filter = TextAreaField("Data filter", validators=[Length(max=MAX_TYPED_JSON)])
    example = TextAreaField("Example data", validators=[Length(max=MAX_TYPED_JSON)])


class RotateForm(FlaskForm):
    """How long the current secret keeps signing after the new one takes over."""

    grace = SelectField(
        "Keep the current secret signing for",
        choices=GRACE_CHOICES,
        coerce=int,
        default=DEFAULT_GRACE_SECONDS,
    )


class TestEventForm(FlaskForm):
    """Which catalog type's example to send."""

    event_type = SelectField("Event type", default="webhook.test")

    def offer(self, types: list[EventType]) -> TestEventForm:
        """Offer the tenant's types, grouped like the catalog."""
        self.event_type.choices = [
            SelectChoice(t.name, t.name, optgroup=type_group_label(t.name)) for t in types
        ]
        return self


class RecoverForm(FlaskForm):
    """Re-send the endpoint's failed deliveries created since this moment (UTC)."""

    since = DateTimeLocalField(
        "Failed since (UTC)", format="%Y-%m-%dT%H:%M", validators=[DataRequired()]
    )


class ApiKeyForm(FlaskForm):
    """A name so the admin can tell keys apart later."""

    name = StringField(
        "Key name", validators=[DataRequired(), Length(max=accounts.MAX_NAME_LENGTH)]
    )


class CustomTypeForm(FlaskForm):
    """A tenant's own event type: `group.action`, a description, an example payload."""

    name = StringField("Name", validators=[DataRequired(), Length(max=event_types.MAX_NAME_LENGTH)])
    description = TextAreaField(
        "Description", validators=[Optional(), Length(max=event_types.MAX_DESCRIPTION)]
    )
    example = TextAreaField(
        "Example payload (JSON object)", validators=[Optional(), Length(max=MAX_TYPED_JSON)]
    )


def parse_headers(text: str | None) -> dict[str, str]:
    """Custom headers typed as `Name: value` lines; raises ValueError naming the bad line."""
    headers: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"line {number}: write each header as Name: value")
        name = name.strip()
        if name.lower() in {key.lower() for key in headers}:
            raise ValueError(f"line {number}: the {name} header is given twice")
        headers[name] = value.strip()
    return headers


def format_headers(headers: dict[str, str] | None) -> str:
    """The inverse of `parse_headers`, to fill the edit form."""
    return "\n".join(f"{name}: {value}" for name, value in (headers or {}).items())


def parse_json_object(text: str | None) -> dict[str, Any] | None:
    """An optional JSON object typed into a textarea; raises ValueError when it is not one."""
    if not text or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object, like {"id": 1}')
    return value
