"""Alembic environment of the points service (run through towntip.kernel.migrate.upgrade)."""

from alembic import context

# Every domain's tables, so that the one MetaData they register on is whole (autogenerate compares all of it).
from services.points.coupons import models as _coupons  # noqa: F401
from services.points.courses import models as _courses  # noqa: F401
from services.points.donations import models as _donations  # noqa: F401
from services.points.ledger import models as _ledger  # noqa: F401
from services.points.people import models as _people  # noqa: F401
from services.points.tables import metadata
from services.points.taps import models as _taps  # noqa: F401
from services.points.terminals import models as _terminals  # noqa: F401
from towntip.kernel.migrate import run_env

run_env(context, metadata)
