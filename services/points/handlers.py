"""The points service's endpoints: one table per domain folder, gathered here (the service serves them, the
gateway's AsyncAPI document and HTTP routes read them)."""

from __future__ import annotations

from services.points import privacy
from services.points.coupons.handlers import DOMAIN as COUPONS
from services.points.courses.handlers import DOMAIN as COURSES
from services.points.donations.handlers import DOMAIN as DONATIONS
from services.points.ledger.handlers import DOMAIN as LEDGER
from services.points.notebook.handlers import DOMAIN as NOTEBOOK
from services.points.payments.handlers import DOMAIN as PAYMENTS
from services.points.signups.handlers import DOMAIN as SIGNUPS
from services.points.taps.handlers import DOMAIN as TAPS
from services.points.terminals.handlers import DOMAIN as TERMINALS
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.domain import GATEWAY, Domain, read

# Each handler gets what it names: session, data/q, now, request fields, and the service's context (app.py):
# node, card_key (the cards' keyed hash), tracker (the terminals heard in memory).
# A person's data (issue 20 point 7): the gateway's export of the person's part (services/points/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))

DOMAINS = (TAPS, LEDGER, COUPONS, COURSES, DONATIONS, NOTEBOOK, TERMINALS, PAYMENTS, SIGNUPS, PRIVACY)
