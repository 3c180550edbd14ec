"""The standard event-type catalog: its contents, and its idempotent sync into the database."""

from __future__ import annotations

import json

import jsonschema
import pytest
from sqlalchemy import func, select

from portal.catalog import GROUP_LABELS, STANDARD_EVENT_TYPES, StandardEventType
from portal.extensions import db
from portal.models import EventType
from portal.services.event_types import NAME_PATTERN, list_types, sync_standard_types
from tests.factories import make_tenant

# The groups the standard catalog must cover (a pair is satisfied by either member): what a
# platform's tenants expect to subscribe to, Hookline's own webhook. and endpoint. included.
REQUIRED_GROUPS: list[tuple[str, ...]] = [
    ("billing", "invoice"),
    ("payment",),
    ("subscription",),
    ("customer",),
    ("user",),
    ("email",),
    ("bulk_email",),
    ("file",),
    ("storage",),
    ("import",),
    ("export",),
    ("metric",),
    ("report",),
    ("security",),
    ("compliance",),
    ("ticket",),
    ("webhook",),
    ("endpoint",),
]

BY_NAME = {spec.name: spec for spec in STANDARD_EVENT_TYPES}


def _standard_rows() -> list[EventType]:
    return list(db.session.scalars(select(EventType).where(EventType.tenant_id.is_(None))))


def _standard_count() -> int:
    return db.session.scalar(
        select(func.count()).select_from(EventType).where(EventType.tenant_id.is_(None))
    )


def test_at_least_fifty_standard_types_ship() -> None:
    assert len(STANDARD_EVENT_TYPES) >= 50


def test_every_required_group_is_in_the_catalog() -> None:
    groups = {spec.group for spec in STANDARD_EVENT_TYPES}

    missing = [alternatives for alternatives in REQUIRED_GROUPS if not groups & set(alternatives)]

    assert missing == []


def test_the_platforms_own_types_are_present() -> None:
    assert "webhook.test" in BY_NAME
    assert "endpoint.disabled" in BY_NAME  # published when an endpoint is auto-disabled


def test_every_group_has_a_portal_label() -> None:
    assert {spec.group for spec in STANDARD_EVENT_TYPES} <= set(GROUP_LABELS)


def test_names_are_unique_and_shaped_group_dot_action() -> None:
    names = [spec.name for spec in STANDARD_EVENT_TYPES]

    assert len(names) == len(set(names))
    assert [name for name in names if not NAME_PATTERN.match(name)] == []


@pytest.mark.parametrize("spec", STANDARD_EVENT_TYPES, ids=lambda spec: spec.name)
def test_each_type_has_a_description_and_a_json_example(spec: StandardEventType) -> None:
    assert spec.description.strip()
    assert isinstance(spec.example, dict) and spec.example
    assert json.loads(json.dumps(spec.example, allow_nan=False)) == spec.example


@pytest.mark.parametrize(
    "spec",
    [spec for spec in STANDARD_EVENT_TYPES if spec.schema is not None],
    ids=lambda spec: spec.name,
)
def test_each_example_validates_against_its_own_schema(spec: StandardEventType) -> None:
    jsonschema.Draft202012Validator.check_schema(spec.schema)
    validator = jsonschema.Draft202012Validator(
        spec.schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )

    errors = [error.message for error in validator.iter_errors(spec.example)]

    assert errors == []


def test_some_types_carry_a_schema() -> None:
    # Without any schema the test above would pass vacuously.
    assert sum(spec.schema is not None for spec in STANDARD_EVENT_TYPES) >= 10


def test_sync_has_put_every_standard_type_in_the_database(app) -> None:
    rows = {row.name: row for row in _standard_rows()}

    assert set(rows) == set(BY_NAME)
    for name, row in rows.items():
        spec = BY_NAME[name]
        assert (row.group, row.description, row.example, row.schema, row.archived) == (
            spec.group,
            spec.description,
            spec.example,
            spec.schema,
            False,
        )


def test_a_second_sync_changes_nothing(app) -> None:
    before = _standard_count()

    changed = sync_standard_types()
    db.session.commit()

    assert changed == 0
    assert _standard_count() == before == len(STANDARD_EVENT_TYPES)


def test_sync_restores_a_changed_description_and_example(app) -> None:
    row = db.session.scalar(select(EventType).where(EventType.name == "invoice.created"))
    row.description = "an outdated description"
    row.example = {"stale": True}
    db.session.commit()
    try:
        changed = sync_standard_types()
        db.session.commit()
    finally:
        sync_standard_types()  # leave the shared catalog intact even if the assertion fails
        db.session.commit()

    db.session.expire_all()
    row = db.session.scalar(select(EventType).where(EventType.name == "invoice.created"))
    assert changed == 1
    assert row.description == BY_NAME["invoice.created"].description
    assert row.example == BY_NAME["invoice.created"].example
    assert _standard_count() == len(STANDARD_EVENT_TYPES)


def test_sync_into_an_empty_catalog_adds_every_type_then_nothing(app) -> None:
    for row in _standard_rows():
        db.session.delete(row)
    db.session.commit()
    try:
        first = sync_standard_types()
        db.session.commit()
        second = sync_standard_types()
        db.session.commit()
    finally:
        sync_standard_types()
        db.session.commit()

    assert (first, second) == (len(STANDARD_EVENT_TYPES), 0)
    assert _standard_count() == len(STANDARD_EVENT_TYPES)


def test_sync_leaves_tenants_custom_types_alone(app) -> None:
    tenant = make_tenant()
    db.session.add(
        EventType(
            tenant_id=tenant.id, name="order.shipped", group="order", description="x", example={}
        )
    )
    db.session.commit()

    assert sync_standard_types() == 0
    db.session.commit()

    names = {row.name for row in list_types(tenant.id)}
    assert "order.shipped" in names
    assert set(BY_NAME) <= names
