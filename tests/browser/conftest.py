"""Browser fixtures: the portal on a real server thread, a `flask worker` process, and
Debian's headless Chromium driven by Playwright.

Without /usr/bin/chromium (or Playwright) these tests skip, unless HOOKLINE_REQUIRE_BROWSER=1
(CI), where a missing browser is a failure: `require_browser()` decides, for every test that
drives Chromium (tests/hardening/test_csp_in_browser.py too).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.ui.conftest import Admin, make_admin

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    """Everything in this folder is a browser test (and can be deselected with -m 'not browser')."""
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


def require_browser() -> None:
    """Skip the calling test when Chromium or Playwright is missing, or fail it when
    HOOKLINE_REQUIRE_BROWSER=1 says that the browser tests must run."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package")
    if not missing:
        return
    message = f"{' and '.join(missing)} missing"
    if os.environ.get("HOOKLINE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"HOOKLINE_REQUIRE_BROWSER=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class QuietHandler(WSGIRequestHandler):
    """No access log lines in the test output."""

    def log_request(self, *args, **kwargs) -> None:
        pass


class LiveServer:
    """The test's app served by werkzeug on a loopback port, in a thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def portal_server(app) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def worker(app, test_env, tmp_path) -> Iterator[subprocess.Popen]:
    """A real `flask worker` process on the test database and Redis (sweeping every second).

    One retry one second after a failure keeps the journey short while still showing a
    scheduled retry before a delivery is marked failed.
    """
    log = (tmp_path / "worker.log").open("wb")
    env = {
        **os.environ,
        "FLASK_APP": "wsgi.py",
        "HOOKLINE_SWEEP_INTERVAL": "1",
        "HOOKLINE_RETRY_SCHEDULE": "1",
        "HOOKLINE_DELIVERY_TIMEOUT": "5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    log.close()


@pytest.fixture
def admin(app) -> Admin:
    return make_admin("Acme", "admin@acme.test")


@pytest.fixture
def open_page(browser, portal_server):
    """Open a fresh browser context (its own cookies) at a viewport; closes them afterwards.

    Any JavaScript dialog (an `alert` from injected markup), page error or console error (a
    Content-Security-Policy violation, a failed script) fails the test.
    """
    contexts = []
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message) -> None:
        # Refused pages (the 400s and 404s the tests provoke) are checked by the tests.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    expected: set[int] = set()  # statuses a test provokes on purpose (an outage's 503)

    def on_response(response) -> None:
        # Documents and the tests' own fetch() probes are refused on purpose; an asset or an
        # HTMX request (xhr) that fails is a bug.
        provoked = response.request.resource_type in {"document", "fetch"}
        if response.status >= 400 and not provoked and response.status not in expected:
            errors.append(f"{response.status} for {response.url}")

    def open_(width: int = 1280, height: int = 900, expect_statuses: tuple[int, ...] = ()):
        expected.update(expect_statuses)
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=portal_server.url
        )
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", on_console)
        page.on("response", on_response)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert dialogs == [], f"JavaScript dialogs opened: {dialogs}"
    assert errors == [], f"errors in the browser console: {errors}"


def sign_in(page, admin: Admin) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/login")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot for the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
