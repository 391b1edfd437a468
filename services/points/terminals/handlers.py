"""Card terminals as the node hears them: the latest heartbeat of each and the arrival of its taps.

- Heartbeats arrive on core NATS (edge.<node>.<terminal>.heartbeat, queue group: one instance takes each); the
  EDGE stream does not keep them. A heartbeat whose terminal id differs from its subject's is ignored (logged): a
  terminal speaks only for itself (its NATS user may publish only under its own subject, too).
- Every tap the consumer decodes marks its terminal seen (TrackedTaps wraps the tap handler), so a terminal that
  sends taps but no heartbeats still shows up.
- Both only note in memory; a flush every second (and before terminals.list answers) writes the notes in one
  short transaction, apart from the taps' transactions (no lock on a terminal's row inside a tap batch). Rows merge
  by time: last_seen_at and last_tap_at only move forward, a heartbeat's fields replace an older heartbeat's.
- terminals.list answers each terminal with `online` = heard from within 2 x its heartbeat interval (the service's
  one tracker comes to its row through the endpoints' context, `tracker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.points.terminals import service
from services.points.terminals.service import Note, utc
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import Delivery, Outcome
from towntip.kernel.contracts import points as contract
from towntip.kernel.domain import STAFF, Domain, own
from towntip.kernel.metrics import ServiceMetrics

log = logging.getLogger(__name__)

MAX_HEARTBEAT_BYTES = 2048
QUEUE_GROUP = "points-heartbeats"


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
        self._notes: dict[str, Note] = {}
        self._lock = asyncio.Lock()
        self._sub: Any = None
        self.ignored = 0  # heartbeats refused (unreadable, or speaking for another terminal)

    # --- what arrives --------------------------------------------------------------------------------------
    def _note(self, terminal_id: str, at: datetime) -> Note:
        note = self._notes.get(terminal_id)
        if note is None:
            note = self._notes[terminal_id] = Note(last_seen_at=at)
        else:
            note.seen(at)
        return note

    def note_tap(self, tap: contract.Tap) -> None:
        note = self._note(tap.terminal_id, utc(self.clock()))  # type: ignore[arg-type]
        note.tapped(utc(tap.tapped_at))
        note.tap_mode, note.tap_event = tap.mode, tap.event

    def note_heartbeat(self, hb: contract.Heartbeat) -> None:
        at = utc(self.clock())
        note = self._note(hb.terminal_id, at)  # type: ignore[arg-type]
        note.heartbeat, note.heartbeat_at = hb, at
        note.tapped(utc(hb.last_tap_at))

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
            rows = [service.row_of(tid, n) for tid, n in sorted(notes.items())]
            try:
                async with self.sessions() as session, session.begin():
                    await service.merge_rows(session, rows)
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

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every `flush_every` seconds until stop is set (then once more)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_every)
            try:
                await self.flush()
            except Exception:  # a passing database failure: the notes wait for the next round
                log.exception("terminal status not written; retrying")
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    # --- reading -------------------------------------------------------------------------------------------
    def report_to(self, counted: ServiceMetrics) -> None:
        """The terminals in the service's metrics, read from their last heartbeat when scraped: taps spooled on the
        device (not yet accepted by the bus), taps whose outcome it has not heard, online or not, and the seconds
        since it was last heard. One series per terminal: a node enrols tens of them, not thousands."""
        spool = counted.gauge("towntip_terminal_spool", "Taps spooled on the terminal, not yet accepted by the bus "
                              "(its last heartbeat)", ("terminal",))
        unsettled = counted.gauge("towntip_terminal_unsettled", "Taps accepted whose outcome the terminal has not "
                                  "heard (its last heartbeat)", ("terminal",))
        online = counted.gauge("towntip_terminal_online", "1 if heard from within twice its heartbeat interval",
                               ("terminal",))
        silent = counted.gauge("towntip_terminal_silent_seconds", "Seconds since the node last heard from it",
                               ("terminal",))

        async def terminals() -> None:
            listed = await self.list()
            for g in (spool, unsettled, online, silent):
                g.clear()  # a terminal taken out of the table leaves the metrics too
            for t in listed.terminals:
                spool.labels(t.terminal_id).set(t.queue)
                unsettled.labels(t.terminal_id).set(t.unsettled)
                online.labels(t.terminal_id).set(1 if t.online else 0)
                silent.labels(t.terminal_id).set(max(0.0, (listed.checked_at - t.last_seen_at).total_seconds()))

        counted.probe("terminals", terminals)

    async def list(self) -> contract.TerminalList:
        await self.flush()
        now = utc(self.clock())
        assert now is not None
        async with self.sessions() as session:
            out = await service.statuses(session, now)
        return contract.TerminalList(checked_at=now, terminals=out)

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


async def list_terminals(*, tracker: TerminalTracker) -> contract.TerminalList:
    """What the tracker heard, flushed first (its own short transaction)."""
    return await tracker.list()


DOMAIN = Domain("terminals", ops=(
    own(contract.EP_TERMINALS_LIST, None, contract.TerminalList, list_terminals, role=STAFF),
))
