"""What a signage screen plays when: one pure function of a schedule and a moment, shared by the node (staff's
preview) and the player (edge/signage), so that both always agree.

The hour (local, Asia/Tokyo) is the unit. `timeline(schedule, at)` lays out the whole hour that holds `at`:
- each interrupt playlist (its `interrupt_share` s) plays its loop m = round(s · 3600 / loop length) times (at least
  once), at slots spread evenly over the hour (the k-th at (k + ½) · 3600 / m s), if it is active then;
- between them the normal playlists play: of those active at the moment (daypart, validity, a valid item), the
  highest priority wins, equal priorities one after another by id; the loop goes on where it was, and starts
  again from its first item when the winning set changes (a daypart begins);
- an item plays only inside its validity; a moment with nothing to play is left empty (IDLE_STEP seconds at a time).
An item that starts before the hour's end plays to its end: the next hour starts at its own beginning.

`plan(schedule, at)` is the item ids from the one playing at `at` to the end of the hour: a player plays the first
and asks again when it ends. Emergencies are not here: they take over the screen whatever the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from towntip.kernel.contracts.signage import TIMEZONE, Daypart, Item, Playlist, Schedule

HOUR = 3600
IDLE_STEP = 60  # seconds an empty moment lasts before the plan looks again
_TZ = ZoneInfo(TIMEZONE)


@dataclass(frozen=True)
class Slot:
    """One play in an hour's timeline: `start` seconds after the hour, for `duration_s` seconds."""

    start: int
    item_id: str
    duration_s: int
    playlist_id: str
    interrupt: bool = False

    @property
    def end(self) -> int:
        return self.start + self.duration_s


def _local(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("plan() takes an aware datetime (UTC or local)")
    return at.astimezone(_TZ)


def in_daypart(part: Daypart, local: datetime) -> bool:
    """Whether a local moment is inside a daypart (a night part belongs to the weekday it began on)."""
    t = local.time().replace(tzinfo=None)
    if part.start == part.end:
        return local.weekday() in part.weekdays
    if part.start < part.end:
        return local.weekday() in part.weekdays and part.start <= t < part.end
    if t >= part.start:  # past midnight: the evening half is today's, the morning half yesterday's
        return local.weekday() in part.weekdays
    return t < part.end and (local.weekday() - 1) % 7 in part.weekdays


def active(playlist: Playlist, at: datetime) -> bool:
    if playlist.valid_from is not None and at < playlist.valid_from:
        return False
    if playlist.valid_until is not None and at >= playlist.valid_until:
        return False
    local = _local(at)
    return not playlist.dayparts or any(in_daypart(p, local) for p in playlist.dayparts)


def _loop(playlist: Playlist, items: dict[str, Item], at: datetime) -> list[tuple[str, int]]:
    """The playlist's (item id, seconds) valid at `at`, in its order."""
    out = []
    for e in playlist.entries:
        item = items.get(e.item_id)
        if item is not None and item.valid_at(at):
            out.append((item.id, e.duration_s or item.duration_s))
    return out


def _winners(playlists: list[Playlist], items: dict[str, Item], at: datetime) -> list[Playlist]:
    """The normal playlists that play at `at`: the highest priority of those active with something valid."""
    live = [p for p in playlists if active(p, at) and _loop(p, items, at)]
    if not live:
        return []
    top = max(p.priority for p in live)
    return sorted((p for p in live if p.priority == top), key=lambda p: p.id)


def _valid_within(item: Item, start: datetime, end: datetime) -> bool:
    return item.valid_from < end and (item.valid_until is None or item.valid_until > start)


def _interrupt_slots(playlists: list[Playlist], items: dict[str, Item], hour: datetime) -> list[tuple[int, Playlist]]:
    """(second of the hour, playlist) for each interrupt's plays this hour, by time."""
    slots = []
    for p in playlists:
        if p.interrupt_share is None:
            continue
        # Its length from the items valid at some moment of the hour: one that starts at 10:15 still gets its
        # share of the 10 o'clock hour, from its start on (an item not yet valid at a slot is left out there).
        end = hour + timedelta(seconds=HOUR)
        length = sum(
            e.duration_s or items[e.item_id].duration_s
            for e in p.entries
            if e.item_id in items and _valid_within(items[e.item_id], hour, end)
        )
        if not length:
            continue
        times = max(1, round(p.interrupt_share * HOUR / length))
        slots += [(int((k + 0.5) * HOUR / times), p) for k in range(times)]
    return sorted(slots, key=lambda s: (s[0], s[1].id))


def timeline(schedule: Schedule, at: datetime) -> tuple[datetime, list[Slot]]:
    """The start of the local hour holding `at`, and every play of that hour in order."""
    hour = _local(at).replace(minute=0, second=0, microsecond=0)
    items = {i.id: i for i in schedule.items}
    normal = [p for p in schedule.playlists if p.interrupt_share is None]
    pending = _interrupt_slots(list(schedule.playlists), items, hour)
    slots: list[Slot] = []
    t = 0
    current: tuple[str, ...] = ()
    queue: list[tuple[str, int, str]] = []
    while t < HOUR:
        if pending and pending[0][0] <= t:
            _, p = pending.pop(0)
            when = hour + timedelta(seconds=t)
            if active(p, when):
                for item_id, d in _loop(p, items, when):
                    slots.append(Slot(t, item_id, d, p.id, interrupt=True))
                    t += d
            continue
        when = hour + timedelta(seconds=t)
        winners = _winners(normal, items, when)
        key = tuple(p.id for p in winners)
        if key != current or not queue:  # a new set starts from its top; the same set goes round again
            current = key
            queue = [(i, d, p.id) for p in winners for i, d in _loop(p, items, when)]
        if not queue:
            t = min(t + IDLE_STEP, pending[0][0] if pending else HOUR)  # an interrupt due sooner is not missed
            continue
        item_id, d, pid = queue.pop(0)
        slots.append(Slot(t, item_id, d, pid))
        t += d
    return hour, slots


def plan(schedule: Schedule, at: datetime) -> list[str]:
    """The item ids a screen plays from `at` to the end of its hour, the one playing at `at` first."""
    hour, slots = timeline(schedule, at)
    offset = (_local(at) - hour).total_seconds()
    return [s.item_id for s in slots if s.end > offset]
