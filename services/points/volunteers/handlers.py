"""NATS adapter of the volunteer roster: the durable consumer `points-volunteers` of this node's sns events
(EVT_<NODE>_SNS), applied once through the kernel's inbox. It takes OpeningApplicationAccepted and
OpeningApplicationWithdrawn (with an event code); everything else on the stream is passed over."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.volunteers import service
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event
from towntip.kernel.contracts import sns_openings as oc

CONSUMER = "points-volunteers"


def consumer_spec(node: str, service_name: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.evt_stream(node, "sns"), durable=CONSUMER,
                        filter_subject=subjects.evt_all(node, "sns"), service=service_name, node=node, batch=64)


class MatchingEventsHandler:
    """Applies the sns service's acceptances and withdrawals to the roster."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, type_, data, at = own_event(msg, self.node, "sns")
        key = f"sns:{key}"
        try:
            if type_ == oc.OpeningApplicationAccepted.type_name():
                ev = oc.OpeningApplicationAccepted.parse(data)
                if ev.event_code:
                    return key, {"type": "accepted", "event_code": ev.event_code, "person": ev.person,
                                 "application_id": ev.application_id, "opening_id": ev.opening_id, "at": ev.at}
            elif type_ == oc.OpeningApplicationWithdrawn.type_name():
                wd = oc.OpeningApplicationWithdrawn.parse(data)
                if wd.event_code and wd.was_accepted:
                    return key, {"type": "withdrawn", "event_code": wd.event_code, "person": wd.person,
                                 "application_id": wd.application_id}
        except ValidationError as exc:
            raise Rejected(f"{type_} does not fit its contract: {exc.error_count()} errors") from None
        return key, {"type": "ignored"}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        await service.apply_matching_events(session, [d.item for d in deliveries if not d.duplicate])
        return [None] * len(deliveries)
