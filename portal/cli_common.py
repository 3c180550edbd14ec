"""What every Hookline command shares: a service call is one unit of work, and a refusal is a
one-line `Error: …` with nothing written (never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from dispatcher.store import db
from portal.models import ApiKey, OperatorKey
from portal.services import NotFound, ServiceError


def fail(message: str) -> NoReturn:
    """End the command with `Error: message`, having written nothing."""
    db.session.rollback()
    raise click.ClickException(message)


def show_new_key(row: ApiKey | OperatorKey, key: str) -> None:
    """Say which key was made, then print the key itself alone on the last line (the one time
    it is shown: only its hash is stored)."""
    click.echo(f"created {row.prefix}… ({row.id}); store this key now, it is not shown again:")
    click.echo(key)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit what the block's service calls wrote; a refusal (the services' ServiceError or
    NotFound, with the message the API and the portal show too) ends the command instead."""
    try:
        yield
    except (ServiceError, NotFound) as exc:
        fail(str(exc))
    db.session.commit()
