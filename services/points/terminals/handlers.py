"""Card terminals as the node hears them: the latest heartbeat of each and the arrival of its taps.

- Heartbeats arrive on core NATS (edge.<node>.<terminal>.heartbeat, queue group: one instance takes each); the
  EDGE stream does not keep them. A heartbeat whose terminal id differs from its subject's is ignored (logged): a
  terminal speaks only for itself (its NATS user may publish only under its own subject, too).
- Every tap the consumer decodes marks its terminal seen (TrackedTaps wraps the tap handler), so a terminal that
  sends taps but no heartbeats still shows up.
- Both only note in memory; a flush every second (and before terminals.list answers) writes the notes in one
  short transaction, apart from the taps' transactions (no lock on a terminal's row inside a tap batch). Rows merge
  by time: last_seen_at and last_tap_at only move forward, a heartbeat's fields replace an older heartbeat's.
- terminals.list answers each terminal with `online` = heard from within 2 x its heartbeat interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.points.terminals.models import terminals
from towntip.kernel import db, errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import Delivery, Outcome
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import points as contract

log = logging.getLogger(__name__)

MAX_HEARTBEAT_BYTES = 2048
QUEUE_GROUP = "points-heartbeats"
ONLINE_FACTOR = 2  # online = heard from within ONLINE_FACTOR x the terminal's heartbeat interval


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass
class _Note:
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


class TerminalTracker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        node: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        flush_every: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.node = node
        self.clock = clock
        self.flush_every = flush_every
        self._notes: dict[str, _Note] = {}
        self._lock = asyncio.Lock()
        self._sub: Any = None
        self.ignored = 0  # heartbeats refused (unreadable, or speaking for another terminal)

    # --- what arrives --------------------------------------------------------------------------------------
    def _note(self, terminal_id: str, at: datetime) -> _Note:
        note = self._notes.get(terminal_id)
        if note is None:
            note = self._notes[terminal_id] = _Note(last_seen_at=at)
        else:
            note.seen(at)
        return note

    def note_tap(self, tap: contract.Tap) -> None:
        note = self._note(tap.terminal_id, _utc(self.clock()))  # type: ignore[arg-type]
        note.tapped(_utc(tap.tapped_at))
        note.tap_mode, note.tap_event = tap.mode, tap.event

    def note_heartbeat(self, hb: contract.Heartbeat) -> None:
        at = _utc(self.clock())
        note = self._note(hb.terminal_id, at)  # type: ignore[arg-type]
        note.heartbeat, note.heartbeat_at = hb, at
        note.tapped(_utc(hb.last_tap_at))

    async def on_heartbeat(self, msg: Msg) -> None:
        """The core NATS callback for edge.<node>.*.heartbeat."""
        parts = msg.subject.split(".")
        if len(msg.data) > MAX_HEARTBEAT_BYTES:
            self.ignored += 1
            log.warning("heartbeat on %s is %d bytes: ignored", msg.subject, len(msg.data))
            return
        try:
            hb = contract.Heartbeat.model_validate_json(msg.data)
        except ValidationError as exc:
            self.ignored += 1
            log.warning("unreadable heartbeat on %s: %s", msg.subject, errors.describe_validation_error(exc))
            return
        if len(parts) != 4 or parts[1] != self.node or parts[2] != hb.terminal_id:
            self.ignored += 1
            log.warning("heartbeat of terminal %r arrived on %r: a terminal speaks only for itself; ignored",
                        hb.terminal_id, msg.subject)
            return
        self.note_heartbeat(hb)

    async def subscribe(self, nc: NATS) -> None:
        self._sub = await nc.subscribe(subjects.edge_kind(self.node, "heartbeat"), queue=QUEUE_GROUP,
                                       cb=self.on_heartbeat)

    # --- writing -------------------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write what was heard since the last flush; returns how many terminals' rows were written."""
        async with self._lock:
            notes, self._notes = self._notes, {}
            if not notes:
                return 0
            rows = [self._row(tid, n) for tid, n in sorted(notes.items())]
            try:
                async with self.sessions() as session, session.begin():
                    await session.execute(self._upsert(session), rows)
            except Exception:
                for tid, n in notes.items():  # keep them for the next round, merged with anything newer
                    mine = self._notes.get(tid)
                    if mine is None:
                        self._notes[tid] = n
                    else:
                        mine.seen(n.last_seen_at)
                        mine.tapped(n.last_tap_at)
                        if mine.heartbeat is None:
                            mine.heartbeat, mine.heartbeat_at = n.heartbeat, n.heartbeat_at
                raise
            return len(rows)

    @staticmethod
    def _row(terminal_id: str, n: _Note) -> dict[str, Any]:
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

    @staticmethod
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

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `flush_every` seconds until stop is set (then once more)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_every)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - a passing database failure: the notes wait for the next round
                log.exception("terminal status not written; retrying")
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    # --- reading -------------------------------------------------------------------------------------------
    async def list(self) -> contract.TerminalList:
        await self.flush()
        now = _utc(self.clock())
        assert now is not None
        async with self.sessions() as session:
            rows = (await session.execute(select(terminals).order_by(terminals.c.terminal_id))).all()
        out = []
        for r in rows:
            seen = _utc(r.last_seen_at)
            assert seen is not None
            out.append(contract.TerminalStatus(
                terminal_id=r.terminal_id,
                online=now - seen <= timedelta(seconds=ONLINE_FACTOR * r.interval_s),
                last_seen_at=seen, mode=r.mode, event=r.event, queue=r.queue, unsettled=r.unsettled,
                last_tap_at=_utc(r.last_tap_at), version=r.version, interval=r.interval_s,
                heartbeat_at=_utc(r.heartbeat_at),
            ))
        return contract.TerminalList(checked_at=now, terminals=out)

    def add_endpoints(self, eps: Endpoints) -> Endpoints:
        @eps.add(contract.EP_TERMINALS_LIST)
        async def list_terminals(_: None) -> contract.TerminalList:
            return await self.list()

        return eps

    def track(self, handler: Any) -> TrackedTaps:
        return TrackedTaps(handler, self)


class TrackedTaps:
    """The tap handler, noting each decoded tap's terminal as seen (the tap's own handling is unchanged)."""

    def __init__(self, inner: Any, tracker: TerminalTracker) -> None:
        self.inner = inner
        self.tracker = tracker

    def decode(self, msg: Msg) -> tuple[str, contract.Tap]:
        key, tap = self.inner.decode(msg)  # raises Rejected for a tap on another terminal's subject
        self.tracker.note_tap(tap)
        return key, tap

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[contract.Tap]]) -> list[Outcome]:
        return await self.inner.apply(session, deliveries)
