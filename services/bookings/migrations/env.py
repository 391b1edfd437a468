"""Alembic environment of the bookings service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

from services.bookings.models import metadata
from towntip.kernel.migrate import run_env

run_env(context, metadata)
