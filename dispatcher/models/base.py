"""The declarative base of every Hookline table.

A plain SQLAlchemy base, bound to no Flask-SQLAlchemy instance: the standalone app's `db` is
built on it (`SQLAlchemy(model_class=Base)`), and a host app's own `db` reads and writes these
models through its session just the same (tables of a metadata without a bind key go to the
session's default engine). One metadata, one set of migrations.
"""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base shared by every model."""
