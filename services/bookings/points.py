"""The points service's payments as the bookings service reaches them: request/reply over NATS
(svc.<node>.points.payments.*), answers validated by the contract's models."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import payments as pc

POINTS = "points"


class PointsOverBus:
    """services.bookings.life.Points on the node's bus."""

    def __init__(self, nc: NATS, node: str, *, timeout: float = 10.0) -> None:
        self.nc, self.node, self.timeout = nc, node, timeout

    async def _call(self, endpoint: str, q: object) -> object:
        return await rpc.call(self.nc, subjects.svc(self.node, POINTS, endpoint), q, timeout=self.timeout)  # type: ignore[arg-type]

    async def charge(self, q: pc.ChargeIn) -> pc.Charge:
        return pc.Charge.model_validate(await self._call(pc.EP_CHARGE, q))

    async def refund(self, q: pc.RefundIn) -> pc.Refund:
        return pc.Refund.model_validate(await self._call(pc.EP_REFUND, q))

    async def get(self, q: pc.ChargeQuery) -> pc.ChargeState:
        return pc.ChargeState.model_validate(await self._call(pc.EP_CHARGE_GET, q))
