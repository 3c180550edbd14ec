"""/deliveries: the filterable delivery log, one delivery with its attempts, and retry."""

from __future__ import annotations

from dispatcher.store import db
from portal.api.auth import current_tenant_id
from portal.api.base import documents, lists, resource_blueprint
from portal.api.schemas import (
    DeliveryDetailSchema,
    DeliveryListArgs,
    DeliveryPage,
    DeliverySchema,
    Extended,
)
from portal.services import deliveries as service

blp = resource_blueprint("Deliveries", "/deliveries", "The delivery log, and retries.")


@blp.route("")
@lists(blp, DeliveryListArgs, DeliveryPage)
def list_deliveries(args: dict):
    """List deliveries

    Newest first; filter by `status`, `subscription_id`, `event_type` and the creation time
    (`since`, `until`, inclusive).
    """
    return service.list_deliveries(current_tenant_id(), **args)


@blp.route("/<hid:delivery_id>")
@blp.response(200, DeliveryDetailSchema)
@documents(blp, 404)
def get_delivery(delivery_id: str):
    """Read a delivery

    With every attempt: the request headers sent, and the response status, headers and body
    (cut at 16 KiB) or the error.
    """
    delivery = service.get_delivery(current_tenant_id(), delivery_id)
    return Extended(delivery, attempts=service.attempts_for(delivery))


@blp.route("/<hid:delivery_id>/retry", methods=["POST"])
@blp.response(202, DeliverySchema)
@documents(blp, 404, 409)
def retry_delivery(delivery_id: str):
    """Retry a delivery

    A finished delivery gets one more attempt now, on the priority queue; a pending one stops
    waiting for its scheduled retry. Refused (409) while its endpoint is disabled.
    """
    delivery = service.retry_delivery(current_tenant_id(), delivery_id)
    db.session.commit()
    return delivery
