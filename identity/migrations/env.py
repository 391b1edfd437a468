"""Alembic environment of the identity service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

from identity.models import metadata
from towntip.kernel.migrate import run_env

run_env(context, metadata)
