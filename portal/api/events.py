"""/events: publish (honouring Idempotency-Key), list and read."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from dispatcher.store import db
from portal.api.auth import current_tenant_id
from portal.api.base import BODY_ERRORS, documents, lists, resource_blueprint
from portal.api.schemas import (
    EventListArgs,
    EventPage,
    EventSchema,
    Extended,
    IdempotencyArgs,
    PublishArgs,
)
from portal.services import events as service
from portal.services.paging import Page

blp = resource_blueprint("Events", "/events", "Publish events and read what was published.")

_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when the Idempotency-Key matched an earlier publish.",
        "schema": {"type": "string", "enum": ["true", "false"]},
    }
}


@blp.route("")
class Events(MethodView):
    @blp.arguments(PublishArgs)
    @blp.arguments(IdempotencyArgs, location="headers", arg_name="idempotency")
    @blp.response(202, EventSchema, headers=_REPLAYED)
    @documents(blp, 409, *BODY_ERRORS)
    def post(self, body: dict, idempotency: dict):
        """Publish an event

        One delivery is queued for every active endpoint whose filter matches the type. With an
        `Idempotency-Key`, a repeat of the same type and data returns the first event (and
        queues nothing); the same key with a different body is a 409.
        """
        published = service.publish_event(
            current_tenant_id(), body["type"], body["data"], idempotency.get("idempotency_key")
        )
        db.session.commit()
        event = published.event
        headers = {
            "Location": url_for(".Event", event_id=event.id),
            "Idempotent-Replayed": "true" if published.replayed else "false",
        }
        return Extended(event, deliveries=published.deliveries), 202, headers

    @lists(blp, EventListArgs, EventPage)
    def get(self, args: dict) -> Page:
        """List events

        Newest first, optionally of one type.
        """
        page = service.list_events(
            current_tenant_id(), args["limit"], args.get("cursor"), type=args.get("type")
        )
        counts = service.delivery_counts([event.id for event in page.items])
        items = [Extended(event, deliveries=counts[event.id]) for event in page.items]
        return Page(items=items, next_cursor=page.next_cursor)


@blp.route("/<hid:event_id>", endpoint="Event")
@blp.response(200, EventSchema)
@documents(blp, 404)
def get_event(event_id: str):
    """Read an event"""
    event = service.get_event(current_tenant_id(), event_id)
    return Extended(event, deliveries=service.delivery_count(event.id))
