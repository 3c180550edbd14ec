"""The standalone app's Flask settings, read from the environment with defaults for `make run`.

Hookline's own settings (`REDIS_URL`, `HOOKLINE_*`) are the dispatcher's table
(dispatcher/settings.py), read the same way for the standalone app and for a host app. This
module adds what only the standalone app has: its `SECRET_KEY`, its database (`DATABASE_URL`)
and the Flask settings that follow from them. Development keys are generated once and kept
under instance/ so a second `make run` can still decrypt what the first one stored; tests pass
overrides as a dict to `create_app(config)`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dispatcher.errors import ConfigError
from dispatcher.settings import (
    OPERATOR_KEY_PREFIX,
    Setting,
    Source,
    build,
    config_values,
    parse_operator_keys,
    persisted_key,
)

__all__ = [
    "OPERATOR_KEY_PREFIX",
    "STANDALONE_SETTINGS",
    "ConfigError",
    "engine_options",
    "load_config",
    "parse_operator_keys",
]

# Connecting to PostgreSQL gives up after this many seconds, so a request during an outage is
# answered 503 promptly instead of waiting on the operating system's TCP timeout.
DATABASE_CONNECT_TIMEOUT = 3


def _read_database_url(name: str, source: Source) -> str:
    url = source.text(name) or f"sqlite:///{source.instance_path / 'hookline.db'}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _read_secret_key(name: str, source: Source) -> str:
    return source.text(name) or persisted_key(
        source.instance_path, "secret_key", lambda: secrets.token_hex(32)
    )


# The standalone app's own rows, documented beside the dispatcher's in docs/operations.md (a
# host app has its own SECRET_KEY and database instead).
STANDALONE_SETTINGS = (
    Setting(
        "SECRET_KEY", _read_secret_key, "generated once into `instance/secret_key`",
        "required: 64 random hex characters, the same on every web host",
        "signs the standalone app's Flask sessions and CSRF tokens",
        required_in_production=True,
    ),
    Setting(
        "DATABASE_URL", _read_database_url, "SQLite file `instance/hookline.db`",
        "required: PostgreSQL", "the standalone app's SQLAlchemy URL; `postgresql://…` (or "
        "`postgres://…`) uses psycopg 3",
        required_in_production=True,
    ),
)  # fmt: skip


def load_config(environ: Mapping[str, str], instance_path: Path) -> dict[str, Any]:
    """The standalone app's config from `environ`, refusing an unsafe production setup: its
    SECRET_KEY, database and Flask settings, and Hookline's settings under their names."""
    source = Source({}, environ, instance_path)
    settings = build(
        {},
        environ,
        instance_path,
        also_required={row.name: source.is_set(row.name) for row in STANDALONE_SETTINGS},
    )
    database_url = _read_database_url("DATABASE_URL", source)
    production = settings.production
    return {
        "SECRET_KEY": _read_secret_key("SECRET_KEY", source),
        "SQLALCHEMY_DATABASE_URI": database_url,
        **config_values(settings),
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
    }


def engine_options(database_url: str) -> dict[str, Any]:
    """Pool settings: a ping per checkout finds PostgreSQL connections broken by a restart, and
    a short connect timeout turns an unreachable server into a prompt error (SQLite needs
    neither: it opens a file)."""
    if database_url.startswith("sqlite"):
        return {"pool_pre_ping": False}
    options: dict[str, Any] = {"pool_pre_ping": True}
    if database_url.startswith("postgresql+psycopg://"):
        options["connect_args"] = {"connect_timeout": DATABASE_CONNECT_TIMEOUT}
    return options
