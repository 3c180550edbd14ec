"""SSRF guard: refused at create and update, checked again at delivery, address pinned."""

from __future__ import annotations

import socket

import pytest

from dispatcher import publish
from dispatcher.errors import TargetRefused
from dispatcher.ssrf import check_target
from portal.extensions import db
from portal.services import ServiceError
from portal.services import subscriptions as service
from tests.dispatcher.helpers import attempts_of, only_delivery
from tests.factories import make_subscription, make_tenant
from tests.support import configure

NON_PUBLIC = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://localhost/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://[fc00::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://good@127.0.0.1/",
    "http://255.255.255.255/",
]
BAD_SCHEMES = ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)"]


@pytest.mark.parametrize("url", NON_PUBLIC)
def test_non_public_targets_are_refused(url):
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=False, https_only=False)


@pytest.mark.parametrize("url", BAD_SCHEMES)
def test_non_http_schemes_are_refused_even_when_private_targets_are_allowed(url):
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=True, https_only=False)


def test_a_name_resolving_to_loopback_is_refused(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "rebind.example.test":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.1"):
        check_target("https://rebind.example.test/hook", allow_private=False, https_only=True)


def test_https_only_refuses_plain_http():
    with pytest.raises(TargetRefused, match="https"):
        check_target("http://127.0.0.1/", allow_private=True, https_only=True)


def test_create_and_update_refuse_private_targets_when_not_allowed(app, receiver):
    tenant = make_tenant()
    sub, _ = make_subscription(tenant.id, receiver.url())
    configure(app, HOOKLINE_ALLOW_PRIVATE_TARGETS=False)
    with pytest.raises(ServiceError) as refused:
        service.create(tenant.id, url="http://10.0.0.5/hook", events=["*"])
    assert refused.value.field == "url"
    with pytest.raises(ServiceError):
        service.update(tenant.id, sub.id, {"url": "http://169.254.169.254/"})


def test_delivery_time_check_refuses_a_target_that_became_private(app, receiver, run_worker):
    tenant = make_tenant()
    make_subscription(tenant.id, receiver.url())
    configure(app, HOOKLINE_ALLOW_PRIVATE_TARGETS=False)
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    assert receiver.received() == []
    (attempt,) = attempts_of(only_delivery().id)
    assert attempt.response_status is None
    assert "refused before sending" in attempt.error


def test_delivery_connects_to_the_checked_address_and_sends_the_real_host(
    app, receiver, run_worker, monkeypatch
):
    """DNS pinning: the name is resolved once, checked, and that very address is dialled."""
    port = receiver.server.server_address[1]
    real = socket.getaddrinfo
    lookups: list[str] = []

    def fake(host, *args, **kwargs):
        if host == "hooks.example.test":
            lookups.append(host)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    tenant = make_tenant()
    make_subscription(tenant.id, f"http://hooks.example.test:{port}/hook")
    lookups.clear()
    publish("invoice.paid", {"invoice_id": "inv_1"}, tenant_id=tenant.id)
    db.session.commit()
    run_worker()

    (got,) = receiver.wait_for(1)
    assert got.headers["Host"] == f"hooks.example.test:{port}"
    assert lookups == ["hooks.example.test"]  # resolved once, by the check; not again to connect
