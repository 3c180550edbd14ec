"""`db`: the Flask-SQLAlchemy instance of the current app, whichever app that is.

Hookline never hard-wires a database object. Embedded in a host app it must read and write
through the host's session, so that the host's commit publishes and its rollback leaves nothing;
standalone, `create_app()` registers Hookline's own instance. Either way the app says which one
with `dispatcher.init_app(app, db=...)`, and this proxy looks it up on every use:

    from dispatcher.store import db
    db.session.execute(select(Delivery).where(...))

`db.session`, `db.engine`, `db.select`, … are the registered instance's own attributes. The
lookup is one dict access on `current_app.extensions`; nothing is cached, so many apps (tests
make one per test) each get their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy.orm import Session, scoped_session

EXTENSION = "hookline.db"


def init_app(app: Flask, db: SQLAlchemy) -> None:
    """Make `db` (Flask-SQLAlchemy, already initialised on `app`) the database Hookline uses."""
    if app.extensions.get("sqlalchemy") is not db:
        raise RuntimeError(
            "dispatcher.init_app(app, db=db) needs the app's own Flask-SQLAlchemy instance, "
            "after db.init_app(app): Hookline reads and writes through that instance's session"
        )
    app.extensions[EXTENSION] = db


def registered(app: Flask | None = None) -> SQLAlchemy:
    """The Flask-SQLAlchemy instance registered for `app` (default: the current app)."""
    extensions = (app or current_app).extensions
    try:
        return extensions[EXTENSION]
    except KeyError:
        raise RuntimeError(
            "Hookline has no database in this app: call dispatcher.init_app(app, db=db)"
        ) from None


class _CurrentDatabase:
    """Stands in for the current app's Flask-SQLAlchemy instance (see the module docstring)."""

    __slots__ = ()

    @property
    def session(self) -> scoped_session[Session]:
        """The registered instance's scoped session (the hot path: one lookup, no fallback)."""
        try:
            return current_app.extensions[EXTENSION].session
        except KeyError:
            return registered().session

    def __getattr__(self, name: str) -> Any:
        return getattr(registered(), name)

    def __repr__(self) -> str:
        return "<dispatcher.store.db: the current app's Flask-SQLAlchemy instance>"


db: SQLAlchemy = _CurrentDatabase()  # type: ignore[assignment]  (it behaves as one)
