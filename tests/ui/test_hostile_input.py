"""Hostile input through every portal form: a clear 400 naming what is wrong (or a harmless
success), never a 500, never a partial write."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TypeVar

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ApiKey, EventType, Subscription, User
from tests.factories import make_subscription
from tests.ui.conftest import csrf_token

HOSTILE = {
    "crlf": "line\r\nX-Injected: 1",
    "nul": "nul\x00byte",
    "unicode": "\u202eevil\u200b\ufeff𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "script": "<script>alert(1)</script>",
    "long": "x" * 100_000,
    "nested": '{"a":' * 5_000 + "1" + "}" * 5_000,  # deeply nested JSON, 50 kB
    "empty": "",
}


@dataclass(frozen=True)
class Refused:
    """400, the page shows `message` (when the form has one), nothing is written."""

    message: str = ""


@dataclass(frozen=True)
class Flashed:
    """A redirect to a page that shows `message` as a flash; nothing is written."""

    message: str


@dataclass(frozen=True)
class Saved:
    """Taken: a redirect (or, with `message`, a 200 page showing it) and a row written."""

    message: str = ""


Answer = Refused | Flashed | Saved
T = TypeVar("T")


def _answers(default: T, **by_kind: T) -> dict[str, T]:
    """The answer for each kind of hostile input: `default`, but for the kinds named."""
    return {kind: by_kind.get(kind, default) for kind in HOSTILE}


def _too_long(limit: int) -> Refused:
    return Refused(f"Field cannot be longer than {limit} characters.")


REQUIRED = Refused("This field is required.")
URL = _answers(
    Refused("the URL must start with https:// (or http:// in development)"),
    crlf=Refused("the URL contains whitespace or control characters"),
    nul=Refused("the URL contains whitespace or control characters"),
    long=_too_long(2048),
    nested=_too_long(2048),
    empty=REQUIRED,
)
ENDPOINT_FIELDS = {
    "url": URL,
    "description": _answers(
        Saved(),  # shown escaped, like any text
        nul=Refused("the description must not contain NUL characters"),
        long=_too_long(500),
        nested=_too_long(500),
    ),
    "headers": _answers(
        Refused("line 1: write each header as Name: value"),
        long=_too_long(25000),
        nested=_too_long(25000),
        empty=Saved(),
    ),
    "events": _answers(Refused("unknown event type")),
}
EVENT_TYPE_FIELDS = {
    "name": _answers(
        Refused("an event type name is lowercase words joined by dots, like 'order.shipped'"),
        long=_too_long(200),
        nested=_too_long(200),
        empty=REQUIRED,
    ),
    "description": _answers(
        Saved(),
        nul=Refused("the description must not contain NUL characters"),
        long=_too_long(1000),
        nested=_too_long(1000),
    ),
    "example": _answers(
        Refused("The example is not valid JSON"),
        long=_too_long(20000),
        nested=_too_long(20000),
        empty=Saved(),  # no example: the type's data is not described
    ),
}
API_KEY_NAME = _answers(
    Refused("the key name must not contain control characters"),
    nul=Refused("the key name must not contain NUL characters"),
    script=Saved("Copy it now."),  # the page with the new key, the name shown escaped
    long=_too_long(200),
    nested=_too_long(200),
    empty=REQUIRED,
)


def _counts() -> tuple[int, ...]:
    db.session.expire_all()
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Subscription, EventType, ApiKey, User)
    )


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _post(portal, path: str, fields: dict[str, str], htmx: bool, expected: Answer) -> None:
    """POST the form one way (a plain form post or htmx) and check the answer."""
    before = _counts()
    response = portal.post(path, data=fields, htmx=htmx)
    where = (path, fields, htmx, expected)
    if isinstance(expected, Refused):
        assert response.status_code == 400, where
        assert expected.message in _text(response), where
        assert _counts() == before, f"a refused {path} wrote something"
    elif isinstance(expected, Flashed):
        assert response.status_code == 302, where
        assert expected.message in _text(portal.get(response.headers["Location"])), where
        assert _counts() == before, f"a refused {path} wrote something"
    else:
        assert response.status_code == (200 if expected.message else 302), where
        assert expected.message in _text(response), where
        assert _counts() != before, f"{path} was taken but wrote nothing"


def _post_all_ways(portal, path: str, fields: dict[str, str], expected: Answer) -> None:
    for htmx in (False, True):
        _post(portal, path, fields, htmx, expected)


@pytest.mark.parametrize(("kind", "value"), HOSTILE.items(), ids=HOSTILE)
def test_endpoint_form_survives_hostile_input(portal, receiver, kind, value):
    for field, answers in ENDPOINT_FIELDS.items():
        fields = {"url": receiver.url(), "description": "d", "headers": "", "events": "*"}
        fields[field] = value
        _post_all_ways(portal, "/endpoints/new", fields, answers[kind])


@pytest.mark.parametrize(("kind", "value"), HOSTILE.items(), ids=HOSTILE)
def test_endpoint_actions_survive_hostile_input(portal, receiver, kind, value):
    sub, _ = make_subscription(portal.admin.tenant_id, receiver.url())
    _post_all_ways(portal, f"/endpoints/{sub.id}/edit", {"url": value, "events": "*"}, URL[kind])
    # The rotate and test buttons send a value from a fixed list: anything else is a bare 400.
    _post_all_ways(portal, f"/endpoints/{sub.id}/rotate", {"grace": value}, Refused())
    _post_all_ways(portal, f"/endpoints/{sub.id}/test", {"event_type": value}, Refused())
    recover = Flashed("Choose the time to recover from.")
    _post_all_ways(portal, f"/endpoints/{sub.id}/recover", {"since": value}, recover)
    db.session.expire_all()
    assert db.session.get(Subscription, sub.id).url == receiver.url()  # the edit changed nothing


@pytest.mark.parametrize(("kind", "value"), HOSTILE.items(), ids=HOSTILE)
def test_catalog_and_api_key_forms_survive_hostile_input(portal, kind, value):
    for field, answers in EVENT_TYPE_FIELDS.items():
        for htmx in (False, True):  # a name of its own each time: never refused as a duplicate
            name = f"order.{field}.{'htmx' if htmx else 'form'}"
            fields = {"name": name, "description": "", "example": "{}"}
            fields[field] = value
            _post(portal, "/event-types", fields, htmx, answers[kind])
    _post_all_ways(portal, "/api-keys", {"name": value}, API_KEY_NAME[kind])


LOGIN = _answers(  # (status, message): what the sign-in page answers
    (401, "That email and password do not match an account."),
    long=(400, "Field cannot be longer than 1024 characters."),  # the password's limit
    nested=(400, "Field cannot be longer than 1024 characters."),
    empty=(400, "This field is required."),
)


@pytest.mark.parametrize(("kind", "value"), HOSTILE.items(), ids=HOSTILE)
def test_login_survives_hostile_input(client, kind, value):
    status, message = LOGIN[kind]
    for email in (value, "admin@acme.test"):
        form = {"email": email, "password": value, "csrf_token": csrf_token(client, "/login")}
        response = client.post("/login", data=form)
        assert response.status_code == status, (email, value)
        assert message in _text(response), (email, value)


def test_hostile_ids_in_portal_urls_are_404s(portal):
    for path in ("/endpoints/%00", "/endpoints/sub_%0d%0aX", "/deliveries/" + "d" * 5000):
        assert portal.get(path).status_code == 404


def test_invalid_utf8_in_a_form_body_is_kept_escaped_not_a_crash(portal, receiver):
    token = csrf_token(portal.client, "/")
    body = (
        b"csrf_token="
        + token.encode()
        + b"&url=http%3A%2F%2F127.0.0.1%2F&events=*&description=%FF%FE"
    )
    response = portal.client.post(
        "/endpoints/new", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    (sub,) = db.session.scalars(select(Subscription)).all()
    assert sub.description == "%FF%FE"  # Werkzeug leaves escapes that are not UTF-8 as sent
