"""Single-use sign-in links (service mode): `GET <portal>/sign-in/<token>`.

An operator mints a link for one tenant (POST /api/v1/operator/tenants/{id}/portal-links); the
first browser to open it is signed in to that tenant's portal, as a principal that is no
Hookline user: `link:<link id>`, resolved on every request to the link's tenant while the
link's session lasts (portal.services.operator.LINK_SESSION_LIFETIME).
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, g, redirect, render_template, session, url_for
from flask_login import UserMixin, login_user
from werkzeug.wrappers import Response

from portal.services import operator
from portal.ui.forms import LoginForm

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)

PRINCIPAL_PREFIX = "link:"
REFUSALS = {
    "unknown": (400, "That sign-in link is not valid. Ask for a new link, or sign in below."),
    "used": (410, "That sign-in link has been used already. Ask for a new link, or sign in below."),
    "expired": (410, "That sign-in link has expired. Ask for a new link, or sign in below."),
}


class LinkPrincipal(UserMixin):
    """Whoever opened a sign-in link: scoped to its tenant, with no email and no password."""

    email = None
    signed_in_by_link = True

    def __init__(self, link_id: str, tenant_id: str) -> None:
        self.id = PRINCIPAL_PREFIX + link_id
        self.tenant_id = tenant_id


def load_principal(user_id: str) -> LinkPrincipal | None:
    """The principal of a `link:<id>` session, or None once its session has ended."""
    link = operator.link_session(user_id.removeprefix(PRINCIPAL_PREFIX))
    return None if link is None else LinkPrincipal(link.id, link.tenant_id)


@bp.get("/sign-in/<token>")
def sign_in(token: str) -> Response | tuple[str, int]:
    """Spend the link and sign this browser in to its tenant's portal, in a fresh session
    (whoever was signed in before is signed out); a spent or unknown link shows the sign-in
    page with the reason."""
    if not operator.service_mode():
        abort(404)  # links are the operator API's (embedded, the host's login names the tenant)
    try:
        link = operator.consume_link(token)
    except operator.LinkRefused as refused:
        log.info("sign-in link refused: %s", refused.reason)
        status, message = REFUSALS[refused.reason]
        page = render_template("hookline/auth/login.html", form=LoginForm(), error=message)
        return page, status, {"Referrer-Policy": "no-referrer"}
    session.clear()  # no session fixation, and no trace of an earlier sign-in
    g.pop("csrf_token", None)
    login_user(LinkPrincipal(link.id, link.tenant_id))
    log.info("sign-in link %s used for tenant %s", link.id, link.tenant_id)
    response = redirect(url_for("ui.dashboard.index"))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
