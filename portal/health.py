"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.connection import get_redis
from dispatcher.store import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when both the database and Redis answer; 503 with the reason otherwise."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return jsonify(body), 200 if ready else 503
