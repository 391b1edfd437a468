"""Alembic environment of the signage service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

from services.signage.models import metadata
from towntip.kernel.migrate import run_env

run_env(context, metadata)
