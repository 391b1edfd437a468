"""Events with a date, a venue and a capacity (issue 17, point 7), on SQLite and PostgreSQL: a person or card earns an
event's points once (a second touch says "already" and credits nothing: in one batch, from a second terminal of the
same event, in a later batch, redelivered); sign-up up to the capacity, a waitlist that moves up on cancellation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.points.ledger.models import journal
from services.points.signups import service as signups
from services.points.tables import bus
from services.points.taps import service
from services.points.taps.models import taps
from tests.points.test_points_service import (  # noqa: F401 - fixtures
    CARDS,
    KEY,
    NODE,
    Sessions,
    credited,
    define,
    record,
    sessions,
    tap,
)
from towntip.kernel import errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import event_signups as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.points import EventIn

JST = __import__("zoneinfo").ZoneInfo("Asia/Tokyo")
HANAKO = Actor(user_id="0192f3a4-aaaa-7bbb-8ccc-00000000000a", global_handle="hanako@testnode", display_name="花子")


async def bind(sessions: Sessions, idm: str, actor: Actor) -> None:  # noqa: F811
    """The card bound to the person (as register_with_code does), the person known to the directory."""
    from services.points.people.service import link_actor

    async with sessions() as s, s.begin():
        await link_actor(s, actor)
        await service.bind_card(s, card=service.card_account_id(KEY, idm),
                                person=service.person_account_id(actor.user_id), method="code", node=NODE,
                                now=utcnow(), key=f"bind:test:{idm}")


async def outbox(sessions: Sessions) -> list[dict]:  # noqa: F811
    """The staged events' envelopes, in order."""
    async with sessions() as s:
        rows = (await s.execute(select(bus.outbox.c.payload).order_by(bus.outbox.c.seq))).scalars().all()
    return [json.loads(p) for p in rows]


def statuses(results: list[service.TapResult]) -> list[tuple[str, int, int]]:
    return [(credited(r).status, credited(r).points, credited(r).balance) for r in results]


async def test_a_card_earns_an_events_points_once(sessions: Sessions) -> None:  # noqa: F811
    await define(sessions, "walk", participant_points=2, volunteer_points=5)
    card = CARDS[0]
    # Two touches in one batch, at two terminals of the same event: the first credits, the second is "already".
    first = await record(sessions, [tap(1, card, event="walk"), tap(2, card, event="walk", terminal="term-2")])
    assert statuses(first) == [("credited", 2, 2), ("already", 0, 2)]
    # A later touch, as a volunteer this time: one credit per event, whichever role came first (docs/points.md).
    later = await record(sessions, [tap(3, card, event="walk", role="volunteer", terminal="term-3")])
    assert statuses(later) == [("already", 0, 2)]
    # The "already" touch redelivered (its ack was lost): "already" again, nothing credited.
    again = await record(sessions, [tap(3, card, event="walk", role="volunteer", terminal="term-3")], duplicate=True)
    assert statuses(again) == [("already", 0, 2)]
    # Another card at the same event, and the same card at another event, are credited.
    await define(sessions, "clean")
    other = await record(sessions, [tap(4, CARDS[1], event="walk"), tap(5, card, event="clean")])
    assert statuses(other) == [("credited", 2, 2), ("credited", 1, 3)]
    async with sessions() as s:
        n_taps = (await s.execute(select(func.count()).select_from(taps))).scalar_one()
        n_journal = (await s.execute(select(func.count()).select_from(journal).where(journal.c.kind == "tap")))
        ev = await service.get_event(session=s, code="walk")
    assert n_taps == 3 and n_journal.scalar_one() == 3
    assert (ev.taps, ev.points_issued, ev.people) == (2, 4, 2)
    types = [e["type"] for e in await outbox(sessions)]
    assert types.count("TapRecorded") == 3 and types.count("CheckinRepeated") == 2


async def test_a_person_earns_once_whatever_card_they_touch(sessions: Sessions) -> None:  # noqa: F811
    """Per person when the card is bound: two cards of one person, or a card that touched before it was bound."""
    await define(sessions, "fest", participant_points=3, volunteer_points=10)
    a, b = CARDS[2], CARDS[3]
    await bind(sessions, a, HANAKO)
    await bind(sessions, b, HANAKO)
    results = await record(sessions, [tap(1, a, event="fest", role="volunteer"), tap(2, b, event="fest")])
    assert statuses(results) == [("credited", 10, 10), ("already", 0, 10)]
    # The taps' events name the person (handle and user id), never the card's IDm: bookings checks in by them.
    rows = [e for e in await outbox(sessions) if e["type"] in ("TapRecorded", "CheckinRepeated")]
    assert [e["type"] for e in rows] == ["TapRecorded", "CheckinRepeated"]
    for e in rows:
        assert (e["data"]["person"], e["data"]["user_id"]) == ("hanako@testnode", HANAKO.user_id)
        assert a not in json.dumps(e) and b not in json.dumps(e)

    # A card that checked in unbound, then bound to a person: that person has checked in through it.
    await define(sessions, "walk")
    c = CARDS[4]
    assert statuses(await record(sessions, [tap(3, c, event="walk")])) == [("credited", 1, 1)]
    other = Actor(user_id="0192f3a4-aaaa-7bbb-8ccc-00000000000b", global_handle="taro@testnode", display_name="太郎")
    await bind(sessions, c, other)
    [again] = await record(sessions, [tap(4, c, event="walk", terminal="term-2")])
    assert credited(again).status == "already"


def actor(n: int) -> Actor:
    return Actor(user_id=f"0192f3a4-aaaa-7bbb-8ccc-{n:012d}", global_handle=f"person{n:03d}@testnode",
                 display_name=f"参加者{n}")


async def call(sessions: Sessions, fn, **kw):  # noqa: F811 - a service function in its own transaction
    async with sessions() as s, s.begin():
        return await fn(s, node=NODE, now=kw.pop("now", utcnow()), **kw)


async def put(sessions: Sessions, **fields) -> None:  # noqa: F811
    async with sessions() as s, s.begin():
        await service.put_event(session=s, event_in=EventIn(**fields), node=NODE)


async def test_sign_up_up_to_capacity_then_the_waitlist_moves_up(sessions: Sessions) -> None:  # noqa: F811
    start = datetime(2031, 6, 14, 10, 0, tzinfo=JST)
    await put(sessions, code="repair", name="おもちゃ病院 Toy repair", starts_at=start,
              ends_at=start + timedelta(hours=2), venue_facility="kominkan-hall", venue_booking="b-123",
              venue_name="中央公民館 ホール", capacity=2)
    got = [await call(sessions, signups.signup, data=sc.SignupIn(actor=actor(n), code="repair")) for n in range(4)]
    assert [(g.state, g.position) for g in got] == [("signed_up", None), ("signed_up", None), ("waitlisted", 1),
                                                   ("waitlisted", 2)]
    with pytest.raises(errors.Conflict):  # twice: refused, nothing changes
        await call(sessions, signups.signup, data=sc.SignupIn(actor=actor(0), code="repair"))
    async with sessions() as s:
        ev = await service.get_event(session=s, code="repair")
    assert (ev.capacity, ev.signed_up, ev.waitlisted, ev.seats_left) == (2, 2, 2, 0)
    assert ev.starts_at == start and ev.venue_name == "中央公民館 ホール" and ev.venue_booking == "b-123"

    # A seat is let go: the first waiting moves up, and is told (EventSeatGiven); the second is now first.
    left = await call(sessions, signups.cancel, data=sc.SignupIn(actor=actor(1), code="repair"))
    assert left.state == "cancelled"
    async with sessions() as s:
        line = await signups.list_for_event(s, q=sc.SignupsQuery(code="repair"))
        mine = await signups.mine(s, q=sc.MineQuery(actor=actor(3)))
    assert [(x.person, x.state, x.position) for x in line.signups] == [
        ("person000@testnode", "signed_up", None), ("person002@testnode", "signed_up", None),
        ("person003@testnode", "waitlisted", 1)]
    assert [(x.code, x.state, x.position) for x in mine.signups] == [("repair", "waitlisted", 1)]
    given = [e["data"] for e in await outbox(sessions) if e["type"] == "EventSeatGiven"]
    assert [(g["code"], g["person"]) for g in given] == [("repair", "person002@testnode")]

    # Cancelling a place on the waitlist frees no seat; cancelling twice is refused.
    await call(sessions, signups.cancel, data=sc.SignupIn(actor=actor(3), code="repair"))
    with pytest.raises(errors.NotFound):
        await call(sessions, signups.cancel, data=sc.SignupIn(actor=actor(3), code="repair"))
    # Signing up again after cancelling: at the end of the line (here a free seat, after more capacity).
    await put(sessions, code="repair", name="おもちゃ病院 Toy repair", capacity=3)
    again = await call(sessions, signups.signup, data=sc.SignupIn(actor=actor(1), code="repair"))
    assert again.state == "signed_up"
    async with sessions() as s:
        ev = await service.get_event(session=s, code="repair")
    assert (ev.signed_up, ev.waitlisted, ev.seats_left, ev.starts_at) == (3, 0, 0, start)  # the date stayed

    # After the start: no sign-up, no cancellation.
    with pytest.raises(errors.Conflict, match="started"):
        await call(sessions, signups.signup, data=sc.SignupIn(actor=actor(9), code="repair"),
                   now=start + timedelta(minutes=1))


async def test_an_event_without_a_date_takes_no_sign_up_and_bad_times_are_refused(sessions: Sessions) -> None:  # noqa: F811
    await define(sessions, "walk")
    with pytest.raises(errors.Conflict, match="no date"):
        await call(sessions, signups.signup, data=sc.SignupIn(actor=actor(1), code="walk"))
    with pytest.raises(errors.NotFound):
        await call(sessions, signups.signup, data=sc.SignupIn(actor=actor(1), code="nope"))
    t = datetime(2031, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="ends before it starts"):
        EventIn(code="x", name="x", starts_at=t, ends_at=t)
    # The start and the end change together: a later start alone clears the old end (never an end before a start).
    await put(sessions, code="walk", name="Walk", starts_at=t, ends_at=t + timedelta(hours=2))
    await put(sessions, code="walk", name="Walk", starts_at=t + timedelta(hours=5))
    async with sessions() as s:
        ev = await service.get_event(session=s, code="walk")
    assert (ev.starts_at, ev.ends_at) == (t + timedelta(hours=5), None)
