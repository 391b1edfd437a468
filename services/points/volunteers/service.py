"""The volunteer roster of each event (services/points/volunteers/models.py), kept from the sns service's matching
events. No NATS here. An event the roster names need not be defined yet: the roster waits for it.

Personal data: the person's global handle per event, kept while their acceptance stands; a withdrawal removes it,
and so does the deletion of their account (identity's UserDeleted, through the people directory's consumer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.volunteers.models import volunteer_roster
from towntip.kernel import db


async def apply_matching_events(session: AsyncSession, items: Sequence[dict[str, Any]]) -> None:
    """Apply the decoded events (none applied before), in order."""
    for e in items:
        if e["type"] == "accepted":
            ins = db.insert_on_conflict(session, volunteer_roster).values(
                event_code=e["event_code"], global_handle=e["person"], application_id=e["application_id"],
                opening_id=e["opening_id"], accepted_at=e["at"])
            await session.execute(ins.on_conflict_do_update(
                index_elements=["event_code", "global_handle"],
                set_={"application_id": e["application_id"], "opening_id": e["opening_id"],
                      "accepted_at": e["at"]}))
        elif e["type"] == "withdrawn":
            # only the application that put them there takes them off (another accepted opening keeps them)
            await session.execute(delete(volunteer_roster).where(
                volunteer_roster.c.event_code == e["event_code"], volunteer_roster.c.global_handle == e["person"],
                volunteer_roster.c.application_id == e["application_id"]))


async def rostered(session: AsyncSession, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (event code, global handle) pairs are on the roster."""
    if not pairs:
        return set()
    rows = await session.execute(select(volunteer_roster.c.event_code, volunteer_roster.c.global_handle).where(
        db.among(session, volunteer_roster.c.event_code, sorted({e for e, _ in pairs})),
        db.among(session, volunteer_roster.c.global_handle, sorted({h for _, h in pairs}))))
    return {(r.event_code, r.global_handle) for r in rows} & pairs


async def forget(session: AsyncSession, handle: str) -> None:
    await session.execute(delete(volunteer_roster).where(volunteer_roster.c.global_handle == handle))
