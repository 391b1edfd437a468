"""The terminal's spool: every tap made on this device, in a SQLite file, written before it is sent.

A tap moves pending -> accepted (the bus acknowledged it: durable in the EDGE stream) -> settled (the points
service answered: credited, duplicate, or rejected with a reason). A tap may also go straight from pending to
settled when the outcome overtakes the acknowledgement. States never move backwards. Pending taps are re-sent
with the same tap id after a restart; the server dedups by tap id for ever.

SQLite with WAL and synchronous=FULL: a tap the agent reported as taken survives a power cut. The file is tiny
and local, so calls are synchronous (well under a millisecond each).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from towntip.kernel.contracts.points import Tap

PENDING, ACCEPTED, SETTLED = "pending", "accepted", "settled"
CREDITED, DUPLICATE, REJECTED = "credited", "duplicate", "rejected"
# The reason kept with a tap settled as credited with 0 points because its card (or person) had checked in to that
# event already (the node's outcome "already").
ALREADY = "already checked in"

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_last_id = (0, 0)  # (ms, random) of the previous id, for monotonic ids within one millisecond


def new_tap_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit milliseconds + 80 random bits, 26 Crockford base32 characters, time-ordered.

    Within one millisecond the random part is incremented, so ids made by one process sort in creation order.
    """
    global _last_id
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _id_lock:
        last_ms, last_rand = _last_id
        if ms <= last_ms:
            ms, rand = last_ms, (last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = secrets.randbits(80)
        _last_id = (ms, rand)
    value = (ms << 80) | rand
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass(frozen=True)
class SpooledTap:
    tap: Tap
    seq: int
    state: str
    outcome: str | None
    points: int | None
    balance: int | None
    reason: str | None
    error_code: int | None
    attempts: int
    created_at: datetime

    @property
    def tap_id(self) -> str:
        return self.tap.tap_id


@dataclass(frozen=True)
class Settlement:
    """An outcome heard from the points service."""

    tap_id: str
    outcome: str  # credited | duplicate | rejected
    points: int | None = None
    balance: int | None = None
    reason: str | None = None
    error_code: int | None = None
    display: str = ""  # what the node asked the terminal to show (not kept in the spool)
    already: bool = False  # checked in to this event before: nothing credited (kept as credited, 0 points)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS taps (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    tap_id      TEXT NOT NULL UNIQUE,
    tap_json    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'settled')),
    outcome     TEXT CHECK (outcome IS NULL OR outcome IN ('credited', 'duplicate', 'rejected')),
    points      INTEGER,
    balance     INTEGER,
    reason      TEXT,
    error_code  INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    stream_seq  INTEGER,
    created_at  TEXT NOT NULL,
    accepted_at TEXT,
    settled_at  TEXT
);
CREATE INDEX IF NOT EXISTS taps_state ON taps (state, seq);
"""

_COLUMNS = "seq, tap_json, state, outcome, points, balance, reason, error_code, attempts, created_at"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Spool:
    """The SQLite spool of one terminal. One Spool object per file per process; safe to reopen after a crash."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
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

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # --- writing -------------------------------------------------------------------------------------------
    def add(self, tap: Tap) -> None:
        """Spool a new tap (durable when this returns). A tap id already spooled is an error."""
        self.add_many([tap])

    def add_many(self, taps: Sequence[Tap]) -> None:
        now = _now()
        self._write(
            "INSERT INTO taps (tap_id, tap_json, created_at) VALUES (?, ?, ?)",
            [(t.tap_id, t.model_dump_json(), now) for t in taps],
        )

    def mark_accepted(self, accepted: Sequence[tuple[str, int | None]]) -> int:
        """(tap_id, stream sequence) pairs acknowledged by the bus. Only pending taps move."""
        now = _now()
        return self._write(
            "UPDATE taps SET state = 'accepted', accepted_at = ?, stream_seq = ?, attempts = attempts + 1 "
            "WHERE tap_id = ? AND state = 'pending'",
            [(now, seq, tap_id) for tap_id, seq in accepted],
        )

    def mark_attempt_failed(self, tap_ids: Sequence[str]) -> None:
        self._write("UPDATE taps SET attempts = attempts + 1 WHERE tap_id = ? AND state = 'pending'",
                    [(t,) for t in tap_ids])

    def settle(self, settlements: Sequence[Settlement]) -> list[str]:
        """Record outcomes; the first outcome of a tap wins. Returns the tap ids that became settled."""
        now = _now()
        done: list[str] = []
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for s in settlements:
                    cur.execute(
                        "UPDATE taps SET state = 'settled', outcome = ?, points = ?, balance = ?, reason = ?, "
                        "error_code = ?, settled_at = ? WHERE tap_id = ? AND state != 'settled'",
                        (s.outcome, s.points, s.balance, s.reason, s.error_code, now, s.tap_id),
                    )
                    if cur.rowcount:
                        done.append(s.tap_id)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return done

    # --- reading -------------------------------------------------------------------------------------------
    def _rows(self, where: str, params: Sequence[object] = (), limit: int | None = None) -> list[SpooledTap]:
        sql = f"SELECT {_COLUMNS} FROM taps {where} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [
            SpooledTap(
                tap=Tap.model_validate_json(r[1]), seq=r[0], state=r[2], outcome=r[3], points=r[4], balance=r[5],
                reason=r[6], error_code=r[7], attempts=r[8], created_at=datetime.fromisoformat(r[9]),
            )
            for r in rows
        ]

    def pending(self, limit: int | None = None) -> list[SpooledTap]:
        """Taps not yet acknowledged by the bus, oldest first: these are (re)sent."""
        return self._rows("WHERE state = 'pending'", (), limit)

    def unsettled(self) -> list[SpooledTap]:
        return self._rows("WHERE state != 'settled'")

    def last(self) -> SpooledTap | None:
        """The latest tap spooled on this device, if any."""
        with self._lock:
            row = self._db.execute("SELECT max(seq) FROM taps").fetchone()
        if row is None or row[0] is None:
            return None
        rows = self._rows("WHERE seq = ?", (row[0],))
        return rows[0] if rows else None

    def get(self, tap_id: str) -> SpooledTap | None:
        rows = self._rows("WHERE tap_id = ?", (tap_id,))
        return rows[0] if rows else None

    def get_many(self, tap_ids: Sequence[str]) -> list[SpooledTap]:
        out: list[SpooledTap] = []
        for start in range(0, len(tap_ids), 500):
            chunk = tap_ids[start:start + 500]
            out.extend(self._rows(f"WHERE tap_id IN ({','.join('?' * len(chunk))})", chunk))
        return sorted(out, key=lambda s: s.seq)

    def all(self) -> list[SpooledTap]:
        return self._rows("")

    def counts(self) -> dict[str, int]:
        """Taps per state: {'pending': n, 'accepted': n, 'settled': n}."""
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM taps GROUP BY state").fetchall()
        out = {PENDING: 0, ACCEPTED: 0, SETTLED: 0}
        out.update(dict(rows))
        return out

    def queue_length(self) -> int:
        """How many taps wait to be sent (not yet acknowledged by the bus)."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM taps WHERE state = 'pending'").fetchone()[0]

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM taps").fetchone()[0]
