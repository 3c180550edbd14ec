"""Hostile query strings on every portal page: the page with a clear message, or a 400; never a
500 and never a traceback.

The pages come from the app's url_map (every GET route of the `ui` blueprint), and the
parameters from what each page's view actually reads from `request.args` (recorded while the
page renders), so a new page or a new filter is walked without editing this file.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask import Flask
from werkzeug.datastructures import ImmutableMultiDict

from portal.extensions import db
from portal.services import subscriptions as subscription_service
from tests.factories import make_subscription
from tests.ui.conftest import Portal, make_admin, sign_in

# Raw query-string values (already percent-encoded where they must be).
HOSTILE = {
    "nul": "%00",
    "nul-inside": "sub_01%00x",
    "invalid-utf8": "%FF",
    "invalid-utf8-pair": "%C3%28",
    "10kB": "x" * 10_240,
    "10kB-nul": "%00" * 3_500,
    "nonsense-date": "2025-13-45T25:61",
    "zero-date": "0000-00-00T00:00",
    "far-future": "99999-12-31T23:59",
    "year-9999": "9999-12-31T23:59",
    "negative": "-1",
    "huge-number": "9" * 400,
    "crlf": "a%0D%0AX-Injected:%201",
    "markup": quote("<script>alert(1)</script>"),
    "date-then-nul": "2025-09-30T12:00%00",
}
# Read by views only on some requests (the login form's `next` after a successful POST), or
# common enough that a page might start reading them.
ALWAYS = ("next", "limit", "cursor")


class _RecordingArgs(ImmutableMultiDict):
    """Query arguments that remember which names a view asked for."""

    seen: set[str] = set()

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None, type=None):
        self.seen.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):
        self.seen.add(key)
        return super().getlist(key, type)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


def portal_pages(app: Flask, ids: dict[str, str]) -> list[str]:
    """The path of every GET page of the portal, with its placeholders filled from `ids`."""
    paths = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("ui.") or "GET" not in rule.methods:
            continue
        if rule.endpoint == "ui.static":
            continue  # the portal's files (served by its blueprint), not pages
        if rule.endpoint == "ui.links.sign_in":
            continue  # single-use, so not walkable: see the test at the end of this file
        missing = rule.arguments - ids.keys()
        assert not missing, f"{rule.rule}: no test value for {sorted(missing)}; add one to ids"
        paths.append(rule.build({name: ids[name] for name in rule.arguments})[1])
    assert len(paths) >= 10, paths
    return paths


def _fixture_ids(tenant_id: str, receiver) -> dict[str, str]:
    subscription, _ = make_subscription(tenant_id, receiver.url())
    delivery = subscription_service.send_test(tenant_id, subscription.id, "webhook.test")
    db.session.commit()
    return {"subscription_id": subscription.id, "delivery_id": delivery.id}


def _params_read(client, path: str, htmx: bool) -> set[str]:
    _RecordingArgs.seen = set()
    client.get(path, headers={"HX-Request": "true"} if htmx else {})
    return set(_RecordingArgs.seen)


def _check(client, path: str, query: str, baseline: int, htmx: bool) -> None:
    response = client.get(f"{path}?{query}", headers={"HX-Request": "true"} if htmx else {})
    body = response.get_data(as_text=True)
    where = f"GET {path}?{query[:80]} (htmx={htmx})"
    assert response.status_code in {baseline, 200, 400}, (where, response.status_code)
    assert "Traceback" not in body and "Internal Server Error" not in body, where


def _walk(app: Flask, client, ids: dict[str, str], signed_in: bool = True) -> int:
    # The app's own request class (htmx-flask's), reading its query into recording arguments.
    app.request_class = type(
        "RecordingRequest", (app.request_class,), {"parameter_storage_class": _RecordingArgs}
    )
    checked = 0
    for path in portal_pages(app, ids):
        for htmx in (False, True):
            baseline = client.get(path, headers={"HX-Request": "true"} if htmx else {})
            # Signed out, an HTMX request is told to go to the login page with a 401.
            usable = baseline.status_code < 400 or (baseline.status_code == 401 and not signed_in)
            assert usable, (path, baseline.status_code)
            names = _params_read(client, path, htmx) | set(ALWAYS)
            for value in HOSTILE.values():
                for name in sorted(names):
                    _check(client, path, f"{name}={value}", baseline.status_code, htmx)
                    checked += 1
                everything = "&".join(f"{name}={value}" for name in sorted(names))
                _check(client, path, everything, baseline.status_code, htmx)
                repeated = "&".join(f"{name}=1&{name}={value}" for name in sorted(names))
                _check(client, path, repeated, baseline.status_code, htmx)
    return checked


@pytest.fixture
def portal(client) -> Portal:
    """A signed-in admin's client."""
    admin = make_admin()
    assert sign_in(client, admin).status_code == 302
    return Portal(client, admin)


def test_every_portal_page_survives_hostile_query_strings(app, client, receiver) -> None:
    admin = make_admin()
    ids = _fixture_ids(admin.tenant_id, receiver)
    assert sign_in(client, admin).status_code == 302

    checked = _walk(app, client, ids)

    assert checked > 500


def test_signed_out_pages_survive_hostile_query_strings(app, client, receiver) -> None:
    admin = make_admin()
    ids = _fixture_ids(admin.tenant_id, receiver)

    # Every page sends a signed-out visitor to the login page, which carries the query along.
    assert _walk(app, client, ids, signed_in=False) > 100


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("endpoint_id=%00", "subscription_id must not contain NUL characters"),
        ("event_type=%00", "event_type must not contain NUL characters"),
        ("cursor=%00", "cursor is not valid"),
        ("status=%00", "status must be one of"),
        ("since=2025-13-45T25:61", "From must be a date and time"),
        ("until=99999-12-31T23:59", "To must be a date and time"),
        ("event_type=" + "x" * 10_240, "event_type must be at most 200 characters"),
        ("since=9999-12-31T23:59", "From must be between 1970 and 9998"),
        ("endpoint_id=a%0D%0Ab", "subscription_id must not contain control characters"),
    ],
)
def test_delivery_log_explains_a_bad_filter(portal, query: str, message: str) -> None:
    response = portal.get(f"/deliveries?{query}")

    assert response.status_code == 200  # the log, with the message in place of results
    assert message in response.get_data(as_text=True)


def test_endpoint_list_explains_a_bad_cursor(portal) -> None:
    response = portal.get("/endpoints?cursor=%00")

    assert response.status_code == 400
    assert "cursor is not valid" in response.get_data(as_text=True)


def test_catalog_explains_an_unusable_search(portal) -> None:
    response = portal.get("/event-types?q=%00")

    assert response.status_code == 400
    assert "search must not contain" in response.get_data(as_text=True)


def test_sign_in_link_ignores_hostile_query_strings(app, client) -> None:
    from portal.services import operator as operator_service
    from tests.factories import make_tenant

    tenant = make_tenant("Acme")
    for value in HOSTILE.values():
        query = "&".join(f"{name}={value}" for name in (*ALWAYS, "token"))
        unknown = client.get(f"/sign-in/not-a-token-{'x' * 20}?{query}")
        assert unknown.status_code == 400, value
        _, token = operator_service.mint_link(tenant.id)
        db.session.commit()
        response = client.get(f"/sign-in/{token}?{query}")
        assert response.status_code == 302 and response.headers["Location"] == "/", value
