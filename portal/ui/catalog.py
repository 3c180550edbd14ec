"""The event-type catalog: what each type means and an example payload; custom types."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from dispatcher.store import db
from portal.services import ServiceError, event_types, inputs
from portal.ui.common import protect, render, tenant_id
from portal.ui.forms import CustomTypeForm, parse_json_object
from portal.ui.picker import picker_groups

bp = protect(Blueprint("catalog", __name__, url_prefix="/event-types"))


MAX_SEARCH_LENGTH = 200


def _search(errors: dict[str, str]) -> str:
    """The catalog search (`q`), checked like any filter; an unusable one searches nothing."""
    try:
        query = inputs.check_line(
            request.args.get("q", "").strip(), "q", "The search", MAX_SEARCH_LENGTH
        )
    except ServiceError as exc:
        errors["search"] = exc.message
        return ""
    return (query or "").lower()


def _page(form: CustomTypeForm, errors: dict[str, str]) -> tuple[str, int]:
    query = _search(errors)
    types = event_types.list_types(tenant_id())
    if query:
        types = [t for t in types if query in t.name or query in (t.description or "").lower()]
    status = 400 if errors or form.errors else 200
    return (
        render(
            "hookline/catalog/index.html",
            groups=picker_groups(types),
            query=query,
            form=form,
            errors=errors,
        ),
        status,
    )


@bp.get("")
def index() -> tuple[str, int]:
    """Every type the tenant can subscribe to, grouped, with descriptions and examples."""
    return _page(CustomTypeForm(), {})


@bp.post("")
def create() -> Response | tuple[str, int]:
    """Add a custom event type."""
    form = CustomTypeForm()
    errors: dict[str, str] = {}
    if not form.validate_on_submit():
        return _page(form, errors)
    try:
        example = parse_json_object(form.example.data)
    except ValueError as exc:
        errors["example"] = f"The example is {exc}"
        return _page(form, errors)
    try:
        row = event_types.create_custom_type(
            tenant_id(), form.name.data, description=form.description.data or "", example=example
        )
    except ServiceError as exc:
        db.session.rollback()
        errors[exc.field or "form"] = exc.message
        return _page(form, errors)
    db.session.commit()
    flash(f"Event type {row.name} added.", "success")
    return redirect(url_for("ui.catalog.index") + f"#type-{row.name}")


@bp.post("/<name>/archive")
def archive(name: str) -> Response:
    """Archive a custom type: it can no longer be published or subscribed to."""
    try:
        event_types.archive_custom_type(tenant_id(), name)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("ui.catalog.index"))
    db.session.commit()
    flash(f"Event type {name} archived.", "success")
    return redirect(url_for("ui.catalog.index"))
