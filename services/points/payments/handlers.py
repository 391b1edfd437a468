"""The endpoint table of facility-fee payments (the bookings service's calls: never an HTTP route, and the gateway's
NATS user may not call them)."""

from __future__ import annotations

from services.points.payments import service as payments
from towntip.kernel.contracts import payments as pc
from towntip.kernel.domain import GATEWAY, Domain, read, write

DOMAIN = Domain("payments", refusals=pc.REFUSALS, ops=(
    write(pc.EP_CHARGE, pc.ChargeIn, pc.Charge, payments.charge, role=GATEWAY),
    write(pc.EP_REFUND, pc.RefundIn, pc.Refund, payments.refund, role=GATEWAY),
    read(pc.EP_CHARGE_GET, pc.ChargeQuery, pc.ChargeState, payments.get, role=GATEWAY),
))
