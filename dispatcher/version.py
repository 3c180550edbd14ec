"""Hookline's version, written once: `version` in pyproject.toml.

An installed Hookline (the wheel, or `pip install -e .`) reads it from the package metadata; a
source checkout that was never installed reads pyproject.toml itself.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _read() -> str:
    try:
        return version("hookline")
    except PackageNotFoundError:  # running from a checkout that was not installed
        return tomllib.loads(PYPROJECT.read_text())["project"]["version"]


VERSION = _read()
