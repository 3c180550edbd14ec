"""The OpenAPI document: valid, complete against the operations docs/api.md and
docs/operator-api.md describe, and honest about errors."""

from __future__ import annotations

from openapi_spec_validator import validate

from portal.api import API_PREFIX

# Every operation of the tenant API that docs/api.md describes (one curl example each).
DOCUMENTED_OPERATIONS = {
    ("get", "/event-types"),
    ("post", "/event-types"),
    ("delete", "/event-types/{name}"),
    ("get", "/subscriptions"),
    ("post", "/subscriptions"),
    ("get", "/subscriptions/{subscription_id}"),
    ("patch", "/subscriptions/{subscription_id}"),
    ("delete", "/subscriptions/{subscription_id}"),
    ("get", "/subscriptions/{subscription_id}/secret"),
    ("post", "/subscriptions/{subscription_id}/rotate-secret"),
    ("post", "/subscriptions/{subscription_id}/test"),
    ("post", "/subscriptions/{subscription_id}/recover"),
    ("get", "/subscriptions/{subscription_id}/stats"),
    ("post", "/subscriptions/test-filter"),  # issue 13: try a data filter
    ("post", "/events"),
    ("get", "/events"),
    ("get", "/events/{event_id}"),
    ("get", "/deliveries"),
    ("get", "/deliveries/{delivery_id}"),
    ("post", "/deliveries/{delivery_id}/retry"),
}
# Issue 12, service mode: the operator API (docs/operator-api.md), in the same document under
# its own prefix.
OPERATOR_OPERATIONS = {
    ("get", "/api/v1/operator/tenants"),
    ("post", "/api/v1/operator/tenants"),
    ("get", "/api/v1/operator/tenants/{tenant_id}"),
    ("post", "/api/v1/operator/tenants/{tenant_id}/admins"),
    ("post", "/api/v1/operator/tenants/{tenant_id}/api-keys"),
    ("post", "/api/v1/operator/tenants/{tenant_id}/portal-links"),
}


def operations(spec: dict) -> set[tuple[str, str]]:
    return {
        (method, path.removeprefix(API_PREFIX))
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_document_passes_openapi_spec_validator(app, client):
    response = client.get(API_PREFIX + "/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_document_has_every_documented_operation_and_no_other(app, client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    assert operations(spec) == DOCUMENTED_OPERATIONS | OPERATOR_OPERATIONS


def test_operator_operations_need_an_operator_key(app, client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["operatorKey"]["scheme"] == "bearer"
    for method, path in OPERATOR_OPERATIONS:
        assert spec["paths"][path][method]["security"] == [{"operatorKey": []}], (method, path)
    for method, path in DOCUMENTED_OPERATIONS:
        assert "security" not in spec["paths"][API_PREFIX + path][method], (method, path)


def test_every_operation_requires_the_bearer_key_and_documents_problems(app, client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    responses = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "patch", "delete"}:
                continue
            assert operation["summary"], (method, path)
            assert "401" in operation["responses"] and "default" in operation["responses"]
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status == "default" or int(status) >= 400:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    assert set(responses[name]["content"]) == {"application/problem+json"}


def test_list_operations_document_limit_and_cursor(app, client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    for path in ("/event-types", "/subscriptions", "/events", "/deliveries", "/tenants"):
        prefix = "/api/v1/operator" if path == "/tenants" else API_PREFIX
        params = {p["name"]: p for p in spec["paths"][prefix + path]["get"]["parameters"]}
        assert params["limit"]["schema"]["maximum"] == 100
        assert "cursor" in params
    deliveries = spec["paths"][API_PREFIX + "/deliveries"]["get"]["parameters"]
    assert {"status", "subscription_id", "event_type", "since", "until"} <= {
        p["name"] for p in deliveries
    }
    publish = spec["paths"][API_PREFIX + "/events"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in publish)


def test_docs_page_lists_every_operation_without_loading_anything_external(app, client):
    spec = client.get(API_PREFIX + "/openapi.json").get_json()
    page = client.get(API_PREFIX + "/docs").get_data(as_text=True)
    for method, path in operations(spec):
        assert (path if path in spec["paths"] else API_PREFIX + path) in page
        assert method.upper() in page
    assert "<script" not in page and "https://" not in page.replace("https://hookline.dev", "")
