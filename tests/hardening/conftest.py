"""Hardening fixtures: a request-per-app-context client, bearer-key API calls, metric scrapes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from dispatcher.connection import get_redis
from portal.api import API_PREFIX
from portal.extensions import db
from tests.ui.conftest import FreshContextClient


@pytest.fixture
def client(app) -> FlaskClient:
    """A test client that gives each request its own app context, as a server does."""
    app.test_client_class = FreshContextClient
    return app.test_client()


def call_api(client: FlaskClient, key: str, method: str, path: str, **kwargs: Any):
    """One JSON API request with `key` as the bearer token."""
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    return client.open(API_PREFIX + path, method=method, headers=headers, **kwargs)


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it: {(sample name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value (0 when the series is absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def close_app(app: Flask) -> None:
    """Close the database pool and Redis client of an app a test made itself (an open socket
    found by the garbage collector later would fail another test under filterwarnings=error)."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
        get_redis().close()
