"""Extension singletons, bound to an app in `create_app()`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from dispatcher.models.base import Base

# The standalone app's own Flask-SQLAlchemy instance, on the dispatcher's Base. Only
# create_app() touches it directly; everything else goes through dispatcher.store.db, which
# resolves to whichever instance the current app registered (a host passes its own).
db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
login_manager = LoginManager()
