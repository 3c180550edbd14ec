"""The portal shows endpoint health (as dispatcher.health derives it) and sets the rate limit.

Health columns are written straight onto the row, standing in for the delivery engine.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dispatcher.throttle import MAX_RATE_LIMIT, MIN_RATE_LIMIT
from portal.extensions import db
from portal.models import Subscription
from portal.ui.formatting import format_time
from tests.factories import make_subscription, set_health
from tests.ui.conftest import Portal, make_admin, sign_in

HOSTILE_ERROR = "<img src=x onerror=alert(1)> HTTP 500"


def _page(portal: Portal, path: str) -> str:
    response = portal.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def _health_card(page: str) -> str:
    start = page.index('aria-labelledby="health-title"')
    return page[start : page.index("</section>", start)]


def _fact(card: str, label: str) -> str:
    match = re.search(rf"<dt>{label}</dt><dd[^>]*>(.*?)</dd>", card, flags=re.S)
    assert match, f"no {label!r} on the health card"
    return match.group(1)


def _field_block(page: str, field_id: str) -> str:
    """The `.field` div that holds the input with `field_id`."""
    at = page.index(f'id="{field_id}"')
    start = page.rindex('<div class="field', 0, at)
    return page[start : page.index("</div>", at)]


def _rate_limit(subscription_id: str) -> int | None:
    db.session.expire_all()
    return db.session.get(Subscription, subscription_id).rate_limit


def _failing(tenant_id: str, url: str, clock, **extra) -> Subscription:
    sub, _ = make_subscription(tenant_id, url)
    columns = {
        "consecutive_failures": 6,
        "circuit_opened_at": clock.now() - timedelta(minutes=10),
        "paused_until": clock.now() + timedelta(seconds=40),
        "pause_seconds": 40,
        "last_error": HOSTILE_ERROR,
        **extra,
    }
    return set_health(sub.id, **columns)


def _throttled(tenant_id: str, url: str, clock) -> Subscription:
    sub, _ = make_subscription(tenant_id, url)
    return set_health(
        sub.id,
        consecutive_failures=1,
        paused_until=clock.now() + timedelta(minutes=2),
        last_error="HTTP 429 Too Many Requests",
    )


# --- endpoint page ------------------------------------------------------------------------------


def test_endpoint_page_shows_a_failing_endpoint_with_since_pause_failures_and_error(
    portal, receiver, clock
):
    sub = _failing(portal.admin.tenant_id, receiver.url("/down"), clock)
    page = _page(portal, f"/endpoints/{sub.id}")
    card = _health_card(page)
    assert '<span class="badge badge-failing">failing</span>' in card
    assert '<span class="badge badge-failing">failing</span>' in page[: page.index("<section")]
    assert format_time(sub.circuit_opened_at) in _fact(card, "Failing since")
    assert "10 min ago" in _fact(card, "Failing since")
    assert format_time(sub.paused_until) in _fact(card, "Paused until")
    assert _fact(card, "Consecutive failures") == "6"
    assert "circuit breaker is open after 6 failed attempts in a row" in card


def test_endpoint_page_escapes_the_last_error(portal, receiver, clock):
    sub = _failing(portal.admin.tenant_id, receiver.url("/down"), clock)
    page = _page(portal, f"/endpoints/{sub.id}")
    assert HOSTILE_ERROR not in page
    assert _fact(_health_card(page), "Last error") == html.escape(HOSTILE_ERROR, quote=True)


def test_endpoint_page_shows_a_throttled_endpoint_paused_until(portal, receiver, clock):
    sub = _throttled(portal.admin.tenant_id, receiver.url("/busy"), clock)
    card = _health_card(_page(portal, f"/endpoints/{sub.id}"))
    assert '<span class="badge badge-throttled">throttled</span>' in card
    assert format_time(sub.paused_until) in _fact(card, "Paused until")
    assert "in 2 min" in _fact(card, "Paused until")
    assert _fact(card, "Failing since") == "—"
    assert _fact(card, "Last error") == "HTTP 429 Too Many Requests"
    assert "Retry-After" in card


def test_endpoint_page_of_a_healthy_endpoint_says_so_and_shows_no_limit(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    card = _health_card(_page(portal, f"/endpoints/{sub.id}"))
    assert '<span class="badge badge-healthy">healthy</span>' in card
    assert "Deliveries flow normally." in card
    assert _fact(card, "Consecutive failures") == "0"
    assert _fact(card, "Paused until") == "—"
    assert _fact(card, "Rate limit") == "No limit"


def test_a_pause_that_is_over_shows_healthy_again(portal, receiver, clock):
    sub = _throttled(portal.admin.tenant_id, receiver.url("/busy"), clock)
    clock.advance(minutes=3)
    card = _health_card(_page(portal, f"/endpoints/{sub.id}"))
    assert '<span class="badge badge-healthy">healthy</span>' in card
    assert _fact(card, "Paused until") == "—"


def test_endpoint_page_shows_the_rate_limit(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url(), rate_limit=15)
    card = _health_card(_page(portal, f"/endpoints/{sub.id}"))
    assert _fact(card, "Rate limit") == "15 per second, across all workers"


# --- endpoints list and dashboard ---------------------------------------------------------------


def test_endpoint_list_badges_each_health_state_and_disabled(portal, receiver, clock):
    tenant_id = portal.admin.tenant_id
    healthy, _ = make_subscription(tenant_id, receiver.url("/ok"))
    failing = _failing(tenant_id, receiver.url("/down"), clock)
    throttled = _throttled(tenant_id, receiver.url("/busy"), clock)
    disabled = _failing(tenant_id, receiver.url("/off"), clock)
    portal.post(f"/endpoints/{disabled.id}/disable")
    page = _page(portal, "/endpoints")

    def badge_of(sub: Subscription) -> str:
        row = page[page.index(f'href="/endpoints/{sub.id}"') :]
        return re.search(r'<span class="badge badge-(\w+)">', row).group(1)

    assert badge_of(healthy) == "healthy"
    assert badge_of(failing) == "failing"
    assert badge_of(throttled) == "throttled"
    assert badge_of(disabled) == "disabled"


def test_dashboard_lists_failing_then_throttled_endpoints_and_not_healthy_ones(
    portal, receiver, clock
):
    tenant_id = portal.admin.tenant_id
    healthy, _ = make_subscription(tenant_id, receiver.url("/ok"))
    recovered = _throttled(tenant_id, receiver.url("/was-busy"), clock)
    set_health(recovered.id, paused_until=clock.now() - timedelta(seconds=1))
    throttled = _throttled(tenant_id, receiver.url("/busy"), clock)
    failing = _failing(tenant_id, receiver.url("/down"), clock)
    page = _page(portal, "/")
    card = page[page.index("<h2>Failing and throttled endpoints</h2>") :]
    card = card[: card.index("</section>")]
    assert card.index(f"/endpoints/{failing.id}") < card.index(f"/endpoints/{throttled.id}")
    assert f"/endpoints/{healthy.id}" not in card
    assert f"/endpoints/{recovered.id}" not in card
    assert f"failing since {format_time(failing.circuit_opened_at, False)}" in card
    assert "6 failures in a row" in card
    assert f"paused until {format_time(throttled.paused_until)}" in card
    assert html.escape(HOSTILE_ERROR, quote=True) in card and HOSTILE_ERROR not in page
    assert "1 failing · 1 throttled · 0 disabled" in page


def test_dashboard_lists_a_disabled_failing_endpoint_only_as_disabled(portal, receiver, clock):
    sub = _failing(portal.admin.tenant_id, receiver.url("/down"), clock)
    portal.post(f"/endpoints/{sub.id}/disable")
    page = _page(portal, "/")
    assert "Nothing is failing or throttled." in page
    assert "0 failing · 0 throttled · 1 disabled" in page


def test_dashboard_never_lists_another_tenants_unhealthy_endpoints(portal, receiver, clock):
    other = make_admin("Other", "other@b.test")
    theirs = _failing(other.tenant_id, receiver.url("/theirs"), clock)
    page = _page(portal, "/")
    assert theirs.id not in page
    assert "Nothing is failing or throttled." in page


# --- the rate limit in the form -----------------------------------------------------------------


def test_new_endpoint_form_offers_an_optional_rate_limit(portal):
    page = _page(portal, "/endpoints/new")
    block = _field_block(page, "rate_limit")
    assert '<label for="rate_limit">Rate limit (deliveries per second)</label>' in block
    assert 'type="number"' in block
    assert f'min="{MIN_RATE_LIMIT}"' in block and f'max="{MAX_RATE_LIMIT}"' in block
    assert "Leave empty for no limit" in block


def test_create_with_a_rate_limit_saves_it_and_empty_means_none(portal, receiver):
    response = portal.post(
        "/endpoints/new", {"url": receiver.url("/a"), "events": ["*"], "rate_limit": "25"}
    )
    assert response.status_code == 302
    limited = db.session.scalar(select(Subscription).where(Subscription.rate_limit.is_not(None)))
    assert limited.rate_limit == 25
    response = portal.post(
        "/endpoints/new", {"url": receiver.url("/b"), "events": ["*"], "rate_limit": ""}
    )
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).where(Subscription.rate_limit.is_(None))) == 1


def test_edit_prefills_changes_and_clears_the_rate_limit(portal, receiver):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url(), rate_limit=40)
    form = _page(portal, f"/endpoints/{sub.id}/edit")
    assert 'value="40"' in _field_block(form, "rate_limit")
    data = {"url": receiver.url(), "events": ["*"]}
    assert portal.post(f"/endpoints/{sub.id}/edit", {**data, "rate_limit": "7"}).status_code == 302
    assert _rate_limit(sub.id) == 7
    assert portal.post(f"/endpoints/{sub.id}/edit", {**data, "rate_limit": ""}).status_code == 302
    assert _rate_limit(sub.id) is None


BAD_FORM_VALUES = [
    ("0", "between 1 and 10000 deliveries per second"),
    ("-3", "between 1 and 10000 deliveries per second"),
    (str(MAX_RATE_LIMIT + 1), "between 1 and 10000 deliveries per second"),
    ("99999999999999999999999", "between 1 and 10000 deliveries per second"),
    ("9" * 5000, "Not a valid integer value."),
    ("1.5", "Not a valid integer value."),
    ("fast", "Not a valid integer value."),
]


@pytest.mark.parametrize(("typed", "message"), BAD_FORM_VALUES, ids=lambda v: v[:12])
def test_new_endpoint_form_refuses_a_bad_rate_limit_beside_the_field(
    portal, receiver, typed, message
):
    response = portal.post(
        "/endpoints/new", {"url": receiver.url(), "events": ["*"], "rate_limit": typed}
    )
    assert response.status_code == 400
    block = _field_block(response.get_data(as_text=True), "rate_limit")
    assert 'class="field has-error"' in block
    assert message in block
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


@pytest.mark.parametrize(("typed", "message"), BAD_FORM_VALUES, ids=lambda v: v[:12])
def test_edit_form_refuses_a_bad_rate_limit_and_changes_nothing(portal, receiver, typed, message):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url("/a"), rate_limit=40)
    response = portal.post(
        f"/endpoints/{sub.id}/edit",
        {"url": receiver.url("/changed"), "events": ["*"], "rate_limit": typed},
    )
    assert response.status_code == 400
    assert message in _field_block(response.get_data(as_text=True), "rate_limit")
    db.session.expire_all()
    stored = db.session.get(Subscription, sub.id)
    assert (stored.url, stored.rate_limit) == (receiver.url("/a"), 40)


def test_another_tenants_endpoint_is_404_for_the_rate_limit_and_health(app, client, receiver):
    owner = make_admin("Owner", "owner@a.test")
    sub, _ = make_subscription(owner.tenant_id, receiver.url(), rate_limit=40)
    intruder = make_admin("Intruder", "intruder@b.test")
    sign_in(client, intruder)
    portal = Portal(client, intruder)
    assert portal.get(f"/endpoints/{sub.id}").status_code == 404
    response = portal.post(
        f"/endpoints/{sub.id}/edit",
        {"url": receiver.url(), "events": ["*"], "rate_limit": "1"},
    )
    assert response.status_code == 404
    assert _rate_limit(sub.id) == 40
