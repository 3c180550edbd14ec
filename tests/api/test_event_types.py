"""/event-types: the catalog and a tenant's custom types."""

from __future__ import annotations

from portal.catalog import STANDARD_EVENT_TYPES
from tests.api.conftest import assert_problem


def all_names(api) -> list[str]:
    names, cursor = [], ""
    while True:
        page = api.get(f"/event-types?limit=100&cursor={cursor}").get_json()
        names += [row["name"] for row in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            return names


def test_list_pages_through_the_whole_catalog_by_name(api):
    first = api.get("/event-types?limit=10")
    assert first.status_code == 200
    body = first.get_json()
    assert len(body["data"]) == 10 and body["next_cursor"] == body["data"][-1]["name"]
    row = body["data"][0]
    assert set(row) == {"name", "group", "description", "example", "schema", "archived", "custom"}
    names = all_names(api)
    assert names == sorted(names)
    assert set(names) == {spec.name for spec in STANDARD_EVENT_TYPES}


def test_create_custom_type_appears_in_the_list(api):
    response = api.post(
        "/event-types",
        json={
            "name": "order.shipped",
            "description": "An order left the warehouse.",
            "example": {"order_id": "o_1"},
            "schema": {"type": "object", "required": ["order_id"]},
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["custom"] is True and body["group"] == "order" and body["archived"] is False
    assert "order.shipped" in all_names(api)


def test_custom_type_schema_is_enforced_on_publish(api):
    api.post(
        "/event-types",
        json={"name": "order.shipped", "schema": {"type": "object", "required": ["order_id"]}},
    )
    response = api.post("/events", json={"type": "order.shipped", "data": {}})
    assert_problem(response, 422, "invalid-payload")


def test_create_refuses_bad_names_and_schemas(api):
    for name in ("Order Shipped", "noDot", "webhook.custom"):
        body = assert_problem(
            api.post("/event-types", json={"name": name}), 422, "validation-error"
        )
        assert "name" in body["errors"]
    body = assert_problem(
        api.post("/event-types", json={"name": "order.x", "schema": {"type": "nope"}}),
        422,
        "validation-error",
    )
    assert "schema" in body["errors"]
    assert (
        "name"
        in assert_problem(api.post("/event-types", json={}), 422, "validation-error")["errors"]
    )


def test_create_refuses_a_duplicate(api):
    api.post("/event-types", json={"name": "order.shipped"})
    assert_problem(
        api.post("/event-types", json={"name": "order.shipped"}), 422, "validation-error"
    )
    assert_problem(api.post("/event-types", json={"name": "invoice.paid"}), 422, "validation-error")


def test_delete_archives_a_custom_type(api):
    api.post("/event-types", json={"name": "order.shipped"})
    assert api.delete("/event-types/order.shipped").status_code == 204
    assert "order.shipped" not in all_names(api)


def test_delete_a_standard_type_is_409(api):
    body = assert_problem(api.delete("/event-types/invoice.paid"), 409, "standard-type")
    assert body["code"] == "standard_type"


def test_delete_unknown_type_is_404(api):
    assert_problem(api.delete("/event-types/order.never"), 404, "not-found")


def test_custom_types_are_per_tenant(api, other_api):
    api.post("/event-types", json={"name": "order.shipped"})
    assert "order.shipped" not in all_names(other_api)
    response = other_api.post("/events", json={"type": "order.shipped", "data": {}})
    assert_problem(response, 422, "unknown-event-type")
