"""Alembic environment shared by every service (env.py, script.py.mako)."""
