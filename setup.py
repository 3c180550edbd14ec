"""Refuses to build a wheel without the front-end files that `make assets` fetches from npm.

Everything else about the package is in pyproject.toml. htmx is not in the repository (it comes
from npm at build time), and a wheel built without it would serve a portal whose every button
is dead, so the build stops and says what to run instead.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("portal/static/vendor/htmx.min.js",)


class BuildPyWithAssets(build_py):
    """build_py that checks the npm-fetched assets are present (editable installs need not)."""

    def run(self) -> None:
        """Fail with the command to run when an asset is missing, then build as usual."""
        here = Path(__file__).resolve().parent
        missing = [name for name in ASSETS if not (here / name).is_file()]
        if missing and not getattr(self, "editable_mode", False):
            raise SystemExit(
                f"error: {', '.join(missing)} missing; run `make assets` (it fetches them "
                "from npm) before building the wheel"
            )
        super().run()


setup(cmdclass={"build_py": BuildPyWithAssets})
