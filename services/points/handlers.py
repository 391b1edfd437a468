"""The points service's endpoints: one table per domain folder, gathered here (the service serves them, the
gateway's AsyncAPI document and HTTP routes read them)."""

from __future__ import annotations

from services.points.coupons.handlers import DOMAIN as COUPONS
from services.points.courses.handlers import DOMAIN as COURSES
from services.points.donations.handlers import DOMAIN as DONATIONS
from services.points.ledger.handlers import DOMAIN as LEDGER
from services.points.notebook.handlers import DOMAIN as NOTEBOOK
from services.points.open_data import DOMAIN as OPEN_DATA
from services.points.payments.handlers import DOMAIN as PAYMENTS
from services.points.signups.handlers import DOMAIN as SIGNUPS
from services.points.taps.handlers import DOMAIN as TAPS
from services.points.terminals.handlers import DOMAIN as TERMINALS
from towntip.kernel.domain import Domain

# Each handler gets what it names: session, data/q, now, request fields, and the service's context (app.py):
# node, card_key (the cards' keyed hash), tracker (the terminals heard in memory).
DOMAINS: tuple[Domain, ...] = (TAPS, LEDGER, COUPONS, COURSES, DONATIONS, NOTEBOOK, TERMINALS, PAYMENTS, SIGNUPS)
DOMAINS += (OPEN_DATA,)  # open data and usage figures (issue 20 points 8 and 9)
