"""The event-type catalog: standard types shipped with Hookline, and tenants' custom types."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import referencing.exceptions
from sqlalchemy import or_, select

from dispatcher.store import db
from portal.catalog import STANDARD_EVENT_TYPES
from portal.models import EventType
from portal.services import NotFound, ServiceError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
RESERVED_GROUPS = frozenset({"webhook", "endpoint"})


def sync_standard_types() -> int:
    """Insert or update the shipped catalog; safe to run any number of times. Returns how many
    rows were added or changed."""
    existing = {
        row.name: row
        for row in db.session.scalars(select(EventType).where(EventType.tenant_id.is_(None)))
    }
    changed = 0
    for spec in STANDARD_EVENT_TYPES:
        row = existing.get(spec.name)
        if row is None:
            row = EventType(tenant_id=None, name=spec.name)
            db.session.add(row)
        values = {
            "group": spec.group,
            "description": spec.description,
            "example": spec.example,
            "schema": spec.schema,
        }
        if any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            changed += 1
    db.session.flush()
    return changed


def list_types(tenant_id: str, include_archived: bool = False) -> list[EventType]:
    """Standard and the tenant's custom types, by name (a custom type hides a standard one)."""
    query = select(EventType).where(
        or_(EventType.tenant_id.is_(None), EventType.tenant_id == tenant_id)
    )
    if not include_archived:
        query = query.where(EventType.archived.is_(False))
    by_name: dict[str, EventType] = {}
    for row in db.session.scalars(query.order_by(EventType.name)):
        if row.name not in by_name or row.tenant_id is not None:
            by_name[row.name] = row
    return [by_name[name] for name in sorted(by_name)]


def known_names(tenant_id: str) -> set[str]:
    """Names the tenant may subscribe to and publish."""
    return {row.name for row in list_types(tenant_id)}


def create_custom_type(
    tenant_id: str,
    name: str,
    description: str = "",
    example: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> EventType:
    """Add a tenant's own event type (`group.action`)."""
    name = (name or "").strip()
    if not NAME_PATTERN.match(name) or len(name) > 200:
        raise ServiceError(
            "an event type name is lowercase words joined by dots, like 'order.shipped'",
            field="name",
        )
    group = name.split(".", 1)[0]
    if group in RESERVED_GROUPS:
        raise ServiceError(f"the '{group}.' group is reserved for Hookline", field="name")
    if "\x00" in (description or ""):
        raise ServiceError("the description must not contain NUL characters", field="description")
    if len(description or "") > 1000:
        raise ServiceError("the description must be at most 1000 characters", field="description")
    if example is not None and not isinstance(example, dict):
        raise ServiceError("the example must be a JSON object", field="example")
    if schema is not None:
        if not isinstance(schema, dict):
            raise ServiceError("the schema must be a JSON Schema object", field="schema")
        if any(not ref.startswith("#") for ref in _refs(schema)):
            raise ServiceError(
                "the schema may only use local $ref (starting with #)", field="schema"
            )
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
            valid_example = jsonschema.Draft202012Validator(schema).is_valid(
                example if example is not None else {}
            )
        except jsonschema.SchemaError as exc:
            raise ServiceError(f"the schema is not valid: {exc.message}", field="schema") from None
        except referencing.exceptions.Unresolvable as exc:
            raise ServiceError(
                f"the schema has a $ref that does not resolve: {exc}", field="schema"
            ) from None
        if example is not None and not valid_example:
            raise ServiceError("the example does not match the schema", field="example")
    clash = db.session.scalar(
        select(EventType).where(
            EventType.name == name,
            or_(EventType.tenant_id.is_(None), EventType.tenant_id == tenant_id),
        )
    )
    if clash is not None and not (clash.tenant_id == tenant_id and clash.archived):
        raise ServiceError(f"an event type named {name!r} already exists", field="name")
    if clash is not None:
        row = clash
        row.archived = False
    else:
        row = EventType(tenant_id=tenant_id, name=name)
        db.session.add(row)
    row.group = group
    row.description = description or ""
    row.example = example or {}
    row.schema = schema
    db.session.flush()
    return row


def _refs(node: Any) -> list[str]:
    """Every $ref value anywhere in a JSON Schema."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def archive_custom_type(tenant_id: str, name: str) -> EventType:
    """Archive a tenant's custom type: it can no longer be published. Standard types cannot be."""
    row = db.session.scalar(
        select(EventType).where(EventType.tenant_id == tenant_id, EventType.name == name)
    )
    if row is None:
        standard = db.session.scalar(
            select(EventType.id).where(EventType.tenant_id.is_(None), EventType.name == name)
        )
        if standard:
            raise ServiceError("standard event types cannot be deleted", code="standard_type")
        raise NotFound(f"no custom event type {name!r}")
    row.archived = True
    return row
