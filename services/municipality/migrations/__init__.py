"""Alembic revisions of the municipality service (env.py: services/kit/alembic)."""
