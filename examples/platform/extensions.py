"""The platform's extension objects, made once and bound to the app in `create_app()`: the
database, CSRF protection for the platform's own forms, and Hookline."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from portal import Hookline

db = SQLAlchemy()
csrf = CSRFProtect()
hookline = Hookline()
