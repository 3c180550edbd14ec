"""Ids are prefixed, URL-safe ULIDs that sort by creation time (cursor pagination relies on it)."""

from __future__ import annotations

import re
import types
from urllib.parse import quote

import pytest

from dispatcher import ids
from dispatcher.ids import PREFIXES, id_factory, new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_SHAPE = re.compile(r"^(?P<prefix>[a-z]+)_(?P<body>[0-9A-HJKMNP-TV-Z]{26})$")


def _timestamp_ms(identifier: str) -> int:
    """The millisecond timestamp in the first ten characters of a ULID body."""
    body = identifier.split("_", 1)[1]
    value = 0
    for char in body[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def _freeze_ms(monkeypatch: pytest.MonkeyPatch, ms: int) -> None:
    """Make `dispatcher.ids` read a fixed wall clock without touching the real `time` module."""
    monkeypatch.setattr(ids, "time", types.SimpleNamespace(time=lambda: ms / 1000))


@pytest.mark.parametrize(("kind", "prefix"), sorted(PREFIXES.items()))
def test_new_id_has_the_kinds_prefix_and_a_26_character_ulid_body(kind: str, prefix: str) -> None:
    identifier = new_id(kind)

    match = ID_SHAPE.match(identifier)
    assert match is not None, identifier
    assert match["prefix"] == prefix
    assert len(match["body"]) == 26


def test_prefixes_are_distinct_and_match_the_design() -> None:
    assert len(set(PREFIXES.values())) == len(PREFIXES)
    assert PREFIXES["subscription"] == "sub"
    assert PREFIXES["event"] == "evt"
    assert PREFIXES["delivery"] == "dlv"


def test_id_factory_makes_fresh_ids_of_its_kind() -> None:
    make = id_factory("event")

    first, second = make(), make()

    assert first.startswith("evt_") and second.startswith("evt_")
    assert first != second


def test_ids_are_url_safe() -> None:
    for kind in PREFIXES:
        identifier = new_id(kind)
        assert quote(identifier, safe="") == identifier


def test_the_body_encodes_the_creation_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze_ms(monkeypatch, 1_727_697_600_123)

    assert _timestamp_ms(new_id("event")) == 1_727_697_600_123


def test_ids_made_later_sort_later(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    for ms in (1_700_000_000_000, 1_700_000_000_001, 1_700_000_001_000, 1_800_000_000_000):
        _freeze_ms(monkeypatch, ms)
        made.extend(new_id("delivery") for _ in range(20))

    # Within one millisecond the random part decides; across milliseconds time always wins.
    assert [_timestamp_ms(i) for i in sorted(made)] == sorted(_timestamp_ms(i) for i in made)
    assert sorted(made)[-20:] == sorted(made[-20:])
    assert sorted(made)[:20] == sorted(made[:20])


def test_ids_from_the_real_clock_sort_by_creation_time() -> None:
    earlier = new_id("event")
    later_batch = []
    while not later_batch or _timestamp_ms(later_batch[-1]) == _timestamp_ms(earlier):
        later_batch.append(new_id("event"))

    assert later_batch[-1] > earlier


def test_ids_do_not_collide_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze_ms(monkeypatch, 1_700_000_000_000)

    made = {new_id("attempt") for _ in range(10_000)}

    assert len(made) == 10_000


def test_ids_one_process_makes_within_a_millisecond_sort_in_the_order_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _freeze_ms(monkeypatch, 1_700_000_000_000)

    made = [new_id("event") for _ in range(1_000)]

    assert sorted(made) == made
