"""Alembic's env.py for every service; the service comes from the config (see kit.migrations)."""

from services.kit.migrations import run_env

run_env()
