"""Endpoints (subscriptions): their rules, shared by the portal, the API and the CLI.

One concept, two names: the model and the JSON API say `Subscription` (`sub_…` ids, the
`/subscriptions` routes, `subscription_id` fields: a published contract), the portal says
"endpoint" to people (DESIGN.md), and so do its URLs and the operational `endpoint.*` events.
Code names a row `subscription`; "endpoint" in code means what the portal shows. A
subscription's `events` is its *event filter*: the type names, `group.*` wildcards or `*` it
receives (dispatcher.filters.matches); `data_filter` narrows that by the event's data.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm.attributes import flag_modified

from dispatcher import actions, clock, lifecycle, notices, signing
from dispatcher.errors import InvalidSecret, TargetRefused, UnknownEventType
from dispatcher.filters import FilterError, compile_filter
from dispatcher.health import EndpointHealth, describe
from dispatcher.message import is_reserved_header
from dispatcher.settings import get_settings
from dispatcher.ssrf import check_target
from dispatcher.store import db
from dispatcher.throttle import MAX_RATE_LIMIT, MIN_RATE_LIMIT
from portal.catalog import group_of
from portal.models import Delivery, Subscription
from portal.services import ServiceError, find_owned
from portal.services.event_types import known_names
from portal.services.paging import Page, fetch_page

# The API's schemas and the portal's form take their limits from these; the URL's is the SSRF
# check's (dispatcher.ssrf.MAX_URL_LENGTH), which applies again at delivery.
MAX_HEADERS = 20
MAX_HEADER_NAME = 100
MAX_HEADER_VALUE = 1000
MAX_DESCRIPTION = 500
MAX_FILTER_ENTRIES = 500
_TOKEN = re.compile(rf"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{{1,{MAX_HEADER_NAME}}}$")


def check_url(url: Any) -> str:
    """The URL, if Hookline may send to it under the current settings."""
    if not isinstance(url, str):
        raise ServiceError("the URL must be a string", field="url")
    try:
        check_target(
            url.strip(),
            allow_private=get_settings().allow_private_targets,
            https_only=get_settings().https_only,
        )
    except TargetRefused as exc:
        raise ServiceError(str(exc), field="url", code="url_refused") from None
    return url.strip()


def check_filter(tenant_id: str, events: Any) -> list[str]:
    """An event filter: known type names, `group.*` for a known group, or `*`."""
    if not isinstance(events, list) or not events:
        raise ServiceError("choose at least one event type (or '*' for all)", field="events")
    if len(events) > MAX_FILTER_ENTRIES:
        raise ServiceError(f"at most {MAX_FILTER_ENTRIES} event types", field="events")
    names = known_names(tenant_id)
    groups = {group_of(name) for name in names}
    cleaned: list[str] = []
    for entry in events:
        if not isinstance(entry, str):
            raise ServiceError("event types must be strings", field="events")
        entry = entry.strip()
        valid = entry == "*" or entry in names or (entry.endswith(".*") and entry[:-2] in groups)
        if not valid:
            raise ServiceError(f"unknown event type {entry!r}", field="events")
        if entry not in cleaned:
            cleaned.append(entry)
    return cleaned


def check_headers(headers: Any) -> dict[str, str]:
    """Custom headers: valid names and values, none that Hookline sets itself."""
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise ServiceError("headers must be an object of name: value", field="headers")
    if len(headers) > MAX_HEADERS:
        raise ServiceError(f"at most {MAX_HEADERS} custom headers", field="headers")
    cleaned: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ServiceError(f"{name!r} is not a valid header name", field="headers")
        if is_reserved_header(name):
            raise ServiceError(f"the {name} header is set by Hookline", field="headers")
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
            raise ServiceError(
                f"the value of {name} must be text of at most {MAX_HEADER_VALUE} characters",
                field="headers",
            )
        if any(ch in value for ch in "\r\n\0") or any(ord(ch) < 32 and ch != "\t" for ch in value):
            raise ServiceError(
                f"the value of {name} must not contain line breaks or control characters",
                field="headers",
            )
        if name.lower() in {key.lower() for key in cleaned}:
            raise ServiceError(f"the {name} header is given twice", field="headers")
        cleaned[name] = value
    return cleaned


def check_description(description: Any) -> str:
    """A short free-text description."""
    if description is None:
        return ""
    if isinstance(description, str) and "\x00" in description:
        raise ServiceError("the description must not contain NUL characters", field="description")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise ServiceError(
            f"the description must be text of at most {MAX_DESCRIPTION} characters",
            field="description",
        )
    return description.strip()


def check_rate_limit(rate_limit: Any) -> int | None:
    """Deliveries per second across every worker, within the throttle's bounds; None for no
    limit. Whole numbers only: a bool or "5" is a client's mistake, not something to guess at."""
    if rate_limit is None:
        return None
    bounds = f"between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT} deliveries per second"
    if isinstance(rate_limit, bool) or not isinstance(rate_limit, int):
        raise ServiceError(
            f"the rate limit must be a whole number {bounds}, or null for no limit",
            field="rate_limit",
        )
    if not MIN_RATE_LIMIT <= rate_limit <= MAX_RATE_LIMIT:
        raise ServiceError(f"the rate limit must be {bounds}", field="rate_limit")
    return rate_limit


def check_data_filter(spec: Any) -> dict[str, Any] | None:
    """A filter on the event data (grammar and limits in dispatcher/filters.py), or None for
    none; the error names the part at fault, like `data_filter.$or[1].amount.$gte`."""
    if spec is None:
        return None
    try:
        compile_filter(spec)
    except FilterError as exc:
        where = _join_where(exc.where)
        raise ServiceError(f"{where}: {exc.problem}", field="data_filter") from None
    return spec


def _join_where(where: str) -> str:
    if not where:
        return "data_filter"
    return f"data_filter{where}" if where.startswith("[") else f"data_filter.{where}"


def try_data_filter(spec: Any, data: Any) -> bool:
    """Whether `spec` would select an event carrying `data` (the portal's and the API's "try
    it"); the filter is checked exactly as when it is saved."""
    if spec is None:
        raise ServiceError("give a filter to try", field="data_filter")
    check_data_filter(spec)
    if not isinstance(data, dict):
        raise ServiceError("the example data must be a JSON object", field="data")
    return compile_filter(spec)(data)


def check_signature_scheme(scheme: Any) -> str:
    """`hmac` (the default) or `ed25519`."""
    if scheme is None:
        return signing.HMAC
    if scheme not in signing.SCHEMES:
        raise ServiceError(
            f"the signature scheme must be one of {', '.join(signing.SCHEMES)}",
            field="signature_scheme",
        )
    return scheme


def _check_secret(secret: Any, scheme: str) -> str:
    if secret is None:
        return signing.generate_key(scheme)
    try:
        return signing.check_key(secret, scheme)
    except InvalidSecret as exc:
        raise ServiceError(str(exc), field="secret") from None


def public_key(subscription: Subscription) -> str | None:
    """The `whpk_` key that verifies an ed25519 endpoint's deliveries (None for hmac)."""
    if subscription.signature_scheme != signing.ED25519:
        return None
    primary = signing.decrypt_secrets(subscription.secrets_encrypted)[0].secret
    return signing.public_key(primary) if signing.is_ed25519(primary) else None


def get(tenant_id: str, subscription_id: str) -> Subscription:
    """The tenant's subscription, or NotFound (also for another tenant's id)."""
    return find_owned(Subscription, tenant_id, subscription_id, "endpoint")


def health(subscription: Subscription, now: datetime | None = None) -> EndpointHealth:
    """The endpoint's health as the dispatcher derives it (dispatcher.health.describe is the one
    place that does; the portal and the API only show it)."""
    return describe(subscription, now)


def list_subscriptions(
    tenant_id: str, limit: int | None = None, cursor: str | None = None
) -> Page[Subscription]:
    """The tenant's subscriptions, newest first; ServiceError (`field`) for a bad limit or
    cursor (services.paging: the same rule on the API and the portal)."""
    query = select(Subscription).where(Subscription.tenant_id == tenant_id)
    return fetch_page(query, Subscription.id, limit, cursor)


def create(
    tenant_id: str,
    *,
    url: Any,
    events: Any,
    description: Any = None,
    headers: Any = None,
    secret: Any = None,
    rate_limit: Any = None,
    data_filter: Any = None,
    signature_scheme: Any = None,
) -> tuple[Subscription, str]:
    """A new endpoint and the key its consumer verifies with (returned this once; revealable
    later): the `whsec_` secret, or for ed25519 the `whpk_` public key (the private key stays)."""
    scheme = check_signature_scheme(signature_scheme)
    subscription = Subscription(
        tenant_id=tenant_id,
        url=check_url(url),
        events=check_filter(tenant_id, events),
        description=check_description(description),
        headers=check_headers(headers),
        rate_limit=check_rate_limit(rate_limit),
        data_filter=check_data_filter(data_filter),
        signature_scheme=scheme,
    )
    plain = _check_secret(secret, scheme)
    subscription.secrets_encrypted = signing.encrypt_secrets([signing.StoredSecret(plain)])
    db.session.add(subscription)
    db.session.flush()
    notices.created(subscription)
    return subscription, signing.verification_key(plain)


def update(tenant_id: str, subscription_id: str, changes: dict[str, Any]) -> Subscription:
    """Change url, events, description, headers, rate_limit (None removes it), data_filter
    (None removes it), signature_scheme or is_active; each is checked like at create.

    A new signature scheme is a rotation: a key of the new scheme becomes primary and the old
    key keeps signing for the default grace period. `endpoint.updated` names what changed
    (enabling and disabling have events of their own)."""
    subscription = get(tenant_id, subscription_id)
    checks = {
        "url": check_url,
        "events": lambda value: check_filter(tenant_id, value),
        "description": check_description,
        "headers": check_headers,
        "rate_limit": check_rate_limit,
        "data_filter": check_data_filter,
    }
    changed: list[str] = []
    for name, check in checks.items():
        if name in changes:
            value = check(changes[name])
            if not _same(getattr(subscription, name), value):
                setattr(subscription, name, value)
                flag_modified(subscription, name)  # the ORM's own check has the same blind spot
                changed.append(name)
    if "signature_scheme" in changes:
        scheme = check_signature_scheme(changes["signature_scheme"])
        if scheme != subscription.signature_scheme:
            _rotate(subscription, scheme, signing.DEFAULT_GRACE)
            changed.append("signature_scheme")
    if "is_active" in changes:
        if not isinstance(changes["is_active"], bool):
            raise ServiceError("is_active must be true or false", field="is_active")
        set_active(tenant_id, subscription_id, changes["is_active"])
    subscription.updated_at = clock.now()
    db.session.flush()
    if changed:
        notices.updated(subscription, changed)
    return subscription


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON: Python finds {"x": 1} == {"x": True}, but they are different filters."""
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def set_active(tenant_id: str, subscription_id: str, active: bool) -> Subscription:
    """Enable or disable an endpoint by hand (disabling cancels what waits for it)."""
    subscription = get(tenant_id, subscription_id)
    if active and not subscription.is_active:
        lifecycle.enable(subscription)
    elif not active and subscription.is_active:
        lifecycle.disable(subscription, "Disabled by an admin.")
    db.session.flush()
    return subscription


def delete(tenant_id: str, subscription_id: str) -> None:
    """Delete an endpoint with its delivery history (its `endpoint.deleted` goes to the
    tenant's other endpoints)."""
    subscription = get(tenant_id, subscription_id)
    notices.deleted(subscription)
    db.session.delete(subscription)
    db.session.flush()


def reveal_secret(tenant_id: str, subscription_id: str) -> str:
    """What the consumer verifies with: the primary `whsec_` secret, or for ed25519 the
    primary key's `whpk_` public key (the private key never leaves Hookline)."""
    subscription = get(tenant_id, subscription_id)
    primary = signing.decrypt_secrets(subscription.secrets_encrypted)[0].secret
    return signing.verification_key(primary)


def rotate_secret(
    tenant_id: str, subscription_id: str, grace_seconds: Any = None
) -> tuple[str, datetime | None]:
    """Make a new primary key of the endpoint's scheme; the old one keeps signing for the grace
    period (signing.DEFAULT_GRACE unless given; 0–7 days). Returns what the consumer now
    verifies with (see `reveal_secret`) and when the previous key stops signing."""
    subscription = get(tenant_id, subscription_id)
    grace = _check_grace(grace_seconds)
    new_secret, previous = _rotate(subscription, subscription.signature_scheme, grace)
    return signing.verification_key(new_secret), previous


def _check_grace(grace_seconds: Any) -> timedelta:
    if grace_seconds is None:
        return signing.DEFAULT_GRACE
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int):
        raise ServiceError(
            "grace_period_seconds must be a whole number", field="grace_period_seconds"
        )
    if not 0 <= grace_seconds <= signing.MAX_GRACE_SECONDS:
        raise ServiceError(
            f"grace_period_seconds must be {signing.GRACE_BOUNDS_TEXT}",
            field="grace_period_seconds",
        )
    return timedelta(seconds=grace_seconds)


def _rotate(
    subscription: Subscription, scheme: str, grace: timedelta
) -> tuple[str, datetime | None]:
    """A new primary key of `scheme`; the old keys sign on for `grace`, each in its own scheme."""
    now = clock.now()
    new_secret = signing.generate_key(scheme)
    stored = signing.rotated(
        signing.decrypt_secrets(subscription.secrets_encrypted), new_secret, grace, now
    )
    subscription.secrets_encrypted = signing.encrypt_secrets(stored)
    subscription.signature_scheme = scheme
    subscription.updated_at = now
    db.session.flush()
    previous = stored[1].expires_at if len(stored) > 1 else None
    notices.secret_rotated(subscription, previous)
    return new_secret, previous


def send_test(tenant_id: str, subscription_id: str, event_type: Any = None) -> Delivery:
    """Queue a test event for one endpoint (see dispatcher.actions.send_test)."""
    subscription = get(tenant_id, subscription_id)
    if not subscription.is_active:
        raise ServiceError(
            "the endpoint is disabled; enable it to send a test event", code="endpoint_disabled"
        )
    if event_type is not None and not isinstance(event_type, str):
        raise ServiceError("event_type must be a string", field="event_type")
    try:
        return actions.send_test(subscription, event_type)
    except UnknownEventType as exc:
        raise ServiceError(str(exc), field="event_type") from None


def recover(
    tenant_id: str, subscription_id: str, since: datetime, until: datetime | None = None
) -> int:
    """Re-send the endpoint's failed deliveries created since `since`."""
    subscription = get(tenant_id, subscription_id)
    if since.tzinfo is None:
        raise ServiceError("since must include a time zone", field="since")
    return actions.recover(subscription, since, until)
