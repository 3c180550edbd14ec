"""The API's own pages: the OpenAPI document, a browsable list of operations, and the problem
answer for any path or method under the prefix that no route serves."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template_string, request, url_for
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from portal.api import errors

# Mounted at the API prefix by portal.api.init_app.
bp = Blueprint("api-meta", __name__)
errors.attach(bp)

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ spec.info.title }}</title>
<link rel="stylesheet" href="{{ url_for('ui.static', filename='css/api-docs.css') }}"></head><body>
<h1>{{ spec.info.title }} <small>{{ spec.info.version }}</small></h1>
<p>Authenticate with <code>Authorization: Bearer &lt;API key&gt;</code>. Errors are
<code>application/problem+json</code>. The machine-readable description is
<a href="{{ url_for('api-meta.openapi_json') }}">openapi.json</a>.</p>
{% for tag in tags %}<h2>{{ tag.name }}</h2><p>{{ tag.description }}</p><ul>
{% for op in tag.operations %}<li><span class="m">{{ op.method }}</span><code>{{ op.path }}</code>
 — {{ op.summary }}{% if op.description %}<p class="d">{{ op.description }}</p>{% endif %}</li>
{% endfor %}</ul>{% endfor %}
</body></html>"""


def _api():
    return current_app.extensions["hookline-api"]


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3 document, generated from the same schemas that validate requests."""
    return jsonify(_api().spec.to_dict())


@bp.get("/docs")
def docs():
    """Every operation on one page, with nothing loaded from elsewhere."""
    spec = _api().spec.to_dict()
    tags = [dict(tag, operations=[]) for tag in spec.get("tags", [])]
    by_name = {tag["name"]: tag for tag in tags}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in _METHODS:
                continue
            for name in operation.get("tags", []):
                by_name[name]["operations"].append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "summary": operation.get("summary", ""),
                        "description": operation.get("description", ""),
                    }
                )
    return render_template_string(DOCS_PAGE, spec=spec, tags=tags)


def _allowed_methods(path: str) -> set[str]:
    """Methods some real route accepts for `path` (the fallback route itself aside)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            continue
        if current_app.view_functions.get(endpoint) is not fallback:  # any prefix's fallback
            allowed.add(method)
    return allowed


@bp.route("/", defaults={"path": ""}, methods=_METHODS, endpoint="fallback")
@bp.route("/<anything:path>", methods=_METHODS, endpoint="fallback")
def fallback(path: str):
    """No route here: 405 if the path exists with other methods, else 404."""
    allowed = _allowed_methods(request.path)
    if allowed:
        raise MethodNotAllowed(valid_methods=sorted(allowed))
    raise NotFound(f"There is no {request.path} in this API; see {url_for('api-meta.docs')}.")
