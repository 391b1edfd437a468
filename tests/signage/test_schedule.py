"""plan(): what a screen plays when (the pure function the node's preview and the player share)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest

from towntip.kernel.contracts import signage as c
from towntip.kernel.signage_schedule import HOUR, plan, timeline

# Monday 7 December 2026; 10:00 in Japan is 01:00 UTC.
MON_10 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
EARLY = datetime(2026, 1, 1, tzinfo=UTC)


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def item(n: int, seconds: int = 10, valid_from: datetime = EARLY) -> c.Item:
    return c.Item(
        id=uid(n), kind="image", sha256="0" * 64, bytes=1, duration_s=seconds, valid_from=valid_from, title=f"item {n}"
    )


def playlist(n: int, *items: int, **kw: object) -> c.Playlist:
    return c.Playlist(
        id=uid(100 + n), name=f"list {n}", entries=tuple(c.PlaylistEntry(item_id=uid(i)) for i in items), **kw
    )


MORNING = c.Daypart(name="朝", weekdays=(0, 1, 2, 3, 4), start=time(8), end=time(11))
LUNCH = c.Daypart(name="昼", weekdays=(0, 1, 2, 3, 4), start=time(11, 30), end=time(13, 30))
NIGHT = c.Daypart(name="夜", weekdays=(4,), start=time(22), end=time(6))


def test_the_highest_priority_active_playlist_loops_from_the_moment_asked() -> None:
    sched = c.Schedule(
        items=(item(1), item(2), item(3, 20)),
        playlists=(
            playlist(1, 1, 2, priority=0),
            playlist(2, 3, 1, priority=5, dayparts=(MORNING,)),
        ),
    )
    assert plan(sched, MON_10)[:4] == [uid(3), uid(1), uid(3), uid(1)]
    assert plan(sched, MON_10 + timedelta(seconds=25))[0] == uid(1)  # 10:00:25 is inside item 1 (20-30 s)
    # 11:00 is past the morning: the default list plays; Sunday has no morning part
    assert plan(sched, MON_10 + timedelta(hours=1))[:3] == [uid(1), uid(2), uid(1)]
    assert plan(sched, MON_10 - timedelta(days=1))[:2] == [uid(1), uid(2)]


def test_a_daypart_starting_inside_the_hour_restarts_its_loop_then() -> None:
    sched = c.Schedule(
        items=(item(1, 60), item(2, 60), item(3, 60)),
        playlists=(playlist(1, 1, 2), playlist(2, 3, priority=3, dayparts=(LUNCH,))),
    )
    hour, slots = timeline(sched, MON_10 + timedelta(hours=1) + timedelta(minutes=40))  # 11:40 in Japan
    assert hour.hour == 11
    before = [s.item_id for s in slots if s.start < 30 * 60]
    after = [s.item_id for s in slots if s.start >= 30 * 60]
    assert set(before) == {uid(1), uid(2)} and set(after) == {uid(3)}


def test_an_interrupt_takes_its_share_of_each_hour_spread_over_it() -> None:
    sched = c.Schedule(
        items=(item(1, 30), item(2, 30), item(9, 15)),
        playlists=(playlist(1, 1, 2), playlist(9, 9, interrupt_share=0.1)),
    )
    _, slots = timeline(sched, MON_10)
    cut_in = [s for s in slots if s.interrupt]
    assert len(cut_in) == 24  # 10 % of 3,600 s in 15 s plays
    share = sum(s.duration_s for s in cut_in) / sum(s.duration_s for s in slots)
    assert share == pytest.approx(0.1, abs=0.01)
    gaps = [b.start - a.start for a, b in zip(cut_in, cut_in[1:], strict=False)]
    assert max(gaps) - min(gaps) <= 30  # evenly spread: never more than one base item apart from the plan


def test_items_outside_their_validity_and_nights_across_midnight() -> None:
    later = item(2, valid_from=MON_10 + timedelta(minutes=30))
    sched = c.Schedule(items=(item(1), later), playlists=(playlist(1, 1, 2),))
    _, slots = timeline(sched, MON_10)
    assert {s.item_id for s in slots if s.start < 30 * 60} == {uid(1)}  # item 2 starts at 10:30
    assert Counter(s.item_id for s in slots if s.start >= 30 * 60)[uid(2)] == 90  # then every other 10 s
    fri_night = c.Schedule(
        items=(item(1), item(2)), playlists=(playlist(1, 1), playlist(2, 2, priority=9, dayparts=(NIGHT,)))
    )
    sat_2am = datetime(2026, 12, 11, 17, 0, tzinfo=UTC)  # Saturday 02:00 in Japan: Friday's night part
    assert plan(fri_night, sat_2am)[0] == uid(2)
    assert plan(fri_night, sat_2am + timedelta(days=1))[0] == uid(1)  # Sunday 02:00: no Saturday night part


def test_nothing_to_play_is_an_empty_plan_and_naive_times_are_refused() -> None:
    assert plan(c.Schedule(), MON_10) == []
    with pytest.raises(ValueError, match="aware"):
        plan(c.Schedule(), datetime(2026, 12, 7, 10))
    _, slots = timeline(c.Schedule(items=(item(1, HOUR),), playlists=(playlist(1, 1),)), MON_10)
    assert len(slots) == 1
