"""Alembic environment of the notices service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

from services.notices.models import metadata
from towntip.kernel.migrate import run_env

run_env(context, metadata)
