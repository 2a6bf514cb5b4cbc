"""Alembic revisions of the notify service (env.py: services/kit/alembic)."""
