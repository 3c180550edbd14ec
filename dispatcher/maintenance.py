"""Periodic jobs: re-enqueue lost work, disable dead endpoints, prune old history.

`flask worker` runs these every HOOKLINE_SWEEP_INTERVAL seconds (one worker at a time, by a
Redis lock); `flask maintenance` runs them once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, exists, select

from dispatcher import clock, lifecycle, queues
from dispatcher.claims import due_filter
from portal.extensions import db
from portal.models import Attempt, Delivery, Event, Subscription

log = logging.getLogger(__name__)

PRUNE_BATCH = 1000
PRUNE_MAX_BATCHES = 50


@dataclass
class MaintenanceReport:
    """What one maintenance run did, for logs and the CLI."""

    kicked: bool = False
    disabled: int = 0
    pruned_attempts: int = 0
    pruned_deliveries: int = 0
    pruned_events: int = 0


def sweep() -> bool:
    """Enqueue a drain if deliveries are due that no worker holds (a job was lost, Redis was
    flushed or restarted, or an enqueue failed). Returns True if something was due."""
    now = clock.now()
    due = db.session.execute(
        select(Delivery.id, Delivery.priority).where(*due_filter(now)).limit(1)
    )
    row = due.first()
    if row is None:
        return False
    queues.kick(priority=False)
    priority_due = db.session.scalar(
        select(Delivery.id).where(*due_filter(now), Delivery.priority.is_(True)).limit(1)
    )
    if priority_due:
        queues.kick(priority=True)
    return True


def disable_failing_endpoints() -> int:
    """Disable endpoints with no success for HOOKLINE_DISABLE_AFTER_SECONDS while failing."""
    window = timedelta(seconds=current_app.config["HOOKLINE_DISABLE_AFTER_SECONDS"])
    now = clock.now()
    failing = db.session.scalars(
        select(Subscription).where(
            Subscription.is_active.is_(True),
            Subscription.failing_since.is_not(None),
            Subscription.failing_since <= now - window,
        )
    ).all()
    for subscription in failing:
        since = subscription.failing_since.strftime("%Y-%m-%d %H:%M UTC")
        lifecycle.disable(
            subscription,
            f"Disabled automatically: no successful delivery since {since} "
            f"({int(window.total_seconds() // 3600)} h without a success).",
        )
        log.info("disabled endpoint %s after failing since %s", subscription.id, since)
    db.session.commit()
    return len(failing)


def _prune(model, id_column, condition) -> int:
    total = 0
    for _ in range(PRUNE_MAX_BATCHES):
        ids = db.session.scalars(select(id_column).where(condition).limit(PRUNE_BATCH)).all()
        if not ids:
            break
        db.session.execute(
            delete(model).where(id_column.in_(ids)).execution_options(synchronize_session=False)
        )
        db.session.commit()
        total += len(ids)
    return total


def prune() -> tuple[int, int, int]:
    """Delete attempts, finished deliveries and events older than the retention, in batches."""
    cutoff = clock.now() - timedelta(days=current_app.config["HOOKLINE_RETENTION_DAYS"])
    attempts = _prune(Attempt, Attempt.id, Attempt.started_at < cutoff)
    deliveries = _prune(
        Delivery,
        Delivery.id,
        (Delivery.created_at < cutoff) & (Delivery.status != "pending"),
    )
    events = _prune(
        Event,
        Event.id,
        (Event.created_at < cutoff) & ~exists().where(Delivery.event_id == Event.id),
    )
    return attempts, deliveries, events


def run_all() -> MaintenanceReport:
    """Run every periodic job once."""
    try:
        report = MaintenanceReport()
        report.disabled = disable_failing_endpoints()
        report.kicked = sweep()
        report.pruned_attempts, report.pruned_deliveries, report.pruned_events = prune()
        return report
    finally:
        db.session.remove()
