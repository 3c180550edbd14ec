"""The dispatcher owns the outbox core and imports nothing from the portal (issue 12, item 6):
the portal depends on the dispatcher, never the reverse, so a host app can use the outbox
without Hookline's Flask app."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISPATCHER = ROOT / "dispatcher"
# A string that names a portal module or object, as import_string or RQ would take it.
_DOTTED_PORTAL_NAME = re.compile(r"^portal(\.\w+)+(:\w+)?$")


def _portal_references(path: Path) -> list[str]:
    """Every import of `portal` in the file (top level, in functions, under TYPE_CHECKING)
    and every string that is a dotted `portal.…` name, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if _DOTTED_PORTAL_NAME.match(node.value) else []
            found += [f"{node.lineno}: string {name!r}" for name in names]
            continue
        else:
            continue
        found += [
            f"{node.lineno}: import {name}"
            for name in names
            if name == "portal" or name.startswith("portal.")
        ]
    return found


def test_no_dispatcher_module_imports_the_portal() -> None:
    modules = sorted(DISPATCHER.rglob("*.py"))
    assert len(modules) > 20  # the walk found the package

    offenders = {
        str(path.relative_to(ROOT)): refs for path in modules if (refs := _portal_references(path))
    }

    assert offenders == {}


def test_the_check_sees_imports_hidden_in_functions_and_type_checking(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from portal.models import User\n"
        "def later():\n"
        "    import portal.extensions\n"
        "    return 'portal.services.accounts:create_tenant'\n"
        '"""Docstrings may mention portal.config in prose."""\n'
    )

    assert _portal_references(sample) == [
        "3: import portal.models",
        "5: import portal.extensions",
        "6: string 'portal.services.accounts:create_tenant'",
    ]


def test_importing_every_dispatcher_module_loads_no_portal_module() -> None:
    script = (
        "import importlib, pkgutil, sys\n"
        "import dispatcher\n"
        "for info in pkgutil.walk_packages(dispatcher.__path__, 'dispatcher.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m == 'portal' or m.startswith('portal.')))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_plain_import_dispatcher_leaves_the_portal_out() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys, dispatcher; print('portal' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == "False"


def test_the_app_a_worker_builds_carries_no_migration_machinery(tmp_path: Path) -> None:
    """Alembic and Flask-Migrate (11 MiB) load when `flask db` or `flask hookline upgrade` runs,
    not in every process that builds the app, such as each `flask worker`."""
    script = (
        "import sys\n"
        "from portal import create_app\n"
        "app = create_app({'SQLALCHEMY_DATABASE_URI': 'sqlite://',"
        " 'REDIS_URL': 'redis://127.0.0.1:1/0', 'HOOKLINE_INSTANCE_PATH': sys.argv[1]})\n"
        "assert 'db' in app.cli.commands\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'flask_migrate'}))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == "[]"
