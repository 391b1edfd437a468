"""Card terminals' rows: what the tracker heard, merged by time into one row per terminal, and read back as status.
No NATS, no commits here (terminals/handlers.py hears the terminals and owns the transactions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.terminals.models import terminals
from towntip.kernel import db
from towntip.kernel.contracts import points as contract

ONLINE_FACTOR = 2  # online = heard from within ONLINE_FACTOR x the terminal's heartbeat interval


def utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass
class Note:
    """What this instance heard of one terminal since the last flush."""

    last_seen_at: datetime
    last_tap_at: datetime | None = None
    heartbeat: contract.Heartbeat | None = None
    heartbeat_at: datetime | None = None
    tap_mode: str = "checkin"
    tap_event: str | None = None

    def seen(self, at: datetime) -> None:
        self.last_seen_at = max(self.last_seen_at, at)

    def tapped(self, at: datetime | None) -> None:
        if at is not None and (self.last_tap_at is None or at > self.last_tap_at):
            self.last_tap_at = at


def row_of(terminal_id: str, n: Note) -> dict[str, Any]:
    hb = n.heartbeat
    return {
        "terminal_id": terminal_id,
        "last_seen_at": n.last_seen_at,
        "mode": hb.mode if hb else n.tap_mode,
        "event": hb.event if hb else n.tap_event,
        "queue": hb.queue if hb else 0,
        "unsettled": hb.unsettled if hb else 0,
        "last_tap_at": n.last_tap_at,
        "version": hb.version if hb else "",
        "interval_s": hb.interval if hb else 30,
        "heartbeat_at": n.heartbeat_at,
    }


def _upsert(session: AsyncSession) -> Any:
    t = terminals.c
    ins = db.insert_on_conflict(session, terminals)
    x = ins.excluded
    # The row's heartbeat fields change when this note holds a newer heartbeat, or when neither ever had one
    # (a terminal known by its taps only: the latest tap's mode).
    newer = or_(
        and_(x.heartbeat_at.is_not(None), or_(t.heartbeat_at.is_(None), x.heartbeat_at > t.heartbeat_at)),
        and_(x.heartbeat_at.is_(None), t.heartbeat_at.is_(None)),
    )
    keep_hb = {name: case((newer, getattr(x, name)), else_=getattr(t, name))
               for name in ("mode", "event", "queue", "unsettled", "version", "interval_s")}
    return ins.on_conflict_do_update(index_elements=["terminal_id"], set_={
        "last_seen_at": case((x.last_seen_at > t.last_seen_at, x.last_seen_at), else_=t.last_seen_at),
        "last_tap_at": case(
            (x.last_tap_at.is_(None), t.last_tap_at),
            (or_(t.last_tap_at.is_(None), x.last_tap_at > t.last_tap_at), x.last_tap_at),
            else_=t.last_tap_at),
        "heartbeat_at": case((newer, x.heartbeat_at), else_=t.heartbeat_at),
        **keep_hb,
    })



async def merge_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Merge the rows (row_of) into the terminals' rows, in the caller's transaction."""
    await session.execute(_upsert(session), rows)


async def statuses(session: AsyncSession, now: datetime) -> list[contract.TerminalStatus]:
    """Every terminal as last heard, `online` if heard from within ONLINE_FACTOR x its heartbeat interval."""
    rows = (await session.execute(select(terminals).order_by(terminals.c.terminal_id))).all()
    out = []
    for r in rows:
        seen = utc(r.last_seen_at)
        assert seen is not None
        out.append(contract.TerminalStatus(
            terminal_id=r.terminal_id,
            online=now - seen <= timedelta(seconds=ONLINE_FACTOR * r.interval_s),
            last_seen_at=seen, mode=r.mode, event=r.event, queue=r.queue, unsettled=r.unsettled,
            last_tap_at=utc(r.last_tap_at), version=r.version, interval=r.interval_s,
            heartbeat_at=utc(r.heartbeat_at),
        ))
    return out
