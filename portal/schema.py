"""Hookline's tables: the Alembic migrations that ship inside the package.

`flask hookline upgrade` (any host) and `flask db upgrade` (the standalone app, through
Flask-Migrate) run the same migrations; they keep their own version table, so a host's own
Alembic history is never read or written.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Alembic's configuration for Hookline's migrations (the app gives the database)."""
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Migrate Hookline's tables in the current app's database to `revision`."""
    command.upgrade(alembic_config(), revision)
