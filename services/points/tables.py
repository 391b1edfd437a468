"""The points service's one MetaData (every domain's tables register on it) and its outbox and inbox tables."""

from __future__ import annotations

from sqlalchemy import MetaData

from towntip.kernel import db
from towntip.kernel.bus.outbox import define_bus_tables

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
