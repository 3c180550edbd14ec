"""/subscriptions: endpoints, their secrets, test events, recovery and stats."""

from __future__ import annotations

from flask import Response, url_for
from flask.views import MethodView

from dispatcher import clock
from dispatcher.store import db
from portal.api.auth import current_tenant_id
from portal.api.base import BODY_ERRORS, documents, lists, resource_blueprint
from portal.api.schemas import (
    Extended,
    FilterTestArgs,
    FilterTestedSchema,
    PageArgs,
    RecoverArgs,
    RecoveredSchema,
    RotateArgs,
    RotatedSchema,
    SecretSchema,
    StatsSchema,
    SubscriptionCreateArgs,
    SubscriptionCreatedSchema,
    SubscriptionPage,
    SubscriptionSchema,
    SubscriptionUpdateArgs,
    TestArgs,
    TestQueuedSchema,
)
from portal.services import stats
from portal.services import subscriptions as service

blp = resource_blueprint(
    "Subscriptions", "/subscriptions", "Endpoints that receive the tenant's events."
)


@blp.route("")
class Subscriptions(MethodView):
    @lists(blp, PageArgs, SubscriptionPage)
    def get(self, args: dict):
        """List endpoints

        Newest first.
        """
        return service.list_subscriptions(current_tenant_id(), args["limit"], args.get("cursor"))

    @blp.arguments(SubscriptionCreateArgs)
    @blp.response(201, SubscriptionCreatedSchema)
    @documents(blp, *BODY_ERRORS)
    def post(self, body: dict):
        """Create an endpoint

        The response carries the signing secret (for `signature_scheme: ed25519`, the
        `whpk_` public key); later it is only shown by `GET /subscriptions/{id}/secret`. The URL
        must be one Hookline may send to; a `data_filter` is checked like on PATCH.
        """
        subscription, secret = service.create(current_tenant_id(), **body)
        db.session.commit()
        location = url_for(".Subscription", subscription_id=subscription.id)
        return Extended(subscription, secret=secret), 201, {"Location": location}


@blp.route("/test-filter", methods=["POST"])
@blp.arguments(FilterTestArgs)
@blp.response(200, FilterTestedSchema)
@documents(blp, *BODY_ERRORS)
def test_filter(body: dict):
    """Try a data filter

    Whether an event carrying `data` would pass `data_filter`; the filter is checked exactly as
    when it is saved (a 422 names the part at fault). Nothing is stored.
    """
    return {"matches": service.try_data_filter(body["data_filter"], body["data"])}


@blp.route("/<hid:subscription_id>", endpoint="Subscription")
class Subscription(MethodView):
    @blp.response(200, SubscriptionSchema)
    @documents(blp, 404)
    def get(self, subscription_id: str):
        """Read an endpoint"""
        return service.get(current_tenant_id(), subscription_id)

    @blp.arguments(SubscriptionUpdateArgs)
    @blp.response(200, SubscriptionSchema)
    @documents(blp, 404, *BODY_ERRORS)
    def patch(self, body: dict, subscription_id: str):
        """Change an endpoint

        Only the fields given change. `is_active: false` disables the endpoint (its pending
        deliveries are cancelled); `true` enables it again. `rate_limit: null` removes the
        endpoint's rate limit, `data_filter: null` its data filter. A new `signature_scheme`
        rotates to a key of that scheme (the old key signs on for 24 hours).
        """
        subscription = service.update(current_tenant_id(), subscription_id, body)
        db.session.commit()
        return subscription

    @blp.response(204)
    @documents(blp, 404)
    def delete(self, subscription_id: str) -> Response:
        """Delete an endpoint

        Its delivery history goes with it.
        """
        service.delete(current_tenant_id(), subscription_id)
        db.session.commit()
        return Response(status=204)


@blp.route("/<hid:subscription_id>/secret")
@blp.response(200, SecretSchema)
@documents(blp, 404)
def reveal_secret(subscription_id: str):
    """Reveal the signing secret"""
    return {"secret": service.reveal_secret(current_tenant_id(), subscription_id)}


@blp.route("/<hid:subscription_id>/rotate-secret", methods=["POST"])
@blp.arguments(RotateArgs, required=False)
@blp.response(200, RotatedSchema)
@documents(blp, 404, *BODY_ERRORS)
def rotate_secret(body: dict, subscription_id: str):
    """Rotate the signing secret

    Deliveries are signed with the new secret and, for the grace period (default 24 h), also
    with the previous one, so consumers can switch without dropping events.
    """
    secret, expires = service.rotate_secret(
        current_tenant_id(), subscription_id, body.get("grace_period_seconds")
    )
    db.session.commit()
    return {"secret": secret, "previous_secret_expires_at": expires}


@blp.route("/<hid:subscription_id>/test", methods=["POST"])
@blp.arguments(TestArgs, required=False)
@blp.response(202, TestQueuedSchema)
@documents(blp, 404, *BODY_ERRORS)
def send_test(body: dict, subscription_id: str):
    """Send a test event

    The example payload of `event_type` (default `webhook.test`) goes to this endpoint only,
    on the priority queue. It is attempted once; GET the delivery to see the result.
    """
    delivery = service.send_test(current_tenant_id(), subscription_id, body.get("event_type"))
    db.session.commit()
    return {"delivery_id": delivery.id}


@blp.route("/<hid:subscription_id>/recover", methods=["POST"])
@blp.arguments(RecoverArgs)
@blp.response(202, RecoveredSchema)
@documents(blp, 404, *BODY_ERRORS)
def recover(body: dict, subscription_id: str):
    """Recover failed deliveries

    Every failed or cancelled delivery created since `since` (and until `until`) gets one
    more attempt.
    """
    queued = service.recover(current_tenant_id(), subscription_id, body["since"], body.get("until"))
    db.session.commit()
    return {"queued": queued}


@blp.route("/<hid:subscription_id>/stats")
@blp.response(200, StatsSchema)
@documents(blp, 404)
def subscription_stats(subscription_id: str):
    """Endpoint statistics

    Deliveries of the last 24 hours by status, the success rate and response-time
    percentiles (test deliveries are not counted).
    """
    return stats.subscription_stats(current_tenant_id(), subscription_id, clock.now())
