"""Lotteries (抽選): staff open a round for a facility and a month; in its application window people enter (alone or
for their registered group) with ranked choices among the month's slots, at most `max_entries` per applicant; after
the window staff draw. The seed is made at the draw, the draw itself is services/bookings/lottery_draw.py (a pure
function of the data published with the results), winners become confirmed bookings (origin `lottery`) through the
same no-overlap guard as any booking, and each entry's applicant is told the result (`LotteryResult`). Until the draw
the month's slots are not booked first come (services/bookings/admission.py). No NATS and no commits here."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import admission, availability, facilities, groups
from services.bookings.bookings import EXCLUSION_VIOLATION, advisory_lock, fee_and_layout, is_staff, who
from services.bookings.lottery_draw import check, draw
from services.bookings.models import bookings, bus, lottery_entries, lottery_rounds
from towntip.kernel import db
from towntip.kernel.bus.envelope import new_id
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.db import aware
from towntip.kernel.uow import sqlstate

E = lottery_entries.c
R = lottery_rounds.c


def month_days(month: str) -> list[date]:
    first = date.fromisoformat(f"{month}-01")
    nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


def month_start(month: str) -> datetime:
    return availability.at(month_days(month)[0], datetime.min.time())


def round_slots(f: c.Facility, month: str) -> list[availability.Span]:
    """Every slot of the month on the facility's layout, on the days it opens."""
    return [s for d in month_days(month) if availability.closed_reason(f, d) is None for s in availability.spans(f, d)]


def slot_view(s: availability.Span) -> lc.RoundSlot:
    return lc.RoundSlot(start=s.start, end=s.end, name_ja=s.name_ja)


def window(row: Any, now: datetime) -> str:
    if now < aware(row.opens_at):
        return "before"
    return "open" if now < aware(row.closes_at) else "closed"


async def _round(session: AsyncSession, round_id: str, *, lock: bool = False) -> Any:
    stmt = select(lottery_rounds).where(R.id == round_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise lc.LOTTERY_NOT_FOUND(f"no lottery round {round_id}")
    return row


async def round_view(session: AsyncSession, row: Any, now: datetime) -> lc.LotteryRound:
    f = await facilities.get(session, facility_id=row.facility_id)
    live = E.state != "withdrawn"
    entries, applicants = (await session.execute(select(func.count(), func.count(E.applicant_key.distinct())).where(
        E.round_id == row.id, live))).one()
    winners = (await session.execute(select(func.count()).where(E.round_id == row.id, E.state == "won"))).scalar_one()
    return lc.LotteryRound(
        id=row.id, facility_id=row.facility_id, month=row.month, opens_at=aware(row.opens_at).astimezone(JST),
        closes_at=aware(row.closes_at).astimezone(JST), max_entries=row.max_entries, state=row.state,
        window=window(row, now), entries=entries, applicants=applicants,
        slots=[slot_view(s) for s in round_slots(f, row.month)], seed=row.seed,
        drawn_at=aware(row.drawn_at), winners=winners, created_at=aware(row.created_at))


def entry_view(row: Any, r: Any, names: dict[tuple[str, str], str | None] | None = None) -> lc.LotteryEntry:
    """An entry; `names` gives its choices the names of their blocks (午前, 午後, 夜間)."""
    names = names or {}
    choices = [lc.RoundSlot(start=datetime.fromisoformat(a), end=datetime.fromisoformat(b), name_ja=names.get((a, b)))
               for a, b in row.choices]
    won = choices[row.won_index] if row.won_index is not None else None
    return lc.LotteryEntry(
        id=row.id, round_id=row.round_id, facility_id=r.facility_id, month=r.month, applicant=row.applicant,
        group_id=row.group_id, choices=choices, purpose=row.purpose, state=row.state, won=won,
        booking_id=row.booking_id, created_at=aware(row.created_at))


async def open_(session: AsyncSession, *, node: str, data: lc.LotteryOpen, now: datetime) -> lc.LotteryRound:
    if not is_staff(data.actor):
        raise lc.LOTTERY_STAFF_ONLY("only staff open lotteries")
    f = await facilities.get(session, facility_id=data.facility_id)
    opens, closes = data.opens_at.astimezone(JST), data.closes_at.astimezone(JST)
    if not opens < closes:
        raise lc.LOTTERY_INVALID("the window must open before it closes")
    if closes <= now:
        raise lc.LOTTERY_INVALID("the window has closed already: it must close in the future")
    start = month_start(data.month)
    if closes > start:
        raise lc.LOTTERY_INVALID(f"the window must close before {data.month} begins ({start:%Y-%m-%d})")
    if start.date() > availability.today(now) + timedelta(days=c.MAX_DAYS_AHEAD_LIMIT):
        raise lc.LOTTERY_INVALID(f"{data.month} is too far ahead")
    if not round_slots(f, data.month):
        raise lc.LOTTERY_INVALID(f"{f.id} has no open slot in {data.month}")
    taken = (await session.execute(select(R.id).where(R.facility_id == f.id, R.month == data.month))).first()
    if taken is not None:
        raise lc.LOTTERY_EXISTS(f"{f.id} has a lottery for {data.month} already")
    rid = new_id()
    await session.execute(insert(lottery_rounds).values(
        id=rid, facility_id=f.id, month=data.month, opens_at=opens.astimezone(UTC), closes_at=closes.astimezone(UTC),
        max_entries=data.max_entries, state="open", created_by=who(data.actor), created_at=now))
    await announce(session, bus, node=node, at=now, event=lc.LotteryOpened(
        round_id=rid, facility_id=f.id, month=data.month, opens_at=opens, closes_at=closes,
        max_entries=data.max_entries, at=now))
    return await round_view(session, await _round(session, rid), now)


async def get(session: AsyncSession, *, q: lc.LotteryQuery, now: datetime) -> lc.LotteryRound:
    return await round_view(session, await _round(session, q.round_id), now)


async def list_(session: AsyncSession, *, q: lc.LotteryListQuery, now: datetime) -> lc.LotteryRoundList:
    stmt = select(lottery_rounds)
    if q.facility_id is not None:
        stmt = stmt.where(R.facility_id == q.facility_id)
    rows = (await session.execute(stmt.order_by(R.month.desc(), R.facility_id).limit(100))).all()
    return lc.LotteryRoundList(rounds=[await round_view(session, r, now) for r in rows])


def chosen(f: c.Facility, month: str, choices: list[lc.Choice]) -> list[list[str]]:
    """The choices as slots of the round ([[start, end], …] in JST ISO 8601), or the refusal."""
    slots = {(s.start, s.end) for s in round_slots(f, month)}
    out: list[list[str]] = []
    for i, ch in enumerate(choices, 1):
        start, end = ch.start.astimezone(JST), ch.end.astimezone(JST)
        if (start, end) not in slots:
            raise lc.LOTTERY_BAD_CHOICE(f"choice {i} ({start:%Y-%m-%d %H:%M}-{end:%H:%M}) is not a slot of the "
                                        f"round ({f.id}, {month})")
        pair = [start.isoformat(), end.isoformat()]
        if pair in out:
            raise lc.LOTTERY_BAD_CHOICE(f"choice {i} names the same slot as an earlier choice")
        out.append(pair)
    return out


async def enter(session: AsyncSession, *, node: str, data: lc.LotteryEnter, now: datetime,
                open_to_other_nodes: bool = False) -> lc.LotteryEntry:
    r = await _round(session, data.round_id)
    if r.state != "open" or window(r, now) != "open":
        raise lc.LOTTERY_NOT_OPEN(f"applications are taken from {aware(r.opens_at).astimezone(JST):%Y-%m-%d %H:%M} "
                                  f"to {aware(r.closes_at).astimezone(JST):%Y-%m-%d %H:%M}")
    f = await facilities.get(session, facility_id=r.facility_id)
    me = data.actor.global_handle
    admission.check_other_node(booker=me, node=node, facility=f, node_open=open_to_other_nodes)
    group = None
    if data.group_id is not None:
        group = await groups.may_book_for(session, group_id=data.group_id, actor=data.actor)
    key = f"group:{group.id}" if group is not None else f"person:{me}"
    pairs = chosen(f, r.month, list(data.choices))
    if db.dialect_of(session) == "postgresql":  # one applicant's entries are counted one transaction at a time
        await advisory_lock(session, f"lottery.entries:{r.id}:{key}")
    count = (await session.execute(select(func.count()).where(
        E.round_id == r.id, E.applicant_key == key, E.state != "withdrawn"))).scalar_one()
    full = (await session.execute(select(func.count()).where(E.round_id == r.id, E.state != "withdrawn"))).scalar_one()
    if full >= lc.ROUND_ENTRIES_MAX:
        raise lc.LOTTERY_LIMIT(f"the round is full: it takes {lc.ROUND_ENTRIES_MAX} entries at most")
    if count >= r.max_entries:
        per = f"group {group.name}" if group is not None else "person"
        raise lc.LOTTERY_LIMIT(f"at most {r.max_entries} entries per {per} in this round")
    eid = new_id()
    await session.execute(insert(lottery_entries).values(
        id=eid, round_id=r.id, applicant_key=key, applicant=group.name if group is not None else eid,
        group_id=None if group is None else group.id, booker=me, booker_user_id=data.actor.user_id,
        booker_name=data.actor.display_name, purpose=data.purpose,
        user_class="city_group" if group is not None else data.user_class, choices=pairs, state="entered",
        created_at=now))
    return await _entry(session, eid)


async def slot_names(session: AsyncSession, facility_id: str, month: str) -> dict[tuple[str, str], str | None]:
    f = await facilities.get(session, facility_id=facility_id)
    return {(s.start.isoformat(), s.end.isoformat()): s.name_ja for s in round_slots(f, month)}


async def _entry(session: AsyncSession, entry_id: str) -> lc.LotteryEntry:
    row = (await session.execute(select(lottery_entries).where(E.id == entry_id))).first()
    if row is None:
        raise lc.LOTTERY_NOT_FOUND(f"no entry {entry_id}")
    r = await _round(session, row.round_id)
    return entry_view(row, r, await slot_names(session, r.facility_id, r.month))


async def withdraw(session: AsyncSession, *, data: lc.LotteryEntryAction, now: datetime) -> lc.LotteryEntry:
    row = (await session.execute(select(lottery_entries).where(E.id == data.entry_id).with_for_update())).first()
    if row is None or row.booker != data.actor.global_handle:
        raise lc.LOTTERY_NOT_FOUND(f"no entry {data.entry_id} of yours")
    r = await _round(session, row.round_id)
    if row.state != "entered" or r.state != "open" or window(r, now) != "open":
        raise lc.LOTTERY_NOT_OPEN("an entry is withdrawn only while the window is open")
    await session.execute(update(lottery_entries).where(E.id == row.id).values(state="withdrawn"))
    return await _entry(session, row.id)


async def mine(session: AsyncSession, *, q: lc.LotteryMineQuery) -> lc.LotteryEntryList:
    rows = (await session.execute(select(lottery_entries, lottery_rounds.c.facility_id, lottery_rounds.c.month)
                                  .join(lottery_rounds, R.id == E.round_id)
                                  .where(E.booker == q.actor.global_handle)
                                  .order_by(E.created_at.desc()).limit(100))).all()
    names: dict[tuple[str, str], dict[tuple[str, str], str | None]] = {}
    for row in rows:
        if (row.facility_id, row.month) not in names:
            names[row.facility_id, row.month] = await slot_names(session, row.facility_id, row.month)
    return lc.LotteryEntryList(entries=[entry_view(row, row, names[row.facility_id, row.month]) for row in rows])


async def held_before(session: AsyncSession, f: c.Facility, month: str) -> list[lc.Interval]:
    """The held ranges (booking and buffer) of the facility's month before the draw: times only, no one's name."""
    days = month_days(month)
    start = availability.at(days[0], datetime.min.time())
    end = availability.at(days[-1], datetime.min.time()) + timedelta(days=1, minutes=f.buffer_minutes)
    merged: list[list[datetime]] = []  # touching or overlapping ranges as one: the same for the draw, fewer
    for r in await availability.held(session, f.id, start, end):  # in order of start
        a, b = aware(r.starts_at).astimezone(JST), aware(r.held_until).astimezone(JST)
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [lc.Interval(start=a, end=b) for a, b in merged]


async def book_winner(session: AsyncSession, *, node: str, f: c.Facility, entry: Any, slot: list[str],
                      now: datetime) -> str:
    """A winner's booking, through the same guard as any booking: the day's lock on PostgreSQL, the overlap check,
    and the exclusion constraint behind it."""
    start, end = datetime.fromisoformat(slot[0]), datetime.fromisoformat(slot[1])
    held_until = end + timedelta(minutes=f.buffer_minutes)
    if db.dialect_of(session) == "postgresql":
        await advisory_lock(session, f"bookings.day:{f.id}:{start.date()}")
    if await availability.held(session, f.id, start, held_until):
        raise c.BOOKING_TAKEN(f"{start:%Y-%m-%d %H:%M}: taken before the draw could book it")
    bid = new_id()
    try:
        await session.execute(insert(bookings).values(
            id=bid, facility_id=f.id, starts_at=start.astimezone(UTC), ends_at=end.astimezone(UTC),
            held_until=held_until.astimezone(UTC), state="confirmed", purpose=entry.purpose,
            user_class=entry.user_class, fee=fee_and_layout(f, start, end, entry.user_class), booker=entry.booker,
            booker_user_id=entry.booker_user_id, booker_name=entry.booker_name, origin="lottery",
            group_id=entry.group_id, month=start.strftime("%Y-%m"), created_at=now, confirmed_at=now))
    except IntegrityError as exc:
        if sqlstate(exc) == EXCLUSION_VIOLATION:
            raise c.BOOKING_TAKEN(f"{start:%Y-%m-%d %H:%M}: taken before the draw could book it") from None
        raise
    await announce(session, bus, node=node, at=now, event=c.BookingConfirmed(
        booking_id=bid, facility_id=f.id, start=start, end=end, booker=entry.booker, at_counter=False,
        fee=fee_and_layout(f, start, end, entry.user_class), at=now))
    return bid


async def draw_round(session: AsyncSession, *, node: str, data: lc.LotteryDraw, now: datetime) -> lc.LotteryRound:
    if not is_staff(data.actor):
        raise lc.LOTTERY_STAFF_ONLY("only staff draw lotteries")
    r = await _round(session, data.round_id, lock=True)
    if r.state != "open":
        raise lc.LOTTERY_DRAWN(f"the round is {r.state} already")
    if window(r, now) != "closed":
        raise lc.LOTTERY_WINDOW_OPEN(f"applications close at {aware(r.closes_at).astimezone(JST):%Y-%m-%d %H:%M}")
    f = await facilities.get(session, facility_id=r.facility_id)
    rows = {e.id: e for e in (await session.execute(select(lottery_entries).where(
        E.round_id == r.id, E.state == "entered").order_by(E.id))).all()}
    entries = [lc.PublishedEntry(ref=e.id, applicant=e.applicant, choices=[
        lc.Interval(start=datetime.fromisoformat(a), end=datetime.fromisoformat(b)) for a, b in e.choices])
        for e in rows.values()]
    seed = secrets.token_hex(32)
    held = await held_before(session, f, r.month)
    results = draw(seed=seed, buffer_minutes=f.buffer_minutes, held=held, entries=entries)
    for res in results:
        e = rows[res.ref]
        bid = None if res.won is None else await book_winner(session, node=node, f=f, entry=e,
                                                              slot=e.choices[res.won], now=now)
        await session.execute(update(lottery_entries).where(E.id == e.id).values(
            state="lost" if bid is None else "won", won_index=res.won, booking_id=bid))
        slot = None if res.won is None else e.choices[res.won]
        await announce(session, bus, node=node, at=now, event=lc.LotteryResult(
            round_id=r.id, entry_id=e.id, facility_id=f.id, applicant=e.booker, group_id=e.group_id,
            won=bid is not None, booking_id=bid, start=None if slot is None else datetime.fromisoformat(slot[0]),
            end=None if slot is None else datetime.fromisoformat(slot[1]), at=now))
    publication = lc.LotteryPublication(round_id=r.id, facility_id=f.id, month=r.month, seed=seed,
                                        buffer_minutes=f.buffer_minutes, held=held, entries=entries, results=results)
    await session.execute(update(lottery_rounds).where(R.id == r.id).values(
        state="drawn", seed=seed, publication=publication.model_dump(mode="json"), drawn_at=now,
        drawn_by=who(data.actor)))
    await announce(session, bus, node=node, at=now, event=lc.LotteryDrawn(
        round_id=r.id, facility_id=f.id, month=r.month, seed=seed, entries=len(entries),
        winners=sum(1 for x in results if x.won is not None), at=now))
    return await round_view(session, await _round(session, r.id), now)


async def published(session: AsyncSession, *, q: lc.LotteryQuery) -> lc.LotteryPublication:
    r = await _round(session, q.round_id)
    if r.state != "drawn" or r.publication is None:
        raise lc.LOTTERY_NOT_DRAWN("the round is not drawn yet: its seed and entries are published with the results")
    return lc.LotteryPublication.model_validate(r.publication)


async def verify(session: AsyncSession, *, q: lc.LotteryQuery) -> lc.LotteryCheck:
    return check(await published(session, q=q))


async def check_posted(*, data: lc.LotteryPublication) -> lc.LotteryCheck:
    refs = [e.ref for e in data.entries]
    if len(set(refs)) != len(refs):
        raise lc.LOTTERY_BAD_DATA("an entry's ref is named twice: refs are unique in a publication")
    return check(data)
