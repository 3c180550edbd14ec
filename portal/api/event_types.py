"""GET/POST /event-types and DELETE /event-types/{name}: the catalog and custom types."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from dispatcher.store import db
from portal.api.auth import current_tenant_id
from portal.api.base import BODY_ERRORS, documents, lists, resource_blueprint
from portal.api.schemas import (
    EventTypeCreateArgs,
    EventTypePage,
    EventTypePageArgs,
    EventTypeSchema,
)
from portal.services import event_types
from portal.services.paging import Page

blp = resource_blueprint(
    "Event types", "/event-types", "The event-type catalog: standard and custom types."
)


@blp.route("")
class EventTypes(MethodView):
    @lists(blp, EventTypePageArgs, EventTypePage)
    def get(self, args: dict) -> Page:
        """List event types

        Standard and custom types that are not archived, by name. The cursor is the last name
        of the previous page.
        """
        return event_types.page_types(current_tenant_id(), args["limit"], args.get("cursor"))

    @blp.arguments(EventTypeCreateArgs)
    @blp.response(201, EventTypeSchema)
    @documents(blp, *BODY_ERRORS)
    def post(self, body: dict):
        """Create a custom event type

        Names are lowercase words joined by dots (`order.shipped`); the `webhook.` and
        `endpoint.` groups are reserved. An optional JSON Schema validates published data.
        """
        row = event_types.create_custom_type(current_tenant_id(), **body)
        db.session.commit()
        return row


@blp.route("/<hname:name>")
class EventTypeByName(MethodView):
    @blp.response(204)
    @documents(blp, 404, 409)
    def delete(self, name: str) -> Response:
        """Archive a custom event type

        It can no longer be published or subscribed to. Standard types cannot be deleted (409).
        """
        event_types.archive_custom_type(current_tenant_id(), name)
        db.session.commit()
        return Response(status=204)
