"""WSGI entry point: `gunicorn wsgi:app`, and how plain `flask` finds the app."""

from portal import create_app

app = create_app()
