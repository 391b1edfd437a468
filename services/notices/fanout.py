"""The sending job: a notice due (scheduled, its time come, approved when it needed to be) lands in every
recipient's inbox by set-based INSERT ... SELECT on the database, a batch of people at a time in key order, each batch
its own short transaction that also moves the notice's cursor. No per-recipient message crosses the bus.

A crash or a second instance is harmless: each batch locks the notice's row and starts from its cursor, and an inbox
row that exists already is left as it is (ON CONFLICT DO NOTHING). A community's members and a theme's followers are
asked for once, when sending starts, and kept in notice_audience until it ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices import targeting, towns
from services.notices.audiences import Audiences
from services.notices.models import TS, bus, inbox_entries, items, notice_audience, notice_history, notices
from towntip.kernel import errors
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import notices as c
from towntip.kernel.db import insert_on_conflict
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
BATCH = 10_000  # people per transaction (bench/notices.py: larger batches gain little and hold locks longer)
AUDIENCE_CHUNK = 5_000


class FanOut:
    """Sends due notices; `wake()` after a commit that may have made one due starts a round at once."""

    def __init__(self, uow: UnitOfWork, *, node: str, audiences: Audiences, batch: int = BATCH,
                 every: float = 5.0) -> None:
        self.uow, self.node, self.audiences, self.batch, self.every = uow, node, audiences, batch, every
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.round()
            except Exception:  # a passing database or bus error: the next round starts from the cursors
                log.exception("sending notices failed; trying again in %.0f s", self.every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self._wake), self.every)

    async def round(self) -> int:
        """Send every notice due now to its end; the number of notices finished."""
        now = self.uow.clock()
        due = await self.uow.read(lambda s: _due(s, now))
        done = 0
        for notice_id, state in due:
            try:
                if state == "scheduled":
                    await self._start(notice_id)
                await self._send(notice_id)
                done += 1
            except errors.ServiceError as exc:  # its audience's service did not answer: the next round tries again
                log.warning("notice %s not sent yet: %s", notice_id, exc.reason)
        return done

    async def _send(self, notice_id: str) -> None:
        async def step(session: AsyncSession, now: datetime) -> bool:
            return await self._step(session, notice_id, now)

        while not await self.uow.write(step):
            pass

    async def _start(self, notice_id: str) -> None:
        row = await self.uow.read(lambda s: _notice(s, notice_id))
        handles: list[str] = []
        if row.target_kind in targeting.AUDIENCE_KINDS:
            handles = sorted(set(await self.audiences.handles(c.Target(kind=row.target_kind,
                                                                         value=row.target_value))))

        async def begin(session: AsyncSession, now: datetime) -> None:
            current = await _notice(session, notice_id, lock=True)
            if current.state != "scheduled":
                return  # another instance began it, or staff withdrew it meanwhile
            await session.execute(delete(notice_audience).where(notice_audience.c.notice_id == notice_id))
            for i in range(0, len(handles), AUDIENCE_CHUNK):
                await session.execute(insert(notice_audience), [
                    {"notice_id": notice_id, "person": h} for h in handles[i:i + AUDIENCE_CHUNK]])
            reach = await targeting.count(session, row.target_kind, row.target_value, notice_id)
            await session.execute(update(notices).where(notices.c.id == notice_id).values(
                state="sending", recipients=reach, cursor=""))

        await self.uow.write(begin)

    async def _step(self, session: AsyncSession, notice_id: str, now: datetime) -> bool:
        """One batch: the next `batch` recipients after the cursor get their inbox row. True when none is left."""
        row = await _notice(session, notice_id, lock=True)
        if row.state != "sending":
            return True
        who = targeting.recipients(row.target_kind, row.target_value, notice_id).subquery()
        after = who.c.person > (row.cursor or "")
        upto = await session.scalar(select(who.c.person).where(after).order_by(who.c.person)
                                    .offset(self.batch - 1).limit(1))
        chosen = select(who.c.person, literal(notice_id), literal(c.KIND_NOTICE), literal(now, TS)).where(
            after, *([who.c.person <= upto] if upto is not None else []))
        await session.execute(insert_on_conflict(session, inbox_entries).from_select(
            ["person", "item_id", "kind", "delivered_at"], chosen).on_conflict_do_nothing())
        if upto is not None:
            await session.execute(update(notices).where(notices.c.id == notice_id).values(cursor=upto))
            return False
        await self._finish(session, row, now)
        return True

    async def _finish(self, session: AsyncSession, row: Any, now: datetime) -> None:
        await session.execute(update(notices).where(notices.c.id == row.id).values(
            state="sent", sent_at=now, cursor=None))
        await session.execute(delete(notice_audience).where(notice_audience.c.notice_id == row.id))
        item = (await session.execute(select(items).where(items.c.id == row.id))).one()
        await session.execute(insert(notice_history).values(
            notice_id=row.id, version=item.version, action="sent", actor="service", at=now,
            snapshot={"title": item.title, "body": item.body}))
        public = row.target_kind == "everyone"
        await announce(session, bus, c.NoticePublished(
            notice_id=row.id, public=public, title=item.title if public else "", body=item.body if public else "",
            category=item.category if public else None, sender=item.sender if public else "",
            recipients=row.recipients or 0, at=now), node=self.node)
        if public:  # its content, on the stream peers source (the notices stream above stays on this node)
            await announce(session, bus, towns.public_event(item, node=self.node, at=now), node=self.node)


async def _due(session: AsyncSession, now: datetime) -> list[tuple[str, str]]:
    rows = await session.execute(select(notices.c.id, notices.c.state).where(
        notices.c.state.in_(("scheduled", "sending")), notices.c.publish_at <= now).order_by(notices.c.publish_at))
    return [(r.id, r.state) for r in rows]


async def _notice(session: AsyncSession, notice_id: str, *, lock: bool = False) -> Any:
    stmt = select(notices).where(notices.c.id == notice_id)
    return (await session.execute(stmt.with_for_update() if lock else stmt)).one()


async def _first(*events: asyncio.Event) -> None:
    """Until one of the events is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
