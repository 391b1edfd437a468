"""The points service's endpoints: one table per domain folder, gathered here (the service serves them, the
gateway's AsyncAPI document and HTTP routes read them)."""

from __future__ import annotations

from services.points import open_data, privacy
from services.points.coupons.handlers import DOMAIN as COUPONS
from services.points.courses.handlers import DOMAIN as COURSES
from services.points.donations.handlers import DOMAIN as DONATIONS
from services.points.ledger.handlers import DOMAIN as LEDGER
from services.points.notebook.handlers import DOMAIN as NOTEBOOK
from services.points.payments.handlers import DOMAIN as PAYMENTS
from services.points.signups.handlers import DOMAIN as SIGNUPS
from services.points.taps.handlers import DOMAIN as TAPS
from services.points.terminals.handlers import DOMAIN as TERMINALS
from towntip.kernel.contracts import open_data as od
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.domain import ANYONE, GATEWAY, STAFF, Domain, read

# Each handler gets what it names: session, data/q, now, request fields, and the service's context (app.py):
# node, card_key (the cards' keyed hash), tracker (the terminals heard in memory).
DOMAINS: tuple[Domain, ...] = (TAPS, LEDGER, COUPONS, COURSES, DONATIONS, NOTEBOOK, TERMINALS, PAYMENTS, SIGNUPS)

# Open data (public aggregates, small counts withheld) and card members per month for the staff's figures
# (issue 20 points 8 and 9): the logic in services/points/open_data.py.
OPEN_DATA = Domain("open_data", refusals=(od.USAGE_STAFF_ONLY,), ops=(
    read(od.EP_OPEN_DATA, od.OpenDataQuery, od.OpenData, open_data.tables, role=ANYONE),
    read(od.EP_USAGE, od.UsageQuery, od.Usage, open_data.usage, role=STAFF),
))
DOMAINS += (OPEN_DATA,)

# A person's data (issue 20 point 7): the gateway's export of the person's part (services/points/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))
DOMAINS += (PRIVACY,)
