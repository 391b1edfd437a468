"""A child's log file stays bounded while the child keeps writing through the descriptor it was started with."""

from __future__ import annotations

from pathlib import Path

from towntip.node.logfiles import trim


def test_a_log_written_through_an_open_append_descriptor_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "points.log"
    limit, backups = 2000, 3
    line = b"2026-12-07 INFO points services.points: tap recorded for terminal hall-1\n"
    with open(path, "ab") as child:  # as _popen hands it to the process: O_APPEND, never reopened
        rotations = 0
        for i in range(2000):  # ~150 kB: 75 times the limit
            child.write(line.replace(b"hall-1", f"hall-{i}".encode()))
            child.flush()
            if i % 10 == 0:  # the supervisor looks now and then, not after every line
                rotations += trim(path, max_bytes=limit, backups=backups)
        child.write(b"last line\n")
        child.flush()
    assert rotations > 10
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["points.log", "points.log.1", "points.log.2", "points.log.3"]
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= (backups + 1) * (limit + 10 * len(line) + 10)
    current = path.read_bytes()
    assert current.endswith(b"last line\n") and b"\0" not in current  # written at the new end: no hole
    assert b" hall-1999\n" in current
    assert b" hall-0\n" not in b"".join(p.read_bytes() for p in tmp_path.iterdir())  # the oldest lines are gone
    assert trim(tmp_path / "missing.log") is False
