"""The event-type picker's data: catalog types grouped the way filters name them (`group.*`)."""

from __future__ import annotations

from dataclasses import dataclass

from portal.catalog import group_of
from portal.models import EventType
from portal.ui.formatting import group_label


@dataclass(frozen=True)
class PickerGroup:
    """One group of the picker: its wildcard (`invoice.*`), label and types."""

    name: str
    label: str
    types: list[EventType]

    @property
    def wildcard(self) -> str:
        return f"{self.name}.*"


def picker_groups(types: list[EventType]) -> list[PickerGroup]:
    """Types grouped by their group (`group_of`), as the event filter's `group.*` names them."""
    grouped: dict[str, list[EventType]] = {}
    for event_type in types:
        grouped.setdefault(group_of(event_type.name), []).append(event_type)
    return [
        PickerGroup(name=name, label=group_label(name), types=members)
        for name, members in sorted(grouped.items(), key=lambda item: group_label(item[0]).lower())
    ]
