"""Portal: the endpoint form takes a data filter (a form error names the bad part) and a
signature scheme, the filter can be tried in place with HTMX, and an ed25519 endpoint's page
shows its public key and its verification snippets."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Subscription
from portal.services import subscriptions as service


def _new(portal, **fields):
    return portal.post(
        "/endpoints/new",
        data={"url": "http://127.0.0.1:9/hook", "events": ["invoice.paid"], **fields},
    )


def test_create_with_a_filter_and_ed25519_shows_the_public_key(portal):
    response = _new(portal, signature_scheme="ed25519", data_filter='{"amount_due": {"$gte": 1}}')
    assert response.status_code == 302, response.get_data(as_text=True)
    sub = db.session.scalars(select(Subscription)).one()
    assert sub.data_filter == {"amount_due": {"$gte": 1}}
    assert sub.signature_scheme == "ed25519"

    page = portal.get(response.headers["Location"]).get_data(as_text=True)
    assert service.public_key(sub) in page
    assert "Ed25519PublicKey" in page and "v1a" in page  # the ed25519 snippets
    assert "$gte" in page  # the filter is shown


def test_edit_keeps_and_changes_the_filter(portal):
    response = _new(portal, signature_scheme="hmac", data_filter='{"a": 1}')
    sub_id = response.headers["Location"].rsplit("/", 1)[-1]
    form = portal.get(f"/endpoints/{sub_id}/edit").get_data(as_text=True)
    assert "&#34;a&#34;: 1" in form or '"a": 1' in form
    response = portal.post(
        f"/endpoints/{sub_id}/edit",
        data={
            "url": "http://127.0.0.1:9/hook",
            "events": ["invoice.paid"],
            "signature_scheme": "hmac",
            "data_filter": "",
        },
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Subscription, sub_id).data_filter is None


def test_a_bad_filter_is_a_form_error_naming_the_part(portal):
    response = _new(
        portal, signature_scheme="hmac", data_filter='{"$or": [{"amount": {"$gt": "x"}}]}'
    )
    assert response.status_code == 400
    assert "data_filter.$or[0].amount.$gt: expected a number" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_try_filter_answers_in_place(portal):
    def attempt(spec: str, example: str) -> str:
        response = portal.post(
            "/endpoints/try-filter", data={"data_filter": spec, "example": example}, htmx=True
        )
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "Matches" in attempt('{"a": {"$in": [1, 2]}}', '{"a": 2}')
    assert "No match" in attempt('{"a": {"$in": [1, 2]}}', '{"a": 3}')
    assert "data_filter.a.$in" in attempt('{"a": {"$in": 1}}', "{}")
    assert "Not a JSON object" in attempt("[1]", "{}")
