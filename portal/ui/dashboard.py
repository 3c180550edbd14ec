"""The dashboard: the last 24 hours at a glance, and the endpoints that need attention."""

from __future__ import annotations

from flask import Blueprint

from dispatcher import clock
from portal.services import stats
from portal.services import subscriptions as subscription_service
from portal.ui.charts import hourly_chart
from portal.ui.common import protect, render, tenant_id

bp = protect(Blueprint("dashboard", __name__))


@bp.get("/")
def index() -> str:
    """Deliveries per hour (SVG), success rate, p95 latency, failing and disabled endpoints."""
    overview = stats.tenant_overview(tenant_id(), clock.now())
    has_endpoints = bool(subscription_service.list_subscriptions(tenant_id(), 1).items)
    return render(
        "hookline/dashboard/index.html",
        overview=overview,
        chart=hourly_chart(overview.hours),
        has_endpoints=has_endpoints,
    )
