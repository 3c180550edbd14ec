"""Hookline's tables: the Alembic migrations that ship inside the package.

`flask hookline upgrade` (any host) and `flask db upgrade` (the standalone app, through
Flask-Migrate) run the same migrations; they keep their own version table, so a host's own
Alembic history is never read or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where it is used: a worker never migrates, and it is 11 MiB.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """Alembic's configuration for Hookline's migrations (the app gives the database)."""
    from alembic.config import Config

    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Migrate Hookline's tables in the current app's database to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    """Take Hookline's tables in the current app's database back to `revision`."""
    from alembic import command

    command.downgrade(alembic_config(), revision)
