"""The lottery's draw (抽選), a pure function of what a draw publishes, so that anyone can recompute it.

Algorithm `towntip-lottery-v1`:
1. Each entry's place in line is SHA-256 of "<seed>:<ref>" (hex); the line is sorted by it (then by ref).
2. For rank 1, 2, … in turn, each entry not yet drawn, in line order, gets its choice of that rank if the choice
   (with the facility's buffer after it) overlaps nothing held before the draw and nothing drawn before it.
3. An entry without a free choice is not drawn (落選).
The seed is made at the draw, after the window has closed and the entries (and their random refs) are fixed, so no
one could have chosen a ref that comes first. No database here: services/bookings/lottery.py feeds it and
services/bookings/lottery_check.py runs it from a published JSON file.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from towntip.kernel.contracts import bookings_lottery as lc


def place(seed: str, ref: str) -> str:
    return hashlib.sha256(f"{seed}:{ref}".encode()).hexdigest()


def draw(*, seed: str, buffer_minutes: int, held: list[lc.Interval],
         entries: list[lc.PublishedEntry]) -> list[lc.PublishedResult]:
    """The result of each entry, in the order of `entries` sorted by ref."""
    buffer = timedelta(minutes=buffer_minutes)
    taken: list[tuple[datetime, datetime]] = [(h.start, h.end) for h in held]
    line = sorted(entries, key=lambda e: (place(seed, e.ref), e.ref))
    won: dict[str, int] = {}
    for rank in range(lc.CHOICES_MAX):
        for entry in line:
            if entry.ref in won or rank >= len(entry.choices):
                continue
            choice = entry.choices[rank]
            until = choice.end + buffer
            if not any(a < until and choice.start < b for a, b in taken):
                taken.append((choice.start, until))
                won[entry.ref] = rank
    return [lc.PublishedResult(ref=e.ref, won=won.get(e.ref)) for e in sorted(entries, key=lambda e: e.ref)]


def check(pub: lc.LotteryPublication) -> lc.LotteryCheck:
    """Recompute the draw from the published data and compare it with the published results."""
    recomputed = draw(seed=pub.seed, buffer_minutes=pub.buffer_minutes, held=pub.held, entries=pub.entries)
    published = {r.ref: r.won for r in pub.results}
    differences = [r.ref for r in recomputed if r.ref not in published or published[r.ref] != r.won]
    differences += sorted(set(published) - {r.ref for r in recomputed})
    return lc.LotteryCheck(round_id=pub.round_id, matches=not differences, entries=len(pub.entries),
                           winners=sum(1 for r in recomputed if r.won is not None), recomputed=recomputed,
                           differences=differences)
