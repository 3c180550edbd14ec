"""Which events a subscription wants: its type filter, and its optional filter on the data.

The data filter is a JSON object whose keys are dotted paths into the event's `data` (a digit
segment indexes a list) or the logical operators `$and`, `$or` and `$not`:

    {"amount": {"$gte": 100}, "customer.country": {"$in": ["DE", "FR"]},
     "$or": [{"plan": "pro"}, {"seats": {"$gt": 10}}], "$not": {"test": true}}

Every clause must hold; `{}` matches every event. A plain value is equality; an object of
operators compares: `$eq`, `$neq`, `$in`, `$nin`, `$gt`, `$gte`, `$lt`, `$lte` (numbers only),
`$exists` (true or false) and `$startsWith` (text only). A path that is not in the data fails
every operator except `$neq`, `$nin` and `$exists: false`. Numbers compare by value (1 equals
1.0), but true is not 1.

A filter is compiled once into a predicate (`compile_filter`), checked against the limits below
when it is saved, and cached per subscription at publish time (`data_filter_matches`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

MAX_FILTER_BYTES = 4096  # the filter as compact JSON
MAX_DEPTH = 5  # nested objects, `$and`/`$or`/`$not` included
MAX_CONDITIONS = 50  # comparisons in the whole filter
MAX_IN_VALUES = 100  # values in one `$in`/`$nin` list
MAX_PATH_SEGMENTS = 10
MAX_PATH_LENGTH = 200

LOGICAL = ("$and", "$or", "$not")

Predicate = Callable[[Any], bool]
_MISSING = object()


# Hookline's own events about endpoints; `*` leaves them out, so an endpoint receives them only
# when it asks by name or with `endpoint.*` (opt-in, as they are about the platform, not data).
OPERATIONAL_GROUP = "endpoint"
_OPERATIONAL_PREFIX = OPERATIONAL_GROUP + "."  # group_of(t) == OPERATIONAL_GROUP, as a prefix


def group_of(name: str) -> str:
    """An event type's group: the part of its name before the first dot (`invoice.paid` →
    `invoice`). The catalog, the picker, the `group.*` filter check, custom types and the
    operational events all ask this one function."""
    return name.split(".", 1)[0]


def is_operational(event_type: str) -> bool:
    """True for the types Hookline publishes about endpoints (`endpoint.*`)."""
    return event_type.startswith(_OPERATIONAL_PREFIX)


def matches(event_filter: Iterable[str], event_type: str) -> bool:
    """True if `event_type` is selected by a filter of names, `group.*` wildcards or `*` (which
    selects every type but the operational ones)."""
    for pattern in event_filter:
        if pattern == event_type:
            return True
        if pattern == "*" and not is_operational(event_type):
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


class FilterError(ValueError):
    """A data filter that is malformed or too big; `where` names the bad part."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


def compile_filter(spec: Any) -> Predicate:
    """A predicate over an event's `data`, or FilterError naming what is wrong with `spec`."""
    if not isinstance(spec, dict):
        raise FilterError("", "the filter must be a JSON object of paths and operators")
    try:
        size = len(json.dumps(spec, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise FilterError("", "the filter must be plain JSON") from None
    if size > MAX_FILTER_BYTES:
        raise FilterError("", f"the filter is {size} bytes; the limit is {MAX_FILTER_BYTES}")
    budget = [MAX_CONDITIONS]
    return _compile_object(spec, "", 1, budget)


def _join(where: str, part: str) -> str:
    return f"{where}.{part}" if where and not part.startswith("[") else f"{where}{part}"


def _compile_object(spec: Any, where: str, depth: int, budget: list[int]) -> Predicate:
    if not isinstance(spec, dict):
        raise FilterError(where, "expected an object of paths and operators")
    if depth > MAX_DEPTH:
        raise FilterError(where, f"the filter nests deeper than {MAX_DEPTH} levels")
    clauses = [_compile_clause(key, value, where, depth, budget) for key, value in spec.items()]
    if len(clauses) == 1:
        return clauses[0]
    return lambda data: all(clause(data) for clause in clauses)


def _compile_clause(key: Any, value: Any, where: str, depth: int, budget: list[int]) -> Predicate:
    here = _join(where, key)
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise FilterError(here, "expected a non-empty list of filters")
        parts = [
            _compile_object(item, f"{here}[{n}]", depth + 1, budget) for n, item in enumerate(value)
        ]
        if key == "$and":
            return lambda data: all(part(data) for part in parts)
        return lambda data: any(part(data) for part in parts)
    if key == "$not":
        inner = _compile_object(value, here, depth + 1, budget)
        return lambda data: not inner(data)
    if key.startswith("$"):
        raise FilterError(here, f"unknown operator; use one of {', '.join(LOGICAL)} or a path")
    get = _getter(key, here)
    if isinstance(value, dict):
        if depth + 1 > MAX_DEPTH:
            raise FilterError(here, f"the filter nests deeper than {MAX_DEPTH} levels")
        if not value:
            raise FilterError(here, "expected at least one operator")
        tests = [_comparison(op, operand, _join(here, op), budget) for op, operand in value.items()]
        return lambda data: _all_hold(tests, get(data))
    test = _comparison("$eq", value, here, budget)
    return lambda data: test(get(data))


def _all_hold(tests: list[Callable[[Any], bool]], found: Any) -> bool:
    return all(test(found) for test in tests)


def _getter(path: str, where: str) -> Callable[[Any], Any]:
    segments = path.split(".")
    if not path or len(path) > MAX_PATH_LENGTH or "" in segments:
        raise FilterError(where, f"a path is names joined by dots, at most {MAX_PATH_LENGTH} long")
    if len(segments) > MAX_PATH_SEGMENTS:
        raise FilterError(where, f"a path has at most {MAX_PATH_SEGMENTS} segments")

    def get(data: Any) -> Any:
        node = data
        for segment in segments:
            if isinstance(node, dict):
                node = node.get(segment, _MISSING)
                if node is _MISSING:
                    return _MISSING
            elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
            else:
                return _MISSING
        return node

    return get


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(found: Any, expected: Any) -> bool:
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    return found is not _MISSING and found == expected


def _comparison(op: str, operand: Any, where: str, budget: list[int]) -> Callable[[Any], bool]:
    """The test of one operator against the value found at a path (counted against `budget`)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise FilterError(where, f"the filter has more than {MAX_CONDITIONS} conditions")
    build = _OPERATORS.get(op)
    if build is None:
        raise FilterError(where, f"unknown operator; use one of {', '.join(COMPARISONS)}")
    return build(op, operand, where)


def _equality(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda found: _equal(found, operand)
    return lambda found: not _equal(found, operand)


def _membership(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if not isinstance(operand, list) or not operand or len(operand) > MAX_IN_VALUES:
        raise FilterError(where, f"expected a list of 1 to {MAX_IN_VALUES} values")
    if any(isinstance(item, dict | list) for item in operand):
        raise FilterError(where, "the list may hold only text, numbers, booleans and null")
    if op == "$in":
        return lambda found: any(_equal(found, item) for item in operand)
    return lambda found: not any(_equal(found, item) for item in operand)


def _order(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if not _is_number(operand):
        raise FilterError(where, "expected a number")
    compare = _ORDER[op]
    return lambda found: _is_number(found) and compare(found, operand)


def _existence(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if not isinstance(operand, bool):
        raise FilterError(where, "expected true or false")
    return lambda found: (found is not _MISSING) == operand


def _prefix(op: str, operand: Any, where: str) -> Callable[[Any], bool]:
    if not isinstance(operand, str):
        raise FilterError(where, "expected text")
    return lambda found: isinstance(found, str) and found.startswith(operand)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}

# Each comparison operator → what checks its operand and builds its test.
_OPERATORS: dict[str, Callable[[str, Any, str], Callable[[Any], bool]]] = {
    "$eq": _equality,
    "$neq": _equality,
    "$in": _membership,
    "$nin": _membership,
    **dict.fromkeys(_ORDER, _order),
    "$exists": _existence,
    "$startsWith": _prefix,
}
COMPARISONS = tuple(_OPERATORS)

# subscription id → (the filter's JSON text it was compiled from, its predicate). Compared as
# text, not as dicts: in Python {"x": 1} == {"x": True}, but they are different filters.
_compiled: dict[str, tuple[str, Predicate]] = {}
_CACHE_LIMIT = 10_000


def data_filter_matches(subscription_id: str, spec: Any, data: Any) -> bool:
    """True if the subscription's data filter (None: no filter) selects `data`.

    Compiled once per subscription and reused while the row holds the same filter; a filter that
    no longer compiles (saved before a limit tightened) selects nothing rather than everything.
    """
    if spec is None:
        return True
    text = json.dumps(spec, separators=(",", ":"))
    cached = _compiled.get(subscription_id)
    if cached is None or cached[0] != text:
        try:
            predicate = compile_filter(spec)
        except FilterError:
            predicate = _nothing
        if len(_compiled) >= _CACHE_LIMIT:
            _compiled.clear()
        cached = _compiled[subscription_id] = (text, predicate)
    return cached[1](data)


def _nothing(data: Any) -> bool:
    return False
