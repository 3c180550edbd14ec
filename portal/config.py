"""Settings read from the environment, with defaults that suit `make run`.

Every setting has an environment variable (see README.md); tests pass overrides as a dict to
`create_app(config)`. Development keys are generated once and kept under instance/ so a second
`make run` can still decrypt what the first one stored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from dispatcher import signing
from dispatcher.connection import ConfigError

__all__ = ["ConfigError", "host_settings", "load_config"]

# Production must name its servers: no key is generated, no embedded Redis is started.
PRODUCTION_REQUIRED = ("SECRET_KEY", "HOOKLINE_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL")
# A required setting another name may supply instead: the list form of the encryption keys.
PRODUCTION_ALTERNATIVES = {"HOOKLINE_ENCRYPTION_KEY": "HOOKLINE_ENCRYPTION_KEYS"}
MAKE_FERNET_KEY = (
    'make one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)
# Connecting to PostgreSQL gives up after this many seconds, so a request during an outage is
# answered 503 promptly instead of waiting on the operating system's TCP timeout.
DATABASE_CONNECT_TIMEOUT = 3


def parse_bool(value: str | None, default: bool, name: str = "the setting") -> bool:
    """Read a boolean setting: 1/true/yes/on or 0/false/no/off."""
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def parse_int(name: str, value: str | None, default: int, minimum: int = 0) -> int:
    """Read a whole-number setting no smaller than `minimum`."""
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def parse_schedule(value: str | None) -> list[int]:
    """Read HOOKLINE_RETRY_SCHEDULE: comma-separated seconds before each retry (may be empty)."""
    if value is None:
        return [300, 3600, 21600]
    parts = [part.strip() for part in value.split(",") if part.strip()]
    try:
        schedule = [int(part) for part in parts]
    except ValueError:
        raise ConfigError(
            f"HOOKLINE_RETRY_SCHEDULE must be comma-separated seconds, got {value!r}"
        ) from None
    if any(seconds < 0 for seconds in schedule):
        raise ConfigError("HOOKLINE_RETRY_SCHEDULE must not contain negative delays")
    return schedule


def _persisted_key(instance_path: Path, filename: str, make: Any) -> str:
    """Return the key kept in instance/<filename>, generating it on first use."""
    path = instance_path / filename
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = make()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def _missing_in_production(environ: Mapping[str, str]) -> list[str]:
    """The required settings `environ` lacks, each named as the operator would set it."""
    missing = []
    for name in PRODUCTION_REQUIRED:
        alternative = PRODUCTION_ALTERNATIVES.get(name)
        if any((environ.get(n) or "").strip() for n in (name, alternative) if n):
            continue
        missing.append(f"{alternative} (or {name})" if alternative else name)
    return missing


def parse_encryption_keys(environ: Mapping[str, str], instance_path: Path) -> tuple[str, ...]:
    """The Fernet keys, newest (the encrypting one) first: HOOKLINE_ENCRYPTION_KEYS (comma-
    separated), else HOOKLINE_ENCRYPTION_KEY, else (development) the key kept in instance/.

    Both may be set only if HOOKLINE_ENCRYPTION_KEY is the list's first key. An error names a
    bad key by its position, never by its value."""
    listed = (environ.get("HOOKLINE_ENCRYPTION_KEYS") or "").strip()
    single = (environ.get("HOOKLINE_ENCRYPTION_KEY") or "").strip()
    if not listed:
        key = single or _persisted_key(
            instance_path, "encryption_key", lambda: Fernet.generate_key().decode()
        )
        if not _is_fernet_key(key):
            raise ConfigError(
                "HOOKLINE_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64-encoded "
                f"bytes); {MAKE_FERNET_KEY}"
            )
        return (key,)
    keys = tuple(part.strip() for part in listed.split(","))
    for position, key in enumerate(keys, start=1):
        if not _is_fernet_key(key):
            raise ConfigError(
                "HOOKLINE_ENCRYPTION_KEYS must be comma-separated Fernet keys (32 url-safe "
                f"base64-encoded bytes each), newest first; key {position} of {len(keys)} "
                f"{'is empty' if not key else 'is not one'}; {MAKE_FERNET_KEY}"
            )
    return signing.encryption_keys(
        {"HOOKLINE_ENCRYPTION_KEYS": keys, "HOOKLINE_ENCRYPTION_KEY": single}
    )


# Operator keys (service mode) start with this; tenant API keys start with "hl_".
OPERATOR_KEY_PREFIX = "hlop_"
_OPERATOR_KEY = re.compile(r"^hlop_[A-Za-z0-9_-]{32,195}$")


def parse_operator_keys(value: str | None) -> tuple[str, ...]:
    """HOOKLINE_OPERATOR_KEYS: comma-separated operator keys, each `hlop_` and at least 32
    letters, digits, '-' or '_'. An error names a bad key by its position, never its value."""
    keys = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    for position, key in enumerate(keys, start=1):
        if not _OPERATOR_KEY.match(key):
            raise ConfigError(
                f"HOOKLINE_OPERATOR_KEYS: key {position} of {len(keys)} is not "
                f"'{OPERATOR_KEY_PREFIX}' and 32 to 195 letters, digits, '-' or '_'; make one "
                "with: python -c "
                "\"import secrets; print('hlop_' + secrets.token_urlsafe(32))\""
            )
    return keys


def _is_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


def load_config(environ: Mapping[str, str], instance_path: Path) -> dict[str, Any]:
    """Build the app's settings from `environ`, refusing an unsafe production setup."""
    env = environ.get("HOOKLINE_ENV", "development").strip().lower() or "development"
    if env not in {"development", "production"}:
        raise ConfigError(f"HOOKLINE_ENV must be 'development' or 'production', got {env!r}")
    production = env == "production"
    if production:
        missing = _missing_in_production(environ)
        if missing:
            raise ConfigError(
                "HOOKLINE_ENV=production needs these environment variables set: "
                + ", ".join(missing)
            )

    secret_key = environ.get("SECRET_KEY") or _persisted_key(
        instance_path, "secret_key", lambda: secrets.token_hex(32)
    )
    encryption_keys = parse_encryption_keys(environ, instance_path)

    database_url = environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'hookline.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    return {
        "HOOKLINE_ENV": env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": (environ.get("REDIS_URL") or "").strip() or None,
        "HOOKLINE_EMBEDDED_REDIS_PATH": str(instance_path / "redis.db"),
        # Every key decrypts, the first encrypts; the single name stays for code that reads it.
        "HOOKLINE_ENCRYPTION_KEYS": encryption_keys,
        "HOOKLINE_ENCRYPTION_KEY": encryption_keys[0],
        "HOOKLINE_RETRY_SCHEDULE": parse_schedule(environ.get("HOOKLINE_RETRY_SCHEDULE")),
        "HOOKLINE_DELIVERY_TIMEOUT": parse_int(
            "HOOKLINE_DELIVERY_TIMEOUT", environ.get("HOOKLINE_DELIVERY_TIMEOUT"), 15, minimum=1
        ),
        "HOOKLINE_CONNECT_TIMEOUT": 5,
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": parse_bool(
            environ.get("HOOKLINE_ALLOW_PRIVATE_TARGETS"),
            default=not production,
            name="HOOKLINE_ALLOW_PRIVATE_TARGETS",
        ),
        "HOOKLINE_HTTPS_ONLY": production,
        "HOOKLINE_MAX_PAYLOAD_BYTES": parse_int(
            "HOOKLINE_MAX_PAYLOAD_BYTES", environ.get("HOOKLINE_MAX_PAYLOAD_BYTES"), 262144, 1
        ),
        "HOOKLINE_RETENTION_DAYS": parse_int(
            "HOOKLINE_RETENTION_DAYS", environ.get("HOOKLINE_RETENTION_DAYS"), 30, minimum=1
        ),
        "HOOKLINE_DISABLE_AFTER_SECONDS": parse_int(
            "HOOKLINE_DISABLE_AFTER_SECONDS",
            environ.get("HOOKLINE_DISABLE_AFTER_SECONDS"),
            432000,
            minimum=60,
        ),
        "HOOKLINE_WORKER_CONCURRENCY": parse_int(
            "HOOKLINE_WORKER_CONCURRENCY", environ.get("HOOKLINE_WORKER_CONCURRENCY"), 64, 1
        ),
        # The ceiling of each endpoint's adaptive in-flight limit, per worker process.
        "HOOKLINE_ENDPOINT_CONCURRENCY": parse_int(
            "HOOKLINE_ENDPOINT_CONCURRENCY", environ.get("HOOKLINE_ENDPOINT_CONCURRENCY"), 64, 1
        ),
        # Sends slower than a second stop counting against HOOKLINE_WORKER_CONCURRENCY; a
        # worker holds at most this many of them (hanging receivers cost a thread, not a slot).
        "HOOKLINE_SLOW_SEND_CAPACITY": parse_int(
            "HOOKLINE_SLOW_SEND_CAPACITY", environ.get("HOOKLINE_SLOW_SEND_CAPACITY"), 128, 0
        ),
        "HOOKLINE_BREAKER_FAILURES": parse_int(
            "HOOKLINE_BREAKER_FAILURES", environ.get("HOOKLINE_BREAKER_FAILURES"), 5, 1
        ),
        "HOOKLINE_BREAKER_MAX_PAUSE": parse_int(
            "HOOKLINE_BREAKER_MAX_PAUSE", environ.get("HOOKLINE_BREAKER_MAX_PAUSE"), 300, 1
        ),
        "HOOKLINE_DRAIN_BUDGET": 10,
        "HOOKLINE_SWEEP_INTERVAL": parse_int(
            "HOOKLINE_SWEEP_INTERVAL", environ.get("HOOKLINE_SWEEP_INTERVAL"), 15, minimum=1
        ),
        "HOOKLINE_QUEUE_PREFIX": environ.get("HOOKLINE_QUEUE_PREFIX", "hookline"),
        "HOOKLINE_TRUSTED_PROXIES": parse_int(
            "HOOKLINE_TRUSTED_PROXIES", environ.get("HOOKLINE_TRUSTED_PROXIES"), 0, minimum=0
        ),
        "HOOKLINE_OPERATOR_KEYS": parse_operator_keys(environ.get("HOOKLINE_OPERATOR_KEYS")),
        "SESSION_COOKIE_SECURE": production,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
    }


def _is_hookline_key(key: str) -> bool:
    return key.startswith("HOOKLINE_") or key == "REDIS_URL"


def _as_text(value: Any) -> str:
    """A configured value as the environment would spell it, for the same parsers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def host_settings(
    app_config: Mapping[str, Any], environ: Mapping[str, str], instance_path: Path
) -> dict[str, Any]:
    """Hookline's settings (`HOOKLINE_*`, `REDIS_URL`) for an app that embeds it: the app's
    own config first, then the environment, then the defaults, with the same parsing and the
    same production guards as the standalone app (the host's SECRET_KEY and database count as
    set). A value the app set with its proper type is kept as it is; text is parsed."""
    source = dict(environ)
    for key, value in app_config.items():
        if _is_hookline_key(key) and value is not None:
            source[key] = _as_text(value)
    source["SECRET_KEY"] = _as_text(app_config.get("SECRET_KEY")) or source.get("SECRET_KEY", "")
    database = app_config.get("SQLALCHEMY_DATABASE_URI")
    if database:
        source["DATABASE_URL"] = str(database)
    derived = load_config(source, instance_path)
    settings = {}
    for key, value in derived.items():
        if not _is_hookline_key(key):
            continue
        given = app_config.get(key)
        settings[key] = given if given is not None and not isinstance(given, str) else value
    return settings


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
