"""Marshmallow fields with the API's rules: UTC timestamps with a Z, strict booleans, and text
that a database column can hold (no NUL, no control characters where a line is expected)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from dispatcher.message import format_timestamp
from portal.services.inputs import moment_problem, text_problem


class Timestamp(fields.AwareDateTime):
    """ISO 8601 in; UTC with a Z and milliseconds out. A time without a zone is taken as UTC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        problem = moment_problem(moment)  # the rule the portal's date filters share
        if problem:
            raise ValidationError(f"The date-time {problem}.")
        return moment.astimezone(UTC)


class WireTimestamp(fields.DateTime):
    """An event's timestamp exactly as the webhook body carries it (seconds, Z)."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any):
        return None if value is None else format_timestamp(value)


class StrictBoolean(fields.Boolean):
    """Only JSON true or false: "yes" or 1 is a mistake worth reporting, not guessing."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class Text(fields.String):
    """A string without NUL characters (PostgreSQL cannot store them); `line=True` also refuses
    every other control character."""

    def __init__(self, *, line: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.line = line

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text, line=self.line)  # the rule the portal's query strings share
        if problem:
            raise ValidationError(f"M{problem[1:]}.")
        return text
