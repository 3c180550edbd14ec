"""The platform's pages: sign-up, sign-in and a dashboard of invoices.

Each view that changes something calls the services and then commits once, so the rows and
the webhooks the services published are one transaction; a refused change rolls back both."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from . import billing, communications, payments
from .extensions import db, hookline
from .models import Invoice, Organization, Payment, User

bp = Blueprint("platform", __name__)

MIN_PASSWORD_LENGTH = 8
# What the services refuse: shown to the user, with everything the request wrote rolled back.
REFUSED = (billing.BillingError, payments.PaymentError, communications.InvalidRecipient)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not session.get("org_id"):
            return redirect(url_for("platform.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


@bp.get("/")
def index() -> Response:
    return redirect(url_for("platform.dashboard"))


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> str | Response:
    """A new organization with its first user, and its Hookline tenant in the same commit, so
    the portal knows every organization the platform has (and none it does not)."""
    if request.method == "GET":
        return render_template("signup.html")
    name = request.form.get("organization", "").strip()
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    error = _signup_error(name, email, password)
    if error:
        flash(error, "error")
        return render_template("signup.html"), 400
    org = Organization(name=name)
    db.session.add(org)
    db.session.flush()
    user = User(org_id=org.id, email=email)
    user.set_password(password)
    db.session.add(user)
    hookline.ensure_tenant(org.id, org.name)
    communications.register_event_types(org.id)
    db.session.commit()
    _sign_in(user)
    return redirect(url_for("platform.dashboard"))


def _signup_error(name: str, email: str, password: str) -> str | None:
    if not name or len(name) > 200:
        return "Enter your organization's name (at most 200 characters)."
    if "@" not in email or len(email) > 320:
        return "Enter a valid email address."
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters."
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        return "That email address already has an account; sign in instead."
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """The platform's sign-in; Hookline's portal sends signed-out visitors here with ?next=."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=target)
    email = request.form.get("email", "").strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None or not user.check_password(request.form.get("password", "")):
        flash("Wrong email or password.", "error")
        return render_template("login.html", next=target), 401
    _sign_in(user)
    return redirect(target or url_for("platform.dashboard"))


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("platform.login"))


def _sign_in(user: User) -> None:
    session.clear()  # a fresh session on sign-in, so nothing from before carries over
    session["user_id"] = user.id
    session["org_id"] = user.org_id  # what Hookline's current_tenant() reads


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (never `//elsewhere` or `https://elsewhere`)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.get("/dashboard")
@login_required
def dashboard() -> str:
    org = db.get_or_404(Organization, session["org_id"])
    invoices = db.session.scalars(
        select(Invoice).where(Invoice.org_id == org.id).order_by(Invoice.created_at.desc())
    ).all()
    paid = db.session.scalars(
        select(Payment).where(Payment.org_id == org.id, Payment.status == "succeeded")
    )
    refundable = {payment.invoice_id: payment for payment in paid}
    return render_template(
        "dashboard.html",
        org=org,
        invoices=invoices,
        refundable=refundable,
        declined_card=payments.DECLINED_CARD,
    )


@bp.post("/invoices")
@login_required
def create_invoice() -> Response:
    try:
        amount = round(float(request.form.get("amount", "")) * 100)
    except ValueError:
        amount = 0
    return _commit_or_refuse(
        lambda: billing.create_invoice(
            session["org_id"], request.form.get("customer_email", ""), amount
        ),
        "Invoice created.",
    )


@bp.post("/invoices/<invoice_id>/pay")
@login_required
def pay_invoice(invoice_id: str) -> Response:
    invoice = _own(Invoice, invoice_id)
    card = request.form.get("card_number", "")
    return _commit_or_refuse(lambda: billing.pay_invoice(invoice, card), "Payment recorded.")


@bp.post("/invoices/<invoice_id>/void")
@login_required
def void_invoice(invoice_id: str) -> Response:
    invoice = _own(Invoice, invoice_id)
    return _commit_or_refuse(lambda: billing.void_invoice(invoice), "Invoice voided.")


@bp.post("/payments/<payment_id>/refund")
@login_required
def refund_payment(payment_id: str) -> Response:
    payment = _own(Payment, payment_id)
    return _commit_or_refuse(lambda: payments.refund(payment), "Payment refunded.")


def _own(model: type[Invoice] | type[Payment], row_id: str) -> Any:
    """The signed-in organization's row, or 404 (another organization's is not found either)."""
    row = db.session.get(model, row_id)
    if row is None or row.org_id != session["org_id"]:
        abort(404)
    return row


def _commit_or_refuse(change: Callable[[], Any], done: str) -> Response:
    """Run one service call and commit it with its webhooks, or roll all of it back."""
    try:
        change()
    except REFUSED as exc:
        db.session.rollback()  # the rows *and* the events published before the refusal
        flash(f"Not done: {exc}", "error")
        return redirect(url_for("platform.dashboard"), 303)
    db.session.commit()  # Hookline enqueues the deliveries once this commit succeeds
    flash(done, "info")
    return redirect(url_for("platform.dashboard"), 303)
