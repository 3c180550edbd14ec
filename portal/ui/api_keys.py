"""API keys: create (the key is shown once, in the response, never stored or flashed), revoke."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, url_for
from werkzeug.wrappers import Response

from dispatcher.store import db
from portal.services import ServiceError, accounts
from portal.ui.common import protect, render, tenant_id
from portal.ui.forms import ApiKeyForm

bp = protect(Blueprint("api_keys", __name__, url_prefix="/api-keys"))


def _page(form: ApiKeyForm, status: int = 200, **extra) -> Response:
    response = make_response(
        render(
            "hookline/api_keys/index.html",
            keys=accounts.list_api_keys(tenant_id()),
            form=form,
            **extra,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
def index() -> Response:
    """The tenant's keys with their prefixes, last use and state."""
    return _page(ApiKeyForm())


@bp.post("")
def create() -> Response:
    """Make a key and show it this once (the page is not cached and the key is not kept)."""
    form = ApiKeyForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        row, key = accounts.create_api_key(tenant_id(), form.name.data)
    except ServiceError as exc:
        db.session.rollback()
        return _page(form, 400, error=exc.message)
    db.session.commit()
    return _page(ApiKeyForm(formdata=None), created=row, new_key=key)


@bp.post("/<key_id>/revoke")
def revoke(key_id: str) -> Response:
    """Revoke a key; programs using it get 401 from now on."""
    row = accounts.revoke_api_key(tenant_id(), key_id)
    db.session.commit()
    flash(f"API key {row.name} revoked.", "success")
    return redirect(url_for("ui.api_keys.index"))
