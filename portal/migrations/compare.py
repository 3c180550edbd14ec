"""How autogenerate (and the test that the database matches the models) compares column types.

SQLite does not enforce a varchar's length, and Hookline's migrations do not rebuild SQLite
tables to change one (see revision 8d2f6a1c3e54): there a String column matches whatever its
length. Everything else is compared as Alembic does by default.
"""

from __future__ import annotations

import sqlalchemy as sa


def compare_type(context, inspected_column, metadata_column, inspected_type, metadata_type):
    """False (the same) for two strings on SQLite; None (Alembic's own comparison) otherwise."""
    if (
        context.dialect.name == "sqlite"
        and isinstance(inspected_type, sa.String)
        and isinstance(metadata_type, sa.String)
    ):
        return False
    return None
