"""Alembic revisions of the planning service (env.py: services/kit/alembic)."""
