"""Transactional outbox: an event commits with the change that caused it; a relay publishes it afterwards.

The relay publishes each row with Nats-Msg-Id = event id, waits for JetStream's acks, then marks the rows.
A crash between publish and mark publishes the same rows again on restart: the stream drops the repeats
inside its duplicate window, and consumers drop anything older through their inbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nats.js import JetStreamContext
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel import db
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import Envelope, utcnow
from towntip.kernel.loops import woken_rounds
from towntip.kernel.telemetry import inject_headers

if TYPE_CHECKING:
    from towntip.kernel.contracts.events import Event

log = logging.getLogger(__name__)

SeqType = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY


@dataclass(frozen=True)
class BusTables:
    outbox: Table
    inbox: Table


def define_bus_tables(metadata: MetaData) -> BusTables:
    """The outbox and inbox of one service, in that service's own metadata (and so its own migrations)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", SeqType, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False, default="{}"),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_unpublished", "published_at", "seq"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(64), nullable=False),
        Column("message_id", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("consumer", "message_id", name="pk_inbox"),
    )
    return BusTables(outbox=outbox, inbox=inbox)


def outbox_row(envelope: Envelope, headers: str | None = None) -> dict[str, Any]:
    """The row of one event; `headers` (JSON) carries the trace context of the change that made it."""
    return {
        "event_id": envelope.id,
        "subject": envelope.subject,
        "payload": envelope.to_bytes(),
        "headers": headers if headers is not None else json.dumps(inject_headers({})),
        "created_at": envelope.time,
    }


def outbox_rows(tables: BusTables, envelopes: Iterable[Envelope]) -> db.Rows:
    """Events as outbox rows, to stage with the change's own rows in one `db.write_rows` (one round trip)."""
    headers = json.dumps(inject_headers({}))  # one change, one trace context
    return db.Rows(tables.outbox, [outbox_row(e, headers) for e in envelopes])


async def announce(session: AsyncSession, tables: BusTables, event: Event, *, node: str,
                   at: datetime | None = None) -> None:
    """Stage one event in the caller's transaction: the one way a service announces a fact. The model knows its
    service, type name and version; the envelope (id, time, node) is made here. The relay publishes it after the
    commit (the unit of work wakes it)."""
    await add_events(session, tables, [event.envelope(node=node, at=at)])


async def announce_many(session: AsyncSession, tables: BusTables, events: Iterable[Event], *, node: str,
                        at: datetime | None = None) -> int:
    """Stage several events in the caller's transaction in one statement (a batch of taps announces one event per
    tap); returns how many. Like `announce`, each from its model."""
    return await add_events(session, tables, [event.envelope(node=node, at=at) for event in events])


def announcement_rows(tables: BusTables, events: Iterable[Event], *, node: str, at: datetime | None = None) -> db.Rows:
    """The outbox rows of these events, for a writer that stages them with its own rows in one `db.write_rows` (one
    round trip: the ledger's writer, the tap batch). Committing them with the change is the caller's business."""
    return outbox_rows(tables, [event.envelope(node=node, at=at) for event in events])


async def add_events(session: AsyncSession, tables: BusTables, envelopes: Iterable[Envelope]) -> int:
    """Stage events in the caller's transaction. Committing is the caller's business (the adapter's)."""
    rows = outbox_rows(tables, envelopes)
    await db.write_rows(session, [rows])
    return len(rows.rows)


FaultHook = Callable[[str], Awaitable[None] | None]


class OutboxRelay:
    """Publishes unpublished outbox rows in order. Woken after each commit; polls as a fallback."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        sessions: async_sessionmaker[AsyncSession],
        tables: BusTables,
        batch: int = 500,
        poll_interval: float = 1.0,
        ack_timeout: float = 10.0,
        keep_published: timedelta = timedelta(days=1),
        fault_hook: FaultHook | None = None,
    ) -> None:
        self.js = js
        self.sessions = sessions
        self.table = tables.outbox
        self.batch = batch
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self.keep_published = keep_published
        self.fault_hook = fault_hook  # tests use it to crash between publish and mark
        self._wake = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    async def _fault(self, point: str) -> None:
        if self.fault_hook is not None:
            result = self.fault_hook(point)
            if asyncio.iscoroutine(result):
                await result

    async def publish_pending(self) -> int:
        """One round: publish up to `batch` rows and mark them. Returns how many were published."""
        t = self.table
        async with self.sessions() as session:
            await db.single_statements(session)
            rows = (
                await session.execute(
                    select(t.c.seq, t.c.event_id, t.c.subject, t.c.payload, t.c.headers)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.seq)
                    .limit(self.batch)
                )
            ).all()
        if not rows:
            return 0
        futures = []
        for row in rows:
            headers = json.loads(row.headers or "{}")
            headers[subjects.HDR_MSG_ID] = row.event_id
            futures.append(await self.js.publish_async(row.subject, bytes(row.payload), headers=headers))
        await asyncio.wait_for(asyncio.gather(*futures), timeout=self.ack_timeout)
        await self._fault("published")
        async with self.sessions() as session, session.begin():
            await db.single_statements(session)  # one UPDATE: atomic by itself
            await session.execute(
                update(t).where(db.among(session, t.c.seq, [r.seq for r in rows])).values(published_at=utcnow())
            )
        self.published += len(rows)
        return len(rows)

    async def prune(self) -> int:
        """Forget rows published long ago (the stream holds the facts)."""
        t = self.table
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                delete(t).where(t.c.published_at.is_not(None), t.c.published_at < utcnow() - self.keep_published)
            )
        return db.rowcount(result) or 0

    async def run(self, stop: asyncio.Event) -> None:
        rounds = 0

        async def round_() -> bool:
            nonlocal rounds
            n = await self.publish_pending()
            rounds += 1
            if rounds % 1000 == 0:
                await self.prune()
            return n >= self.batch  # more are waiting

        await woken_rounds("outbox relay", round_, wake=self._wake, stop=stop, poll_interval=self.poll_interval)
