"""Alembic revisions of the consent service (env.py: services/kit/alembic)."""
