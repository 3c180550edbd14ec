"""Helpers every kind of test uses: waiting for something to happen, and changing a setting."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from flask import Flask

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    *,
    interval: float = 0.05,
    what: str | Callable[[], str] = "the condition",
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and return
    that; fail the test after `timeout` seconds, saying what never happened (`what` may be a
    function, called only then, for a report of the state at the end)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {described}")
        time.sleep(interval)


def configure(app: Flask, **values: Any) -> None:
    """Change settings of an app that is already built, as `create_app({...})` would have set
    them: into `app.config`, and then read again (the app reads its settings once, at init)."""
    # Imported here, not at the top: tests/servers.py and tests/receiver.py use wait_until, and
    # the servers they start in subprocesses should not pay for importing the product.
    from dispatcher import settings

    app.config.update(values)
    instance = Path(app.config.get("HOOKLINE_INSTANCE_PATH") or app.instance_path)
    settings.init_app(app, os.environ, instance)
