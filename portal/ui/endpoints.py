"""Endpoints: list, create/edit with the event-type picker, and the endpoint page's actions."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from dispatcher import clock
from dispatcher.store import db
from portal.services import ServiceError, deliveries, event_types, stats
from portal.services import subscriptions as subscription_service
from portal.ui.common import protect, render, tenant_id, wants_partial
from portal.ui.forms import (
    EndpointForm,
    FilterTryForm,
    RecoverForm,
    RotateForm,
    TestEventForm,
    format_headers,
    parse_headers,
    parse_json_object,
)
from portal.ui.picker import picker_groups

bp = protect(Blueprint("endpoints", __name__, url_prefix="/endpoints"))

PAGE_SIZE = 50
RECENT_DELIVERIES = 10


@bp.get("")
def index() -> tuple[str, int]:
    """Every endpoint of the tenant with its status (disabled, or its health).

    A cursor that is not one we handed out (the API's paging rule) shows the first page with
    the reason, answered 400.
    """
    error = None
    try:
        page = subscription_service.list_subscriptions(
            tenant_id(), PAGE_SIZE, request.args.get("cursor")
        )
    except ServiceError as exc:
        error = exc.message
        page = subscription_service.list_subscriptions(tenant_id(), PAGE_SIZE)
    health = {row.id: subscription_service.health(row) for row in page.items}
    body = render(
        "hookline/endpoints/index.html",
        endpoints=page.items,
        health=health,
        next_cursor=page.next_cursor,
        error=error,
    )
    return body, 400 if error else 200


def _form_page(form: EndpointForm, selected: list[str], errors: dict[str, str], endpoint=None):
    status = 400 if errors or form.errors else 200
    page = render(
        "hookline/endpoints/form.html",
        form=form,
        endpoint=endpoint,
        groups=picker_groups(event_types.list_types(tenant_id())),
        selected=set(selected),
        errors=errors,
    )
    return page, status


def _changes(form: EndpointForm, errors: dict[str, str]) -> dict | None:
    """The submitted fields as service arguments, or None with `errors` filled in."""
    try:
        headers = parse_headers(form.headers.data)
    except ValueError as exc:
        errors["headers"] = str(exc)
        return None
    try:
        data_filter = parse_json_object(form.data_filter.data)
    except ValueError as exc:
        errors["data_filter"] = f"The filter is {exc}"
        return None
    return {
        "url": form.url.data or "",
        "description": form.description.data or "",
        "headers": headers,
        "events": request.form.getlist("events"),
        "rate_limit": form.rate_limit.data,  # None when left empty: no limit
        "data_filter": data_filter,  # None when left empty: no filter
        "signature_scheme": form.signature_scheme.data,
    }


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Create an endpoint; validation (SSRF refusals included) is shown beside the field."""
    form = EndpointForm()
    errors: dict[str, str] = {}
    selected = request.form.getlist("events") if request.method == "POST" else []
    if not form.validate_on_submit():
        return _form_page(form, selected, errors)
    changes = _changes(form, errors)
    if changes is None:
        return _form_page(form, selected, errors)
    try:
        subscription, _secret = subscription_service.create(tenant_id(), **changes)
    except ServiceError as exc:
        db.session.rollback()
        errors[exc.field or "form"] = exc.message
        return _form_page(form, selected, errors)
    db.session.commit()
    flash("Endpoint created. Its signing secret is below.", "success")
    return _back(subscription.id)


@bp.post("/try-filter")
def try_filter() -> str:
    """Try the form's data filter on an example payload; the answer replaces #filter-result."""
    form = FilterTryForm()
    if not form.validate_on_submit():
        abort(400)
    outcome: dict = {}
    try:
        spec = parse_json_object(form.data_filter.data)
        example = parse_json_object(form.example.data) or {}
    except ValueError as exc:
        outcome["error"] = f"Not a JSON object: {exc}"
    else:
        try:
            outcome["matches"] = subscription_service.try_data_filter(spec, example)
        except ServiceError as exc:
            outcome["error"] = exc.message
    return render_template("hookline/endpoints/_filter_result.html", **outcome)


@bp.route("/<subscription_id>/edit", methods=["GET", "POST"])
def edit(subscription_id: str):
    """Change an endpoint's URL, description, headers, rate limit and event filter."""
    endpoint = subscription_service.get(tenant_id(), subscription_id)
    form = EndpointForm(
        data={
            "url": endpoint.url,
            "description": endpoint.description,
            "headers": format_headers(endpoint.headers),
            "rate_limit": endpoint.rate_limit,
            "data_filter": json.dumps(endpoint.data_filter, indent=2)
            if endpoint.data_filter is not None
            else "",
            "signature_scheme": endpoint.signature_scheme,
        }
    )
    errors: dict[str, str] = {}
    if request.method == "GET":
        return _form_page(form, list(endpoint.events), errors, endpoint)
    selected = request.form.getlist("events")
    if not form.validate_on_submit():
        return _form_page(form, selected, errors, endpoint)
    changes = _changes(form, errors)
    if changes is None:
        return _form_page(form, selected, errors, endpoint)
    try:
        subscription_service.update(tenant_id(), subscription_id, changes)
    except ServiceError as exc:
        db.session.rollback()
        errors[exc.field or "form"] = exc.message
        return _form_page(form, selected, errors, endpoint)
    db.session.commit()
    flash("Endpoint saved.", "success")
    return _back(subscription_id)


def _show(subscription_id: str, **extra) -> str:
    tid = tenant_id()
    endpoint = subscription_service.get(tid, subscription_id)
    types = event_types.list_types(tid)
    test_form = TestEventForm(formdata=None).offer(types)
    day_ago = (clock.now() - timedelta(hours=24)).astimezone(UTC)
    recover_form = RecoverForm(
        formdata=None, data={"since": day_ago.replace(tzinfo=None, second=0, microsecond=0)}
    )
    return render(
        "hookline/endpoints/show.html",
        endpoint=endpoint,
        health=subscription_service.health(endpoint),
        stats=stats.subscription_stats(tid, subscription_id, clock.now()),
        recent=deliveries.list_deliveries(
            tid, subscription_id=subscription_id, limit=RECENT_DELIVERIES
        ).items,
        rotate_form=RotateForm(formdata=None),
        test_form=test_form,
        recover_form=recover_form,
        receiver_path=urlsplit(endpoint.url).path or "/",
        public_key=subscription_service.public_key(endpoint),
        **extra,
    )


@bp.get("/<subscription_id>")
def show(subscription_id: str) -> str:
    """The endpoint page: secret, verification snippet, test, enable/disable, recent deliveries."""
    return _show(subscription_id)


def _back(subscription_id: str) -> Response:
    """To the endpoint page (after an action, or with its refusal flashed)."""
    return redirect(url_for("ui.endpoints.show", subscription_id=subscription_id))


def _refused(exc: ServiceError, subscription_id: str) -> Response:
    db.session.rollback()
    flash(exc.message, "error")
    return _back(subscription_id)


def _secret_shown(subscription_id: str, **context) -> Response:
    """The secret card in place (HTMX), else the endpoint page showing it; never cached."""
    if request.htmx:
        endpoint = subscription_service.get(tenant_id(), subscription_id)
        body = render(
            "hookline/endpoints/_secret.html",
            endpoint=endpoint,
            rotate_form=RotateForm(formdata=None),
            **context,
        )
    else:
        body = _show(subscription_id, **context)
    response = make_response(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<subscription_id>/secret")
def reveal(subscription_id: str) -> Response:
    """Show the signing secret (in place with HTMX; the endpoint page otherwise). Never cached."""
    secret = subscription_service.reveal_secret(tenant_id(), subscription_id)
    return _secret_shown(subscription_id, secret=secret, revealed=True)


@bp.post("/<subscription_id>/rotate")
def rotate(subscription_id: str):
    """Make a new primary secret; the old one keeps signing for the chosen grace period."""
    form = RotateForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        secret, old_expires = subscription_service.rotate_secret(
            tenant_id(), subscription_id, form.grace.data
        )
    except ServiceError as exc:
        return _refused(exc, subscription_id)
    db.session.commit()
    return _secret_shown(
        subscription_id, secret=secret, revealed=True, rotated=True, old_expires=old_expires
    )


@bp.post("/<subscription_id>/test")
def send_test(subscription_id: str):
    """Queue a test event; with HTMX its result appears in place (the partial polls)."""
    form = TestEventForm().offer(event_types.list_types(tenant_id()))
    if not form.validate_on_submit():
        abort(400)
    try:
        delivery = subscription_service.send_test(
            tenant_id(), subscription_id, form.event_type.data
        )
    except ServiceError as exc:
        return _refused(exc, subscription_id)
    db.session.commit()
    if request.htmx:
        return render_template(
            "hookline/endpoints/_test_result.html",
            delivery=delivery,
            attempt=None,
            endpoint_id=subscription_id,
        )
    flash(f"Test event {delivery.event_type} queued.", "success")
    return redirect(url_for("ui.deliveries.show", delivery_id=delivery.id))


@bp.get("/<subscription_id>/tests/<delivery_id>")
def test_result(subscription_id: str, delivery_id: str) -> Response | str:
    """The test delivery's current state; the partial keeps polling while it is pending."""
    delivery = deliveries.get_delivery(tenant_id(), delivery_id)
    if delivery.subscription_id != subscription_id:
        abort(404)
    if not wants_partial():
        return redirect(url_for("ui.deliveries.show", delivery_id=delivery_id))
    attempts = deliveries.attempts_for(delivery)
    return render_template(
        "hookline/endpoints/_test_result.html",
        delivery=delivery,
        attempt=attempts[-1] if attempts else None,
        endpoint_id=subscription_id,
    )


@bp.post("/<subscription_id>/enable")
def enable(subscription_id: str) -> Response:
    """Turn a disabled endpoint back on (its failure clock starts afresh)."""
    return _set_active(
        subscription_id,
        True,
        "Endpoint enabled. Use “Recover” to re-send what failed while it was off.",
    )


@bp.post("/<subscription_id>/disable")
def disable(subscription_id: str) -> Response:
    """Stop sending to an endpoint; what waits for it is cancelled."""
    return _set_active(
        subscription_id, False, "Endpoint disabled. Waiting deliveries were cancelled."
    )


def _set_active(subscription_id: str, active: bool, done: str) -> Response:
    subscription_service.set_active(tenant_id(), subscription_id, active)
    db.session.commit()
    flash(done, "success")
    return _back(subscription_id)


@bp.post("/<subscription_id>/recover")
def recover(subscription_id: str) -> Response:
    """Re-send the endpoint's failed deliveries created since the chosen time."""
    form = RecoverForm()
    if not form.validate_on_submit():
        flash("Choose the time to recover from.", "error")
        return _back(subscription_id)
    try:
        count = subscription_service.recover(
            tenant_id(), subscription_id, form.since.data.replace(tzinfo=UTC)
        )
    except ServiceError as exc:
        return _refused(exc, subscription_id)
    db.session.commit()
    noun = "delivery" if count == 1 else "deliveries"
    flash(f"{count} failed {noun} queued to be sent again.", "success")
    return _back(subscription_id)


@bp.post("/<subscription_id>/delete")
def delete(subscription_id: str) -> Response:
    """Delete an endpoint with its delivery history."""
    subscription_service.delete(tenant_id(), subscription_id)
    db.session.commit()
    flash("Endpoint deleted.", "success")
    return redirect(url_for("ui.endpoints.index"))
