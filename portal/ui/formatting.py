"""How the portal's templates format values: times in UTC, durations, catalog group labels, and
JSON pretty-printed on the server (registered as Jinja filters; not to be confused with the
event and data filters of dispatcher/filters.py).

Pretty-printing here (not in the browser) means the template only ever prints text, which Jinja
escapes; no receiver body or user text is ever marked safe.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from dispatcher import clock
from dispatcher.states import DeliveryStatus
from portal.catalog import GROUP_LABELS, group_of


def pretty_json(value: Any) -> str:
    """Indented JSON for a value, or for text that parses as JSON; other text unchanged."""
    if value is None:
        return ""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def format_time(moment: datetime | None, with_seconds: bool = True) -> str:
    """An absolute UTC time, the same for every viewer."""
    if moment is None:
        return "—"
    pattern = "%Y-%m-%d %H:%M:%S UTC" if with_seconds else "%Y-%m-%d %H:%M UTC"
    return moment.astimezone(UTC).strftime(pattern)


def time_ago(moment: datetime | None) -> str:
    """A rough relative time ("3 min ago", "in 5 min") for tables."""
    if moment is None:
        return "—"
    seconds = int((clock.now() - moment).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        text = "a few seconds"
    elif seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 86400:
        text = f"{round(seconds / 3600)} h"
    else:
        text = f"{round(seconds / 86400)} d"
    return f"in {text}" if future else f"{text} ago"


def group_label(group: str) -> str:
    """The catalog group's display name ("invoice" → "Billing — invoices")."""
    return GROUP_LABELS.get(group, group.replace("_", " ").capitalize())


def type_group_label(event_type: str) -> str:
    """The display name of an event type's group (`invoice.paid` → "Billing — invoices")."""
    return group_label(group_of(event_type))


def register(app: Flask) -> None:
    """Make the filters available to every template, and the delivery states' names, so a
    template compares `delivery.status == DeliveryStatus.PENDING` rather than spell the value."""
    app.add_template_filter(pretty_json, "pretty_json")
    app.add_template_filter(format_time, "time")
    app.add_template_filter(time_ago, "ago")
    app.add_template_filter(group_label, "group_label")
    app.jinja_env.globals.setdefault("DeliveryStatus", DeliveryStatus)
