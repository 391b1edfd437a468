"""The player's proof-of-play spool: every play made on this screen, in a SQLite file, kept until JetStream
acknowledges it.

A play moves pending -> acked and never back. Pending plays are re-sent with the same play id (a uuid4 made here)
after a restart or a week offline: JetStream's `Nats-Msg-Id` dedups within its window, and the signage service keeps
every play id for ever (a unique key), so a replay never counts twice. Acknowledged plays are kept a while for the
screen's own record, then pruned: a play names an item and a screen, no person, but the file must not grow for ever.

SQLite with WAL and synchronous=FULL, like the card terminal's spool (edge/terminal/spool.py): a play the player
recorded survives a power cut. Calls are synchronous and well under a millisecond each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from towntip.kernel.bus import subjects
from towntip.kernel.contracts import signage as contract

log = logging.getLogger(__name__)

PENDING, ACKED = "pending", "acked"
KEEP_ACKED = timedelta(days=30)  # how long the screen keeps plays the node has acknowledged

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plays (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    play_id    TEXT NOT NULL UNIQUE,
    item_id    TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at   TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'acked')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    acked_at   TEXT
);
CREATE INDEX IF NOT EXISTS plays_state ON plays (state, seq);
"""


def new_play_id() -> str:
    """The play's id, made on the device: a uuid4 (the protocol's choice; random, so two screens never collide)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Play:
    play_id: str
    item_id: str
    started_at: datetime
    ended_at: datetime
    state: str = PENDING
    attempts: int = 0


class PlaySpool:
    """The SQLite spool of one screen. One PlaySpool per file per process; safe to reopen after a crash."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, rows: Iterable[Sequence[object]]) -> int:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.executemany(sql, rows)
                changed = cur.rowcount
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return changed

    def add(self, item_id: str, started_at: datetime, ended_at: datetime) -> Play:
        """Record a play (durable when this returns) with a new device-made id."""
        if ended_at < started_at:
            raise ValueError(f"a play cannot end ({ended_at}) before it starts ({started_at})")
        play = Play(new_play_id(), item_id, started_at.astimezone(UTC), ended_at.astimezone(UTC))
        self._write(
            "INSERT INTO plays (play_id, item_id, started_at, ended_at) VALUES (?, ?, ?, ?)",
            [(play.play_id, play.item_id, play.started_at.isoformat(), play.ended_at.isoformat())],
        )
        return play

    def mark_acked(self, play_ids: Sequence[str], at: datetime | None = None) -> int:
        now = (at or datetime.now(UTC)).isoformat()
        return self._write(
            "UPDATE plays SET state = 'acked', acked_at = ?, attempts = attempts + 1 "
            "WHERE play_id = ? AND state = 'pending'",
            [(now, p) for p in play_ids],
        )

    def mark_attempt_failed(self, play_ids: Sequence[str]) -> None:
        self._write(
            "UPDATE plays SET attempts = attempts + 1 WHERE play_id = ? AND state = 'pending'", [(p,) for p in play_ids]
        )

    def prune(self, now: datetime | None = None, keep: timedelta = KEEP_ACKED) -> int:
        """Forget acknowledged plays older than `keep`; pending ones stay whatever their age."""
        cutoff = ((now or datetime.now(UTC)) - keep).isoformat()
        return self._write("DELETE FROM plays WHERE state = 'acked' AND acked_at < ?", [(cutoff,)])

    def pending(self, limit: int | None = None) -> list[Play]:
        """Plays not yet acknowledged by JetStream, oldest first: these are (re)sent."""
        sql = (
            "SELECT play_id, item_id, started_at, ended_at, state, attempts FROM plays "
            "WHERE state = 'pending' ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql).fetchall()
        return [Play(r[0], r[1], datetime.fromisoformat(r[2]), datetime.fromisoformat(r[3]), r[4], r[5]) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM plays GROUP BY state").fetchall()
        out = {PENDING: 0, ACKED: 0}
        out.update(dict(rows))
        return out


class PlaySender:
    """Publishes the spool's pending plays to JetStream (`Nats-Msg-Id` = play id), oldest first, and marks each one
    acked on its PubAck. Wakes on a new play and on a reconnect; backs off while JetStream is out of reach. The
    caller owns the connection (`nc` may be None until the node answers: see attach)."""

    BATCH = 128

    def __init__(
        self,
        spool: PlaySpool,
        node: str,
        screen: str,
        *,
        publish_timeout: float = 2.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.spool = spool
        self.node = node
        self.screen = screen
        self.subject = contract.plays_subject(node, screen)
        self.publish_timeout = publish_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.wake = asyncio.Event()
        self.acked = 0  # plays acknowledged in this run

    def attach(self, nc: NATS) -> None:
        self.nc, self.js = nc, nc.jetstream(timeout=self.publish_timeout)
        self.wake.set()

    async def run(self) -> None:
        backoff = self.backoff_initial
        while True:
            batch = self.spool.pending(limit=self.BATCH)
            if not batch or self.js is None or self.nc is None or not self.nc.is_connected:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):  # a reconnect or a new play wakes it; the poll is a fallback
                    await asyncio.wait_for(self.wake.wait(), self.backoff_max)
                continue
            if await self._send(batch):
                backoff = self.backoff_initial
                continue
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), backoff)
            backoff = min(backoff * 2, self.backoff_max)

    async def _send(self, batch: list[Play]) -> bool:
        """One round; True if every play of the batch was acknowledged."""
        results = await asyncio.gather(*(self._publish(p) for p in batch), return_exceptions=True)
        acked = [p.play_id for p, r in zip(batch, results, strict=True) if not isinstance(r, BaseException)]
        failed = [p.play_id for p, r in zip(batch, results, strict=True) if isinstance(r, BaseException)]
        if acked:
            self.spool.mark_acked(acked)
            self.acked += len(acked)
        if failed:
            self.spool.mark_attempt_failed(failed)
            first = next(r for r in results if isinstance(r, BaseException))
            log.info(
                "%d plays not acknowledged yet (%s): kept on the screen, sent again later",
                len(failed),
                type(first).__name__,
            )
        return not failed

    async def _publish(self, play: Play) -> None:
        assert self.js is not None
        payload = contract.Play(
            play_id=play.play_id,
            item_id=play.item_id,
            screen=self.screen,
            started_at=play.started_at,
            ended_at=play.ended_at,
        )
        await self.js.publish(
            self.subject,
            payload.model_dump_json().encode(),
            headers={subjects.HDR_MSG_ID: play.play_id},
            timeout=self.publish_timeout,
        )
