"""Alembic environment of the points service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

from services.points.ledger.models import metadata
from towntip.kernel.migrate import run_env

run_env(context, metadata)
