"""NATS adapter of check-in by card: the durable consumer `bookings-touches` of this node's points events
(EVT_<NODE>_POINTS), applied once through the kernel's inbox. TapRecorded and CheckinRepeated of a bound card name
the person (handle and user id, never the card's IDm) and the terminal; services/bookings/checkin.py checks in their
booking at the facility whose `rules.terminal_ids` holds that terminal. Every other points event is passed over."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import checkin
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event

CONSUMER = "bookings-touches"
EVENTS = ("TapRecorded", "CheckinRepeated")


def consumer_spec(node: str, service: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.evt_stream(node, "points"), durable=CONSUMER,
                        filter_subject=subjects.evt_all(node, "points"), service=service, node=node, batch=128)


class TouchHandler:
    """Decodes the points service's touches of bound cards; checks in the bookings they stand for."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, checkin.Touch | None]:
        key, type_, data, _ = own_event(msg, self.node, "points")
        if type_ not in EVENTS or not isinstance(data, dict) or not (data.get("user_id") or data.get("person")):
            return f"points:{key}", None  # another event, or a card bound to nobody: nothing to check in
        try:
            touch = checkin.Touch(terminal_id=str(data["terminal_id"])[:32], user_id=_text(data.get("user_id")),
                                  person=_text(data.get("person")),
                                  tapped_at=datetime.fromisoformat(data["tapped_at"]))
        except (KeyError, TypeError, ValueError):
            raise Rejected(f"{type_} without a terminal or a time") from None
        if touch.tapped_at.tzinfo is None:
            raise Rejected(f"{type_}'s time carries no timezone")
        return f"points:{key}", touch

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[checkin.Touch | None]]
                    ) -> list[Outcome]:
        touches = [d.item for d in deliveries if not d.duplicate and d.item is not None]
        if touches:
            await checkin.apply_touches(session, touches, node=self.node)
        return [None] * len(deliveries)


def _text(v: Any) -> str | None:
    return v[:64] if isinstance(v, str) and v else None
