"""The installable package: a wheel built from the sources carries the templates, the static files
(htmx from npm included) and the migrations, and installed into a fresh virtualenv outside the
repository it runs the standalone product from any directory without writing under site-packages.

`installed_wheel` (session-scoped) is the reusable part: the wheel, built from a copy of the
sources, installed with its dependencies into a fresh virtualenv under the session's temp dir,
with a clean environment (no PYTHONPATH, none of the suite's settings) to run its commands in.
The standalone test runs on the venv's defaults (SQLite and keys in the instance folder, the
embedded Redis) whatever DATABASE_URL / REDIS_URL the suite itself runs with.

The embedding test is the acceptance test of the host-app contract (docs/embedding.md): a copy
of examples/platform outside the repository, run by the venv's `flask` and `gunicorn` only, on
SQLite or (with DATABASE_URL) on a PostgreSQL database of its own, driven over real HTTP.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from standardwebhooks import Webhook

from dispatcher.connection import stop_embedded_redis
from portal import create_app
from tests.receiver import Receiver
from tests.support import wait_until

ROOT = Path(__file__).resolve().parent.parent

# Gitignored, fetched from npm by `make assets`: copied into the build explicitly.
NPM_ASSETS = ("portal/static/vendor/htmx.min.js",)

# Settings a developer's shell or the suite (tests/conftest.py) may have set; the venv's
# commands must run on their own defaults.
_SCRUBBED = {
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
}


@dataclass(frozen=True)
class InstalledWheel:
    """The hookline wheel installed in a fresh virtualenv outside the repository."""

    wheel: Path
    venv: Path
    site_packages: Path

    def bin(self, name: str) -> str:
        """The path of a console script (`flask`, `gunicorn`, `python`) in the venv."""
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        """An environment with the venv first on PATH and none of the suite's settings."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _SCRUBBED and not key.startswith(("HOOKLINE_", "FLASK_"))
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Run a command from the venv in `cwd`; its stdout, or a failure showing both streams."""
        result = subprocess.run(
            [self.bin(args[0]), *args[1:]],
            cwd=cwd,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout


def _copy_sources(destination: Path) -> None:
    """What a fresh clone plus `make assets` holds: the files git does not ignore, and the
    npm-fetched assets. A copy, so a stale build/ in the work tree cannot leak into the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in [*listed.split("\0"), *NPM_ASSETS]:
        source = ROOT / name
        if name and source.is_file():  # a tracked file deleted in the work tree is skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())


def _build_wheel(base: Path) -> Path:
    sources, dist = base / "src", base / "dist"
    _copy_sources(sources)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(sources)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # setup.py stops a build without the npm assets with "... missing; run `make assets` ..."
    assert build.returncode == 0, f"building the wheel failed:\n{build.stdout}\n{build.stderr}"
    (wheel,) = dist.glob("hookline-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory) -> InstalledWheel:
    """The wheel built from this tree, installed with its dependencies into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT), "the venv must live outside the repository"
    wheel = _build_wheel(base)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, f"installing the wheel failed:\n{install.stderr}"
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return InstalledWheel(wheel=wheel, venv=venv, site_packages=Path(purelib))


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folder` with its size and modification time."""
    found = {}
    for path in [folder, *folder.rglob("*")]:
        stat = path.lstat()
        found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(installed_wheel: InstalledWheel, tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Start `gunicorn 'portal:create_app()'` from the venv in a directory; returns its URL.
    Stopped (with its worker) afterwards."""
    started: list[subprocess.Popen] = []
    log_path = tmp_path / "gunicorn.log"

    def start(cwd: Path) -> str:
        port = _free_port()
        command = [installed_wheel.bin("gunicorn"), "--bind", f"127.0.0.1:{port}"]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [*command, "--workers", "1", "portal:create_app()"],
                cwd=cwd,
                env=installed_wheel.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        # the port may accept before the worker has loaded the app
        _wait_for_page(f"{url}/healthz", process, log_path)
        return url

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    # A worker still loading the app when the test stopped the embedded Redis starts it again.
    stop_embedded_redis(installed_wheel.venv / "var" / "portal-instance" / "redis.db", save=False)


@pytest.mark.slow
def test_installed_wheel_serves_the_portal_and_writes_nothing_under_site_packages(
    installed_wheel: InstalledWheel, gunicorn, tmp_path: Path
) -> None:
    site_packages = installed_wheel.site_packages
    before = _listing(site_packages)
    work = tmp_path / "work"  # the working directory: outside the repository and the venv
    work.mkdir()
    # Flask's rule for an installed package: <sys.prefix>/var/<package>-instance
    instance = installed_wheel.venv / "var" / "portal-instance"
    flask = ("flask", "--app", "portal")
    try:
        installed_wheel.run(*flask, "db", "upgrade", cwd=work)  # the migrations from the wheel
        installed_wheel.run(*flask, "event-types", "sync", cwd=work)
        tenant = installed_wheel.run(*flask, "tenants", "create", "Acme", cwd=work).split()[-1]
        email, password = "admin@acme.test", "correct horse battery"
        user = ("users", "create", "--tenant", tenant, email, "--password", password)
        installed_wheel.run(*flask, *user, cwd=work)
        report = "from portal import create_app; print(create_app().instance_path)"
        reported = installed_wheel.run("python", "-c", report, cwd=work).strip().splitlines()[-1]
        assert Path(reported) == instance
        assert not instance.resolve().is_relative_to(site_packages.resolve())
        for kept in ("hookline.db", "secret_key", "encryption_key", "redis.sock"):
            assert (instance / kept).exists(), f"{kept} is not in the instance folder"

        url = gunicorn(work)
        browser = requests.Session()
        login = browser.get(f"{url}/login", timeout=10)
        assert login.status_code == 200
        page = login.text
        assert re.search(r'<form method="post" action="/login', page), page
        for name in ("csrf_token", "email", "password"):
            assert f'name="{name}"' in page, f"the login form has no {name} field"
        assert 'src="/static/vendor/htmx.min.js"' in page

        htmx = browser.get(f"{url}/static/vendor/htmx.min.js", timeout=10)
        assert htmx.status_code == 200
        assert "htmx" in htmx.text and len(htmx.content) > 10_000, "not the npm htmx build"
        for asset in ("js/app.js", "css/app.css", "img/favicon.svg"):
            assert browser.get(f"{url}/static/{asset}", timeout=10).status_code == 200, asset

        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token, page
        form = {"csrf_token": token.group(1), "email": email, "password": password}
        signed_in = browser.post(f"{url}/login", data=form, timeout=10)
        assert signed_in.status_code == 200 and "<h1>Dashboard</h1>" in signed_in.text
        assert browser.get(f"{url}/readyz", timeout=10).status_code == 200
    finally:
        stop_embedded_redis(instance / "redis.db", save=False)

    assert list(work.iterdir()) == [], "the working directory got files"
    after = _listing(site_packages)
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    assert changed == [], f"written under site-packages: {changed}"


@pytest.mark.slow
def test_the_wheel_ships_the_runtime_packages_and_not_the_developer_tools(
    installed_wheel: InstalledWheel,
) -> None:
    with zipfile.ZipFile(installed_wheel.wheel) as wheel:
        names = wheel.namelist()
    packages = {name.split("/")[0] for name in names}
    assert {"portal", "dispatcher"} <= packages, packages
    assert "devtools" not in packages, [n for n in names if n.startswith("devtools/")]
    assert "devrun.py" not in {name.rsplit("/", 1)[-1] for name in names}, "devrun.py ships"
    assert not (installed_wheel.site_packages / "devtools").exists()


@pytest.fixture
def no_instance_setting(test_env, monkeypatch):
    """The suite's environment (its database, Redis and keys) without HOOKLINE_INSTANCE_PATH."""
    monkeypatch.delenv("HOOKLINE_INSTANCE_PATH", raising=False)
    return monkeypatch


@pytest.fixture
def no_keys(no_instance_setting):
    """No keys either, so a development app generates them into the instance folder it picked."""
    for name in ("SECRET_KEY", "HOOKLINE_ENCRYPTION_KEY", "HOOKLINE_ENCRYPTION_KEYS"):
        no_instance_setting.delenv(name, raising=False)
    return no_instance_setting


def test_source_checkout_keeps_its_instance_folder_beside_the_sources(no_instance_setting):
    app = create_app({"TESTING": True})
    assert app.instance_path == str(ROOT / "instance")
    assert app.config["HOOKLINE_INSTANCE_PATH"] == str(ROOT / "instance")


def test_instance_path_from_the_environment_is_relative_to_the_working_directory(no_keys, tmp_path):
    no_keys.chdir(tmp_path)
    no_keys.setenv("HOOKLINE_INSTANCE_PATH", "var/hookline")
    app = create_app({"TESTING": True})
    instance = tmp_path / "var" / "hookline"
    assert app.instance_path == str(instance)
    assert app.config["HOOKLINE_INSTANCE_PATH"] == str(instance)
    assert (instance / "secret_key").is_file() and (instance / "encryption_key").is_file()


def test_instance_path_in_the_config_overrides_the_environment(no_keys, tmp_path):
    no_keys.setenv("HOOKLINE_INSTANCE_PATH", str(tmp_path / "from-env"))
    app = create_app({"TESTING": True, "HOOKLINE_INSTANCE_PATH": str(tmp_path / "from-config")})
    assert app.instance_path == str(tmp_path / "from-config")
    assert (tmp_path / "from-config" / "secret_key").is_file()
    assert not (tmp_path / "from-env").exists()


# --- the embedding contract through the wheel: examples/platform as the host app -------------

EMBED_DATABASE = "hl_wheel_embed"  # PostgreSQL: a database of this test's own, dropped after
EXAMPLE_APP = "examples.platform.app"
HOST_TABLES = {"organizations", "users", "invoices", "payments", "emails"}
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_ORG_ID = re.compile(r"Organization id <code>(org_[0-9a-f]+)</code>")
_INVOICE_ID = re.compile(r"<code>(inv_[0-9a-f]+)</code>")


@pytest.fixture
def embed_database(installed_wheel: InstalledWheel, tmp_path: Path) -> Iterator[str]:
    """The host app's database URL: an SQLite file, or, when the suite runs on PostgreSQL
    (DATABASE_URL), a fresh database of its own on that server (psycopg added to the venv)."""
    suite_url = os.environ.get("DATABASE_URL")
    if not suite_url:
        yield f"sqlite:///{tmp_path / 'platform.db'}"
        return
    from sqlalchemy import create_engine, make_url, text

    install = subprocess.run(
        [installed_wheel.bin("python"), "-m", "pip", "install", "-q", "psycopg[binary]>=3.1,<4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, f"installing psycopg failed:\n{install.stderr}"
    server = make_url(suite_url).set(drivername="postgresql+psycopg")
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {EMBED_DATABASE} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {EMBED_DATABASE}"))
    try:
        yield server.set(database=EMBED_DATABASE).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {EMBED_DATABASE} WITH (FORCE)"))
        admin.dispose()


class Background:
    """Long-running commands, each in its own process group with its output in <name>.log."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], cwd: Path, env: dict[str, str]):
        with self.log(name).open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def stop_all(self) -> None:
        """SIGTERM each group (SIGKILL after 15 s); safe to call again."""
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Background]:
    """Start commands in the background; whatever is still running is stopped afterwards."""
    processes = Background(tmp_path)
    yield processes
    processes.stop_all()


def _copy_example(destination: Path) -> None:
    """examples/platform as a platform team would have it: its files, in a directory of its own."""
    source = ROOT / "examples"
    for path in [source / "__init__.py", *(source / "platform").rglob("*")]:
        if path.is_file() and "__pycache__" not in path.parts and "instance" not in path.parts:
            target = destination / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def _wait_for_page(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait up to 30 s for `url` to answer 200, failing at once if `process` exits (the
    process's log if it never answers)."""

    def answers() -> bool:
        if process.poll() is not None:
            pytest.fail(f"exited {process.returncode} before {url} answered:\n{log.read_text()}")
        try:  # the first request may start the embedded Redis: give it a few seconds
            return requests.get(url, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(answers, 30, interval=0.2, what=lambda: f"{url} to answer:\n{log.read_text()}")


@dataclass
class HostBrowser:
    """One organization's browser on the host app, over real HTTP with a cookie session."""

    url: str
    org_id: str
    session: requests.Session

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=10, allow_redirects=False)

    def form_post(self, path: str, **data: str) -> requests.Response:
        """POST one of the host's forms with the CSRF token its dashboard carries."""
        data["csrf_token"] = _FORM_TOKEN.search(self.get("/dashboard").text).group(1)
        return self.session.post(f"{self.url}{path}", data=data, timeout=10, allow_redirects=False)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """The JSON API with the host's session and the CSRF token of the portal's pages."""
        token = _META_TOKEN.search(self.get("/webhooks/endpoints").text).group(1)
        return self.session.request(
            method,
            f"{self.url}/api/v1/webhooks{path}",
            headers={"X-CSRFToken": token},
            timeout=10,
            **kwargs,
        )

    def invoice_ids(self) -> list[str]:
        return _INVOICE_ID.findall(self.get("/dashboard").text)


def _sign_up(url: str, name: str, email: str) -> HostBrowser:
    """Sign up through the host's own form (which makes the Hookline tenant)."""
    session = requests.Session()
    token = _FORM_TOKEN.search(session.get(f"{url}/signup", timeout=10).text).group(1)
    form = {"organization": name, "email": email, "password": "correct horse", "csrf_token": token}
    answer = session.post(f"{url}/signup", data=form, timeout=10, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    org_id = _ORG_ID.search(session.get(f"{url}/dashboard", timeout=10).text).group(1)
    return HostBrowser(url, org_id, session)


def _table_names(database_url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_host_app_on_the_installed_wheel_publishes_in_its_transactions_and_keeps_tenants_apart(
    installed_wheel: InstalledWheel,
    embed_database: str,
    background: Background,
    receiver,
    tmp_path: Path,
) -> None:
    site = tmp_path / "platform-team"  # outside the repository, as a host's checkout would be
    _copy_example(site)
    instance = tmp_path / "instance"
    env = installed_wheel.env(PLATFORM_INSTANCE_PATH=str(instance))
    if embed_database.startswith("sqlite"):  # the example's default: SQLite in its instance
        embed_database = f"sqlite:///{instance / 'platform.db'}"
    else:
        env["DATABASE_URL"] = embed_database
    where = "import portal, examples.platform as p; print(portal.__file__); print(p.__file__)"
    portal_file, example_file = installed_wheel.run(
        "python", "-c", where, cwd=site, env=env
    ).split()
    assert Path(portal_file).is_relative_to(installed_wheel.site_packages), portal_file
    assert Path(example_file).is_relative_to(site), example_file

    flask = ("flask", "--app", EXAMPLE_APP)
    try:
        upgraded = installed_wheel.run(*flask, "hookline", "upgrade", cwd=site, env=env)
        assert "event types added" in upgraded, upgraded
        installed_wheel.run(*flask, "hookline", "upgrade", cwd=site, env=env)  # idempotent
        installed_wheel.run(*flask, "create-tables", cwd=site, env=env)
        tables = _table_names(embed_database)
        assert tables >= HOST_TABLES, tables  # the host's tables and Hookline's: one database
        assert {name for name in tables - HOST_TABLES if not name.startswith("hookline_")} == set()

        port = _free_port()
        gunicorn = [installed_wheel.bin("gunicorn"), "--bind", f"127.0.0.1:{port}"]
        web = background.start(
            "web", [*gunicorn, "--workers", "2", f"{EXAMPLE_APP}:create_app()"], site, env
        )
        worker = [installed_wheel.bin("flask"), *flask[1:], "hookline", "worker"]
        background.start("worker", worker, site, env)
        url = f"http://127.0.0.1:{port}"
        _wait_for_page(f"{url}/login", web, background.log("web"))
        _drive_the_example(url, receiver, background.log("worker"))
    finally:
        background.stop_all()  # the web app and the worker first, then their embedded Redis
        stop_embedded_redis(instance / "redis.db", save=False)


def _drive_the_example(url: str, receiver: Receiver, worker_log: Path) -> None:
    """Sign-up, an endpoint, a refused invoice, a paid one, then who sees what."""
    acme = _sign_up(url, "Acme", "ada@acme.test")
    globex = _sign_up(url, "Globex", "hank@globex.test")
    created = acme.api(
        "POST", "/subscriptions", json={"url": receiver.url("/acme"), "events": ["invoice.*"]}
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()

    # A rollback first: billing publishes invoice.created, then the address is refused.
    assert acme.form_post("/invoices", customer_email="no address", amount="5").status_code == 303
    assert acme.invoice_ids() == []
    assert (
        acme.form_post("/invoices", customer_email="ap@shop.test", amount="129").status_code == 303
    )
    (invoice_id,) = acme.invoice_ids()
    paid = acme.form_post(f"/invoices/{invoice_id}/pay", card_number="4242424242424242")
    assert paid.status_code == 303

    got = receiver.wait_for(2, "/acme", timeout=30)

    def all_delivered() -> list[dict] | None:
        deliveries = acme.api("GET", "/deliveries").json()["data"]
        return deliveries if all(d["status"] == "succeeded" for d in deliveries) else None

    # Once the worker has recorded every delivery there is as succeeded, nothing else is to come.
    deliveries = wait_until(
        all_delivered,
        30,
        interval=0.2,
        what=lambda: f"the worker to record both deliveries:\n{worker_log.read_text()}",
    )
    assert len(deliveries) == 2, deliveries
    assert len(receiver.received()) == 2, worker_log.read_text()
    bodies = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in got]
    assert sorted(body["type"] for body in bodies) == ["invoice.created", "invoice.paid"]
    assert {body["tenant_id"] for body in bodies} == {acme.org_id}
    assert {body["data"]["invoice_id"] for body in bodies} == {invoice_id}
    events = acme.api("GET", "/events").json()["data"]
    assert len(events) == 5, events  # the paid invoice's five; nothing of the refused one

    anonymous = requests.get(f"{url}/webhooks/", timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].endswith("/login?next=%2Fwebhooks%2F")
    listed = acme.get("/webhooks/endpoints")
    assert listed.status_code == 200 and receiver.url("/acme") in listed.text
    page = f"/webhooks/endpoints/{endpoint['id']}"
    assert acme.get(page).status_code == 200
    assert globex.get(page).status_code == 404
    assert globex.api("GET", f"/subscriptions/{endpoint['id']}").status_code == 404
    assert receiver.url("/acme") not in globex.get("/webhooks/endpoints").text
