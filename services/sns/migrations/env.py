"""Alembic environment of the sns service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

from services.sns.models import metadata
from towntip.kernel.migrate import run_env

run_env(context, metadata)
