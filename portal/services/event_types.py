"""The event-type catalog: standard types shipped with Hookline, and tenants' custom types."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import referencing.exceptions
from sqlalchemy import or_, select

from dispatcher.filters import OPERATIONAL_GROUP
from dispatcher.store import db
from portal.catalog import STANDARD_EVENT_TYPES, group_of
from portal.models import EventType
from portal.services import NotFound, ServiceError
from portal.services.paging import Page, paginate

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# The longest type name (the column's size) and custom description; the API's schemas, the
# portal's form and the delivery log's filter take theirs from here.
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION = 1000
# Hookline's own groups: `webhook.test` and the operational events.
RESERVED_GROUPS = frozenset({"webhook", OPERATIONAL_GROUP})


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


def page_types(
    tenant_id: str, limit: int | None = None, cursor: str | None = None
) -> Page[EventType]:
    """`list_types` a page at a time: by name, so the cursor is the last name of a page."""

    def rows_after(cursor: str | None, count: int) -> list[EventType]:
        rows = list_types(tenant_id)
        return [row for row in rows if cursor is None or row.name > cursor][:count]

    return paginate(
        rows_after, limit, cursor, key=lambda row: row.name, max_cursor_length=MAX_NAME_LENGTH
    )


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
    """Add a tenant's own event type (`group.action`); archived, it comes back."""
    name = _check_name(name)
    description = _check_description(description)
    _check_example_and_schema(example, schema)
    row = _row_for_new_name(tenant_id, name)
    row.archived = False
    row.group = group_of(name)
    row.description = description
    row.example = example or {}
    row.schema = schema
    db.session.flush()
    return row


def _check_name(name: str | None) -> str:
    name = (name or "").strip()
    if not NAME_PATTERN.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ServiceError(
            "an event type name is lowercase words joined by dots, like 'order.shipped'",
            field="name",
        )
    if group_of(name) in RESERVED_GROUPS:
        raise ServiceError(f"the '{group_of(name)}.' group is reserved for Hookline", field="name")
    return name


def _check_description(description: str | None) -> str:
    description = description or ""
    if "\x00" in description:
        raise ServiceError("the description must not contain NUL characters", field="description")
    if len(description) > MAX_DESCRIPTION:
        raise ServiceError(
            f"the description must be at most {MAX_DESCRIPTION} characters", field="description"
        )
    return description


def _check_example_and_schema(example: Any, schema: Any) -> None:
    if example is not None and not isinstance(example, dict):
        raise ServiceError("the example must be a JSON object", field="example")
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise ServiceError("the schema must be a JSON Schema object", field="schema")
    if any(not ref.startswith("#") for ref in _refs(schema)):
        raise ServiceError("the schema may only use local $ref (starting with #)", field="schema")
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


def _row_for_new_name(tenant_id: str, name: str) -> EventType:
    """A new row for `name`, or the tenant's own archived type of that name to bring back;
    ServiceError when a standard or live custom type has it."""
    clash = db.session.scalar(
        select(EventType).where(
            EventType.name == name,
            or_(EventType.tenant_id.is_(None), EventType.tenant_id == tenant_id),
        )
    )
    if clash is None:
        row = EventType(tenant_id=tenant_id, name=name)
        db.session.add(row)
        return row
    if clash.tenant_id == tenant_id and clash.archived:
        return clash
    raise ServiceError(f"an event type named {name!r} already exists", field="name")


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
