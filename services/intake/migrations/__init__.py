"""Alembic revisions of the intake service (env.py: services/kit/alembic)."""
