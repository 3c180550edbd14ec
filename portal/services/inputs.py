"""What text and times from outside may hold before they reach a query: one rule for the JSON
API's fields and the portal's query strings, so the two surfaces cannot drift apart.

PostgreSQL refuses a NUL in a text parameter with an error (SQLite stores it), so a NUL that
reached a query would be a 500 on one database and a silent mismatch on the other.
"""

from __future__ import annotations

from datetime import UTC, datetime

from portal.services import ServiceError

NUL_PROBLEM = "must not contain NUL characters"
CONTROL_PROBLEM = "must not contain control characters"
# Times outside these years cannot be stored or shifted by a time zone on every database.
MIN_YEAR, MAX_YEAR = 1970, 9998
# No legitimate filter value or date is longer; the check runs before any parsing.
MAX_TIME_LENGTH = 64


def text_problem(text: str, *, line: bool) -> str | None:
    """Why `text` cannot be used (no NUL; for a single line, no control characters), or None."""
    if "\x00" in text:
        return NUL_PROBLEM
    if line and not text.isprintable():
        return CONTROL_PROBLEM
    return None


def moment_problem(moment: datetime) -> str | None:
    """Why an aware datetime cannot be used (outside MIN_YEAR–MAX_YEAR in UTC), or None."""
    try:
        year = moment.astimezone(UTC).year
    except (OverflowError, ValueError):
        return f"must be between {MIN_YEAR} and {MAX_YEAR}"
    if not MIN_YEAR <= year <= MAX_YEAR:
        return f"must be between {MIN_YEAR} and {MAX_YEAR}"
    return None


def check_line(value: str | None, field: str, label: str, max_length: int) -> str | None:
    """A one-line filter value, or None when empty; ServiceError (`field`) when unusable."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ServiceError(f"{label} must be text", field=field)
    if len(value) > max_length:
        raise ServiceError(f"{label} must be at most {max_length} characters", field=field)
    problem = text_problem(value, line=True)
    if problem:
        raise ServiceError(f"{label} {problem}", field=field)
    return value


def check_moment(moment: datetime | None, field: str, label: str | None = None) -> datetime | None:
    """An aware datetime a query can use, or None; ServiceError (`field`) otherwise."""
    if moment is None:
        return None
    label = label or field
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ServiceError(f"{label} must be a date-time with a time zone", field=field)
    problem = moment_problem(moment)
    if problem:
        raise ServiceError(f"{label} {problem}", field=field)
    return moment


def parse_moment(text: str | None, field: str, label: str, example: str) -> datetime | None:
    """An ISO 8601 date and time typed by a person (no zone means UTC), or None when empty."""
    if not text:
        return None
    try:
        if len(text) > MAX_TIME_LENGTH:
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ServiceError(f"{label} must be a date and time like {example}", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return check_moment(moment, field, label)
