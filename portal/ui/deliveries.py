"""The delivery log (filters, cursor paging, live refresh) and delivery detail with retry."""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, flash, make_response, redirect, request, url_for
from werkzeug.wrappers import Response

from dispatcher.states import STATUSES
from dispatcher.store import db
from portal.models import Delivery
from portal.services import ServiceError, deliveries, event_types, events, inputs
from portal.services import subscriptions as subscription_service
from portal.services.paging import MAX_LIMIT, Page
from portal.ui.common import protect, render, tenant_id

bp = protect(Blueprint("deliveries", __name__, url_prefix="/deliveries"))

PAGE_SIZE = 25
# The log's query string speaks the portal's language: `endpoint_id` is a subscription's id
# (the API's `subscription_id` filter; see portal/services/subscriptions.py on the two names).
FILTERS = ("status", "endpoint_id", "event_type", "since", "until")
TIME_EXAMPLE = "2025-09-30T12:00"


def _parse_time(value: str, field: str, label: str, errors: list[str]) -> datetime | None:
    """A `datetime-local` value, read as UTC (the portal shows every time in UTC)."""
    try:
        return inputs.parse_moment(value, field, label, TIME_EXAMPLE)
    except ServiceError as exc:
        errors.append(exc.message)
        return None


def _find(tid: str, args: dict[str, str], errors: list[str]) -> Page[Delivery] | None:
    """One page of the log for the filters in `args`; problems go to `errors`.

    Every value is checked by the rules the API's filters use (the service's), so a NUL, an
    overlong value or an impossible date is a message on the page, never a failed query.
    """
    since = _parse_time(args["since"], "since", "From", errors)
    until = _parse_time(args["until"], "until", "To", errors)
    if errors:
        return None
    try:
        return deliveries.list_deliveries(
            tid,
            limit=PAGE_SIZE,
            cursor=args["cursor"] or None,
            status=args["status"] or None,
            subscription_id=args["endpoint_id"] or None,
            event_type=args["event_type"] or None,
            since=since,
            until=until,
        )
    except ServiceError as exc:
        errors.append(exc.message)
        return None


@bp.get("")
def index() -> Response:
    """The log, newest first; filter changes and paging swap only the results (HTMX)."""
    tid = tenant_id()
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    query = {name: value for name, value in filters.items() if value}
    errors: list[str] = []
    page = _find(tid, {**filters, "cursor": request.args.get("cursor", "")}, errors)
    endpoints = subscription_service.list_subscriptions(tid, MAX_LIMIT).items
    response = make_response(
        render(
            "hookline/deliveries/index.html",
            "hookline/deliveries/_results.html",
            page=page,
            errors=errors,
            filters=filters,
            query=query,
            filtered=bool(query),
            paged=bool(request.args.get("cursor")),
            statuses=STATUSES,
            endpoints=endpoints,
            endpoint_urls={e.id: e.url for e in endpoints},
            type_names=[t.name for t in event_types.list_types(tid, include_archived=True)],
        )
    )
    if request.htmx and request.htmx.trigger == "delivery-filters":
        # The address bar gets the filters that are set, not every empty field of the form.
        response.headers["HX-Push-Url"] = url_for("ui.deliveries.index", **query)
    return response


def _detail_context(delivery_id: str) -> dict:
    tid = tenant_id()
    delivery = deliveries.get_delivery(tid, delivery_id)
    event = events.get_event(tid, delivery.event_id)
    body = events.wire_body(event)
    return {
        "delivery": delivery,
        "event": event,
        "endpoint": subscription_service.get(tid, delivery.subscription_id),
        "attempts": deliveries.attempts_for(delivery),
        "request_body": json.loads(body),
    }


@bp.get("/<delivery_id>")
def show(delivery_id: str) -> str:
    """Every attempt's request and response; the partial polls while the delivery is pending."""
    return render(
        "hookline/deliveries/show.html",
        "hookline/deliveries/_detail.html",
        **_detail_context(delivery_id),
    )


@bp.post("/<delivery_id>/retry")
def retry(delivery_id: str) -> Response | str:
    """Send the delivery again now, on the priority queue."""
    try:
        deliveries.retry_delivery(tenant_id(), delivery_id)
    except ServiceError as exc:
        db.session.rollback()
        if request.htmx:
            context = _detail_context(delivery_id)
            # 200, not 409: htmx swaps only successful responses, and the message must show
            return render("hookline/deliveries/_detail.html", retry_error=exc.message, **context)
        flash(exc.message, "error")
        return redirect(url_for("ui.deliveries.show", delivery_id=delivery_id))
    db.session.commit()
    if request.htmx:
        return render("hookline/deliveries/_detail.html", **_detail_context(delivery_id))
    flash("Retry queued.", "success")
    return redirect(url_for("ui.deliveries.show", delivery_id=delivery_id))
