"""The terminal spool: ids, states that only move forward, and what survives reopening the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.terminal.spool import Settlement, Spool, new_tap_id
from towntip.kernel.contracts.points import Tap


def make_tap(n: int = 0) -> Tap:
    return Tap(tap_id=new_tap_id(), terminal_id="t1", card_idm=f"{n:016x}", event="ev",
               tapped_at=datetime.now(UTC))


def test_tap_ids_are_valid_unique_and_time_ordered() -> None:
    ids = [new_tap_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 for i in ids)
    Tap(tap_id=ids[0], terminal_id="t1", card_idm="0" * 16, event="ev", tapped_at=datetime.now(UTC))
    assert new_tap_id(now_ms=1) < new_tap_id(now_ms=2**47)


def test_states_move_forward_only_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    taps = [make_tap(i) for i in range(4)]
    with Spool(path) as spool:
        spool.add_many(taps[:3])
        spool.add(taps[3])
        assert spool.queue_length() == 4
        assert spool.mark_accepted([(taps[0].tap_id, 1), (taps[1].tap_id, 2)]) == 2
        # the outcome of taps[2] overtook its acknowledgement
        assert spool.settle([Settlement(taps[2].tap_id, "credited", 1, 1)]) == [taps[2].tap_id]
        assert spool.mark_accepted([(taps[2].tap_id, 3)]) == 0
        assert spool.settle([Settlement(taps[0].tap_id, "rejected", reason="unknown event", error_code=404)])
        # a later outcome does not overwrite the first
        assert spool.settle([Settlement(taps[0].tap_id, "credited", 1, 2)]) == []
        assert spool.counts() == {"pending": 1, "accepted": 1, "settled": 2}
    with Spool(path) as again:
        assert [s.tap_id for s in again.pending()] == [taps[3].tap_id]
        got = again.get(taps[0].tap_id)
        assert got is not None and got.outcome == "rejected" and got.reason == "unknown event"
        assert got.error_code == 404 and got.tap == taps[0]
        assert again.get(taps[2].tap_id).state == "settled"  # type: ignore[union-attr]
        assert len(again) == 4


def test_the_same_tap_id_cannot_be_spooled_twice(tmp_path: Path) -> None:
    import sqlite3

    tap = make_tap()
    with Spool(tmp_path / "s.sqlite3") as spool:
        spool.add(tap)
        with pytest.raises(sqlite3.IntegrityError):
            spool.add(tap)
        assert len(spool) == 1


def test_spool_uses_wal_and_full_sync(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.sqlite3") as spool:
        assert spool._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert spool._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
