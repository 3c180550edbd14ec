"""Ids are the dispatcher's (dispatcher/ids.py); re-exported for portal callers."""

from dispatcher.ids import PREFIXES, id_factory, new_id

__all__ = ["PREFIXES", "id_factory", "new_id"]
