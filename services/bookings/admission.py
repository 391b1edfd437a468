"""Who may book a slot first come, besides the facility's calendar and rules (services/bookings/bookings.py): a
person of another node only where the facility or the node allows it; a registered group only when approved and
by its representative or named bookers; and no slot of a lottery (抽選) not drawn yet. No NATS and no commits here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import groups
from services.bookings.models import lottery_rounds
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.contracts.actor import Actor


def node_of(handle: str) -> str:
    return handle.partition("@")[2]


def check_other_node(*, booker: str | None, node: str, facility: c.Facility, node_open: bool) -> None:
    """A person of another node (logged in here with their home ID) books only where this node allows it: the
    facility's rule `open_to_other_nodes`, or the node's setting `bookings_open_to_other_nodes`."""
    if booker is None or node_of(booker) == node:
        return
    if facility.rules.open_to_other_nodes or node_open:
        return
    raise lc.BOOKING_OTHER_NODES_CLOSED(
        f"{facility.id} takes bookings from people of this node ({node}) only; {booker} is of {node_of(booker)}")


async def check_not_in_lottery(session: AsyncSession, *, facility_id: str, start: datetime) -> None:
    """While a lottery of the facility's month is not drawn, its slots go by the draw, not first come."""
    month = start.astimezone(JST).strftime("%Y-%m")
    r = lottery_rounds.c
    found = (await session.execute(select(r.closes_at).where(
        r.facility_id == facility_id, r.month == month, r.state == "open"))).first()
    if found is not None:
        raise lc.BOOKING_IN_LOTTERY(f"{facility_id} in {month} goes by lottery (抽選) until it is drawn: enter it")


async def group_for(session: AsyncSession, *, group_id: str | None, actor: Actor | None) -> Any:
    """The approved group the booking is for (None: not for a group)."""
    if group_id is None:
        return None
    return await groups.may_book_for(session, group_id=group_id, actor=actor)
