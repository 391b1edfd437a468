"""The points domain on real databases (SQLite and PostgreSQL): rules per event, a balanced ledger, taps once.

services/points/taps/service.py is called directly inside a session and transaction, as the tap handler does; the
kernel's inbox is not involved here, so "duplicate" is what the caller says it is (TapToApply.duplicate).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.points.app import MIGRATIONS
from services.points.ledger import service as ledger
from services.points.ledger.models import accounts, balances, journal, postings
from services.points.tables import bus
from services.points.taps import service
from services.points.taps.models import (
    card_binding_requests,
    card_bindings,
    card_registration_codes,
    events,
    taps,
)
from towntip.kernel import db, errors, migrate
from towntip.kernel.contracts.points import Balance, EventIn, Tap, TapOutcome

NODE = "testnode"
KEY = bytes(range(32))
CARDS = [f"{n:016X}" for n in (0x012E4CD8A30B5C7F, 0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x00000000DEADBEEF,
                                  0xA1B2C3D4E5F60718, 0x1111222233334444, 0x9F8E7D6C5B4A3928)]
T0 = datetime(2025, 5, 3, 10, 0, tzinfo=UTC)

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(database: tuple[str, str | None]) -> AsyncIterator[Sessions]:
    """A migrated points database, as services/points/app.py makes it."""
    url, schema = database
    engine = db.create_engine(url, schema=schema)
    try:
        await migrate.upgrade(engine, MIGRATIONS, schema=schema)
        yield db.sessionmaker(engine)
    finally:
        await engine.dispose()


def tap(n: int, card: str, *, event: str = "ev", role: str = "participant", terminal: str = "term-1",
        tapped_at: datetime | None = None) -> Tap:
    return Tap(tap_id=f"tap-{n:06d}", terminal_id=terminal, card_idm=card, event=event, role=role,  # type: ignore[arg-type]
               tapped_at=tapped_at or T0 + timedelta(seconds=n))


async def define(sessions: Sessions, code: str, *, series: int = 0, **rule: int) -> None:
    """The event `code` (and `code`-1 … `code`-`series` with the same rule: a card earns an event's points once, so
    a test that counts a card's points over several check-ins sends them to events of their own)."""
    async with sessions() as s, s.begin():
        for c in [code, *(f"{code}-{k}" for k in range(1, series + 1))]:
            await service.put_event(session=s, event_in=EventIn(code=c, name=f"Event {c}", **rule), node=NODE)


async def record(sessions: Sessions, items: Sequence[Tap], *, duplicate: bool | Sequence[bool] = False
                 ) -> list[service.TapResult]:
    flags = [duplicate] * len(items) if isinstance(duplicate, bool) else list(duplicate)
    async with sessions() as s, s.begin():
        return await service.record_taps(
            session=s, items=[service.TapToApply(t, d) for t, d in zip(items, flags, strict=True)],
            card_key=KEY, node=NODE,
        )


async def card_balance(sessions: Sessions, idm: str) -> Balance:
    async with sessions() as s:
        return await service.get_card_balance(session=s, card_key=KEY, idm=idm)


async def snapshot(sessions: Sessions) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger's tables (and the outbox's size): to show that something changed nothing."""

    out: dict[str, list[tuple[Any, ...]]] = {}
    async with sessions() as s:
        for table in (events, accounts, balances, journal, postings, taps):
            rows = await s.execute(select(table))
            out[table.name] = sorted(tuple(r) for r in rows)
        out["outbox"] = [((await s.execute(select(func.count()).select_from(bus.outbox))).scalar_one(),)]
    return out


def credited(result: service.TapResult) -> TapOutcome:
    assert isinstance(result, TapOutcome), f"expected an outcome, got {result!r}"
    return result


async def test_each_event_has_its_own_rule(sessions: Sessions) -> None:
    await define(sessions, "std")  # the defaults: participant 1, volunteer 5
    await define(sessions, "big", participant_points=2, volunteer_points=10)
    async with sessions() as s:
        std = await service.get_event(session=s, code="std")
        big = await service.get_event(session=s, code="big")
    assert (std.participant_points, std.volunteer_points) == (1, 5)
    assert (big.participant_points, big.volunteer_points) == (2, 10)

    a, b, c, d = CARDS[:4]
    results = await record(sessions, [
        tap(1, a, event="std"),
        tap(2, c, event="std", role="volunteer"),
        tap(3, b, event="big"),
        tap(4, d, event="big", role="volunteer"),
        tap(5, a, event="big", role="volunteer"),
    ])
    assert [(credited(r).status, credited(r).points) for r in results] == [
        ("credited", 1), ("credited", 5), ("credited", 2), ("credited", 10), ("credited", 10)
    ]
    # The outcome carries the running balance of the card, inside the batch too.
    assert [credited(r).balance for r in results] == [1, 5, 2, 10, 11]
    assert (await card_balance(sessions, a)) == Balance(asset=service.ASSET_POINTS, balance=11, taps=2)
    assert (await card_balance(sessions, b)) == Balance(asset=service.ASSET_POINTS, balance=2, taps=1)

    async with sessions() as s:
        figures = {e.code: (e.taps, e.points_issued, e.people) for e in await service.list_events(session=s)}
    assert figures == {"big": (3, 22, 3), "std": (2, 6, 2)}

    # A changed rule applies to later taps only.
    await define(sessions, "std", participant_points=3, volunteer_points=0)
    later = await record(sessions, [tap(6, b, event="std"), tap(7, CARDS[4], event="std", role="volunteer")])
    assert [credited(r).points for r in later] == [3, 0]
    assert (await card_balance(sessions, a)).balance == 11
    assert (await card_balance(sessions, b)) == Balance(asset=service.ASSET_POINTS, balance=5, taps=2)


async def test_the_ledger_balances_after_a_batch_of_taps(sessions: Sessions) -> None:
    # A card earns an event's points once: every tap of the test at an event of its own (each of one of two rules).
    async with sessions() as s, s.begin():
        for k in range(1, 101):
            rule_k = {"participant_points": 2, "volunteer_points": 10} if k % 4 == 1 else {}
            await service.put_event(session=s, event_in=EventIn(code=f"e{k}", name=f"Event {k}", **rule_k),
                                    node=NODE)
    rule = {"ev": (1, 5), "fest": (2, 10)}
    expected: dict[str, int] = {}
    n = 0
    for batch in range(4):  # several transactions, several cards, both roles, both rules
        items = []
        for _ in range(25):
            n += 1
            card = CARDS[(n * 3 + batch) % len(CARDS)]
            kind = "fest" if n % 4 == 1 else "ev"
            event = f"e{n}"
            role = "volunteer" if n % 5 == 0 else "participant"
            items.append(tap(n, card, event=event, role=role))
            expected[card] = expected.get(card, 0) + rule[kind][role == "volunteer"]
        assert all(credited(r).status == "credited" for r in await record(sessions, items))
    total = sum(expected.values())
    assert total > 100 and len(expected) == len(CARDS)

    async with sessions() as s:
        per_asset = dict((await s.execute(
            select(postings.c.asset, func.sum(postings.c.amount)).group_by(postings.c.asset))).all())
        unbalanced = (await s.execute(
            select(postings.c.journal_id).group_by(postings.c.journal_id).having(func.sum(postings.c.amount) != 0)
        )).all()
        issued = await service.system_balance(s, service.ISSUANCE)
        n_journal = (await s.execute(select(func.count()).select_from(journal))).scalar_one()
        n_postings = (await s.execute(select(func.count()).select_from(postings))).scalar_one()
        from_postings = dict((await s.execute(
            select(postings.c.account_id, func.sum(postings.c.amount))
            .where(postings.c.account_id != service.ISSUANCE).group_by(postings.c.account_id))).all())
        running = dict((await s.execute(select(balances.c.account_id, balances.c.balance))).all())
    assert per_asset == {service.ASSET_POINTS: 0}
    assert unbalanced == []
    assert issued == -total
    assert n_journal == n and n_postings == 2 * n
    assert service.ISSUANCE not in running  # the issuance account keeps no running balance row
    assert {a: int(v) for a, v in from_postings.items()} == running
    for card, points in expected.items():
        assert (await card_balance(sessions, card)).balance == points, card


async def test_the_card_idm_is_stored_nowhere(sessions: Sessions, database: tuple[str, str | None]) -> None:
    await define(sessions, "ev")
    given = [CARDS[0], CARDS[1].lower(), CARDS[2]]  # a terminal may send lower case; it is the same card
    await bind_request(sessions, PERSON, CARDS[2].lower())  # a request typed online, and the code its tap shows
    results = await record(sessions, [tap(i, c, role=("volunteer" if i == 1 else "participant"))
                                      for i, c in enumerate(given)])
    assert all(credited(r).status == "credited" for r in results)
    code = shown_code(results[2]).replace("-", "")
    await record(sessions, [tap(0, CARDS[0])], duplicate=True)  # the duplicate path reads but writes nothing
    assert (await card_balance(sessions, CARDS[1])).balance == 5

    # Every row of every table in the database, whatever models.py says there is.
    _, schema = database
    dump: list[tuple[str, str]] = []
    async with sessions() as s:
        conn = await s.connection()
        md = MetaData()
        await conn.run_sync(lambda c: md.reflect(c, schema=schema))
        assert {"taps", "journal", "postings", "accounts", "balances", "outbox", "inbox", "events"} <= {
            t.name for t in md.tables.values()}
        for table in md.tables.values():
            for row in await s.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        text = bytes(value).decode("latin-1")
                    else:
                        text = str(value)
                    dump.append((table.name, text))
    everything = "\n".join(text for _, text in dump)
    assert "tap-000001" in everything and "TapRecorded" in everything  # the dump does hold the taps and events
    assert {"card_binding_requests", "card_registration_codes"} <= {name for name, _ in dump}  # and these rows
    assert code not in everything and code.lower() not in everything  # a code is kept as its hash only
    for idm in CARDS[:3]:
        for form in (idm.upper(), idm.lower()):
            where = sorted({name for name, text in dump if form in text})
            assert not where, f"IDm {form} stored in clear in {where}"


async def test_the_same_tap_is_credited_once(sessions: Sessions) -> None:
    await define(sessions, "ev")
    card = CARDS[0]
    first = credited((await record(sessions, [tap(1, card, role="volunteer")]))[0])
    assert (first.status, first.points, first.balance) == ("credited", 5, 5)
    before = await snapshot(sessions)

    # The kernel's inbox knew the key: a duplicate is answered from what was stored, and changes nothing.
    again = credited((await record(sessions, [tap(1, card, role="volunteer")], duplicate=True))[0])
    assert (again.tap_id, again.status, again.points, again.balance) == ("tap-000001", "duplicate", 5, 5)
    assert await snapshot(sessions) == before

    # Delivered as new in a later transaction (the inbox did not say): the card checked in to that event already,
    # so nothing is credited (answered "already"; only its CheckinRepeated event is staged).
    third = credited((await record(sessions, [tap(1, card, role="volunteer")]))[0])
    assert (third.status, third.points, third.balance) == ("already", 0, 5)
    after = await snapshot(sessions)
    assert {k: v for k, v in after.items() if k != "outbox"} == {k: v for k, v in before.items() if k != "outbox"}
    assert (await card_balance(sessions, card)) == Balance(asset=service.ASSET_POINTS, balance=5, taps=1)

    # Within one batch: the first copy credits, the second (marked duplicate by the consumer) reports it.
    await define(sessions, "ev2")
    both = await record(sessions, [tap(2, card, event="ev2"), tap(2, card, event="ev2")], duplicate=[False, True])
    assert [(credited(r).status, credited(r).points, credited(r).balance) for r in both] == [
        ("credited", 1, 6), ("duplicate", 1, 6)
    ]
    assert (await card_balance(sessions, card)) == Balance(asset=service.ASSET_POINTS, balance=6, taps=2)


async def test_the_same_instant_at_another_offset_is_the_same_tap(sessions: Sessions) -> None:
    await define(sessions, "ev")
    original = tap(1, CARDS[0])
    credited((await record(sessions, [original]))[0])
    before = await snapshot(sessions)
    jst = original.model_copy(update={"tapped_at": original.tapped_at.astimezone(timezone(timedelta(hours=9)))})
    assert jst.tapped_at == original.tapped_at and jst.model_dump_json() != original.model_dump_json()
    [again] = await record(sessions, [jst], duplicate=True)
    assert (credited(again).status, credited(again).balance) == ("duplicate", 1)
    assert await snapshot(sessions) == before


@pytest.mark.parametrize(
    "changed",
    [
        {"event": "other"},
        {"role": "participant"},
        {"card": CARDS[1]},
        {"tapped_at": T0 + timedelta(hours=1)},
    ],
    ids=["event", "role", "card", "time"],
)
async def test_the_same_key_with_another_payload_is_a_conflict(sessions: Sessions, changed: dict[str, Any]) -> None:
    await define(sessions, "ev")
    await define(sessions, "other", participant_points=7, volunteer_points=7)
    original = tap(1, CARDS[0], role="volunteer")
    credited((await record(sessions, [original]))[0])
    before = await snapshot(sessions)

    fields = {"event": "ev", "role": "volunteer", "tapped_at": original.tapped_at} | changed
    card = fields.pop("card", CARDS[0])
    forged = tap(1, card, **fields)
    assert forged.key == original.key and forged != original
    [result] = await record(sessions, [forged], duplicate=True)
    assert isinstance(result, errors.Conflict), result
    assert isinstance(result, errors.ServiceError) and result.code == 409
    assert "tap-000001" in result.reason
    assert await snapshot(sessions) == before
    assert (await card_balance(sessions, CARDS[0])).balance == 5
    assert (await card_balance(sessions, CARDS[1])) == Balance(asset=service.ASSET_POINTS, balance=0, taps=0)


async def test_a_tap_for_an_unknown_event_is_refused(sessions: Sessions) -> None:
    await define(sessions, "ev")
    before = await snapshot(sessions)
    [refused] = await record(sessions, [tap(1, CARDS[0], event="no-such-event", role="volunteer")])
    assert isinstance(refused, errors.NotFound) and refused.code == 404
    assert "no-such-event" in refused.reason
    assert await snapshot(sessions) == before

    # In a batch, the refused tap credits nothing and spares the others.
    results = await record(sessions, [tap(2, CARDS[0], event="nope"), tap(3, CARDS[1]), tap(4, CARDS[0], event="nope")])
    assert isinstance(results[0], errors.NotFound) and isinstance(results[2], errors.NotFound)
    assert credited(results[1]).points == 1
    assert (await card_balance(sessions, CARDS[0])) == Balance(asset=service.ASSET_POINTS, balance=0, taps=0)
    assert (await card_balance(sessions, CARDS[1])).balance == 1
    async with sessions() as s:
        assert (await s.execute(select(func.count()).select_from(taps))).scalar_one() == 1
        assert await service.system_balance(s, service.ISSUANCE) == -1
        with pytest.raises(errors.NotFound):
            await service.get_event(session=s, code="nope")

    # A repeat of a refused tap has nothing to be a duplicate of.
    [repeat] = await record(sessions, [tap(2, CARDS[0], event="nope")], duplicate=True)
    assert isinstance(repeat, errors.ServiceError) and repeat.code == 422


async def test_an_unknown_card_has_nothing(sessions: Sessions) -> None:
    assert (await card_balance(sessions, CARDS[5])) == Balance(asset=service.ASSET_POINTS, balance=0, taps=0)
    await define(sessions, "ev")
    credited((await record(sessions, [tap(1, CARDS[0]), tap(2, CARDS[1], role="volunteer")]))[0])
    assert (await card_balance(sessions, CARDS[5])) == Balance(asset=service.ASSET_POINTS, balance=0, taps=0)
    assert (await card_balance(sessions, CARDS[5].lower())).balance == 0
    assert (await card_balance(sessions, CARDS[1].lower())) == Balance(asset=service.ASSET_POINTS, balance=5, taps=1)
    async with sessions() as s:  # asking does not open an account
        assert (await service.balances_of(s, [service.card_account_id(KEY, CARDS[5])])) == {}


# ---- cards bound to people ----------------------------------------------------------------------------------------

PERSON = "0192f3a4-aaaa-7bbb-8ccc-000000000001"
OTHER = "0192f3a4-aaaa-7bbb-8ccc-000000000002"


async def bind_request(sessions: Sessions, person: str, idm: str) -> Any:
    async with sessions() as s, s.begin():
        return await service.request_binding(session=s, card_key=KEY, person=person, idm=idm)


async def points_of(sessions: Sessions, person: str) -> Any:
    async with sessions() as s:
        return await service.person_points(session=s, person=person)


async def enter_code(sessions: Sessions, person: str, code: str) -> Any:
    """A code typed on the portal's card page, as the endpoint takes it (CardCodeIn: dashes and spaces ignored)."""
    from towntip.kernel.contracts.points import CardCodeIn

    q = CardCodeIn(person=person, code=code)
    async with sessions() as s, s.begin():
        return await service.register_with_code(session=s, person=q.person, code=q.code, node=NODE)


def shown_code(outcome: service.TapResult) -> str:
    """The code an ordinary tap of a card with a binding request waiting shows, with where to enter it."""
    display = credited(outcome).display
    code = display[:9]
    assert code[4] == "-" and all(ch in service.REG_ALPHABET for ch in code.replace("-", "")), display
    assert display == service.pending_display(code)
    assert "マイページ" in display and "My Page" in display and len(display) < 80, display
    return code


async def codes_of(sessions: Sessions) -> list[tuple[Any, ...]]:
    async with sessions() as s:
        return sorted(tuple(r) for r in await s.execute(select(card_registration_codes)))


async def binding_state(sessions: Sessions) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger's rows (snapshot) with the cards' bindings, requests and codes."""
    out = await snapshot(sessions)
    async with sessions() as s:
        for table in (card_bindings, card_binding_requests, card_registration_codes):
            out[table.name] = sorted(tuple(r) for r in await s.execute(select(table)))
    return out


async def test_a_binding_request_makes_the_cards_next_tap_show_a_code_that_binds_it(sessions: Sessions) -> None:
    await define(sessions, "ev", participant_points=1, volunteer_points=5, series=9)  # ev-1 … ev-9
    # 6 points on the card
    await record(sessions, [tap(1, CARDS[0], event="ev-1"), tap(2, CARDS[0], role="volunteer", event="ev-2")])
    pending = await bind_request(sessions, PERSON, CARDS[0].lower())
    assert pending.card_ref == service.card_account_id(KEY, CARDS[0]).removeprefix("card:")[:8]
    mine = await points_of(sessions, PERSON)
    assert mine.balance == 0 and mine.cards == [] and [p.card_ref for p in mine.pending] == [pending.card_ref]

    # The card's ordinary tap: credited to the card as any tap, nothing bound or moved; the terminal shows a code.
    [outcome] = await record(sessions, [tap(3, CARDS[0], event="ev-3")])
    assert (credited(outcome).status, credited(outcome).points, credited(outcome).balance) == ("credited", 1, 7)
    code = shown_code(outcome)
    mine = await points_of(sessions, PERSON)
    assert mine.balance == 0 and mine.cards == [] and [p.card_ref for p in mine.pending] == [pending.card_ref]
    assert (await card_balance(sessions, CARDS[0])) == Balance(asset=service.ASSET_POINTS, balance=7, taps=3)
    [stored] = await codes_of(sessions)  # one code, its hash only
    assert code.replace("-", "") not in str(stored) and stored[0] == service._code_hash(code.replace("-", ""))

    # The code entered on the portal binds the card; all its points (that tap's too) move to the person.
    mine = await enter_code(sessions, PERSON, code.lower())
    assert mine.balance == 7 and [c.card_ref for c in mine.cards] == [pending.card_ref] and mine.pending == []
    assert (await card_balance(sessions, CARDS[0])).balance == 0
    [later] = await record(sessions, [tap(4, CARDS[0], role="volunteer", event="ev-4")])
    assert (credited(later).balance, credited(later).display) == (12, "")  # bound: no request, no code
    assert (await points_of(sessions, PERSON)).balance == 12
    async with sessions() as s:  # still a zero-sum ledger, and the move is one entry keyed by the tap that showed it
        total = (await s.execute(select(func.sum(postings.c.amount)))).scalar_one()
        assert total == 0
        moves = (await s.execute(select(journal.c.idempotency_key).where(journal.c.kind == "bind"))).scalars().all()
        assert moves == [f"bind:{tap(3, CARDS[0], event='ev-3').key}"]
    with pytest.raises(errors.NotFound, match="unknown, used or expired"):  # single use
        await enter_code(sessions, PERSON, code)

    # Another person cannot take the card over; the owner reports it lost; its taps no longer credit her.
    with pytest.raises(errors.Conflict):
        await bind_request(sessions, OTHER, CARDS[0])
    with pytest.raises(errors.Conflict):
        await bind_request(sessions, PERSON, CARDS[0])
    async with sessions() as s, s.begin():
        with pytest.raises(errors.NotFound):
            await service.unbind_card(session=s, person=OTHER, ref=pending.card_ref)
    async with sessions() as s, s.begin():
        after = await service.unbind_card(session=s, person=PERSON, ref=pending.card_ref)
    assert after.balance == 12 and after.cards == []
    await record(sessions, [tap(5, CARDS[0], event="ev-5")])
    assert (await points_of(sessions, PERSON)).balance == 12 and (await card_balance(sessions, CARDS[0])).balance == 1


async def test_a_request_for_someone_elses_card_gives_the_requester_nothing(sessions: Sessions) -> None:
    """The attack the code closes: an IDm is no secret. A (OTHER) asks online to bind B's (PERSON's) card; B's next
    ordinary tap used to bind the card to A and hand A its points."""
    await define(sessions, "ev", participant_points=1, volunteer_points=5, series=9)  # ev-1 … ev-9
    victim = CARDS[2]
    await record(sessions, [tap(1, victim, role="volunteer", event="ev-1")])  # B's card holds 5 points
    await bind_request(sessions, OTHER, victim)

    [outcome] = await record(sessions, [tap(2, victim, event="ev-2")])  # B touches as usual
    assert (credited(outcome).points, credited(outcome).balance) == (1, 6)
    code = shown_code(outcome)  # on B's terminal's screen, for B's eyes
    attacker = await points_of(sessions, OTHER)
    assert attacker.balance == 0 and attacker.cards == [] and len(attacker.pending) == 1
    assert (await card_balance(sessions, victim)).balance == 6

    # A has no code: a guess binds nothing and changes nothing; more taps of B's card show A nothing either.
    before = await binding_state(sessions)
    wrong = "ABCD-EFGH" if code != "ABCD-EFGH" else "EFGH-ABCD"
    for who in (OTHER, PERSON):
        with pytest.raises(errors.NotFound, match="unknown, used or expired"):
            await enter_code(sessions, who, wrong)
    assert await binding_state(sessions) == before
    [again] = await record(sessions, [tap(3, victim, event="ev-3")])
    assert credited(again).display == "" and len(await codes_of(sessions)) == 1  # the live code is the only one
    assert (await points_of(sessions, OTHER)).cards == [] and (await card_balance(sessions, victim)).balance == 7

    # B enters the code B saw: the card is B's, with all its points; A's request is gone, A has nothing.
    mine = await enter_code(sessions, PERSON, code)
    assert mine.balance == 7 and len(mine.cards) == 1 and mine.pending == []
    attacker = await points_of(sessions, OTHER)
    assert attacker.balance == 0 and attacker.cards == [] and attacker.pending == []
    with pytest.raises(errors.NotFound):
        await enter_code(sessions, OTHER, code)
    with pytest.raises(errors.Conflict):
        await bind_request(sessions, OTHER, victim)
    [b_tap] = await record(sessions, [tap(4, victim, event="ev-4")])
    assert credited(b_tap).balance == 8 and (await points_of(sessions, PERSON)).balance == 8


async def test_a_card_shows_one_live_code_however_often_it_taps(sessions: Sessions) -> None:
    await define(sessions, "ev", participant_points=1, volunteer_points=5, series=9)  # ev-1 … ev-9
    card, other_card = CARDS[3], CARDS[4]
    await bind_request(sessions, PERSON, card)

    # One batch with several taps of the card (a spool re-sent after a while offline): one code, on its last tap;
    # another card in the batch (no request) shows none.
    batch = [tap(1, card, event="ev-1"), tap(2, other_card, event="ev-2"), tap(3, card, role="volunteer", event="ev-3"),
             tap(4, card, event="ev-4")]
    results = await record(sessions, batch)
    assert [credited(r).balance for r in results] == [1, 1, 6, 7]
    assert [credited(r).display for r in results[:3]] == ["", "", ""]
    code = shown_code(results[3])
    [stored] = await codes_of(sessions)
    assert stored[1] == batch[3].key  # made by that tap, once (the key is unique)

    # The same taps redelivered (the inbox knew them): duplicates, no second code, nothing changed.
    before = await binding_state(sessions)
    again = await record(sessions, batch, duplicate=True)
    assert [(credited(r).status, credited(r).points, credited(r).display) for r in again] == [
        ("duplicate", 1, ""), ("duplicate", 1, ""), ("duplicate", 5, ""), ("duplicate", 1, "")]
    assert await binding_state(sessions) == before
    # Delivered as new (the inbox did not say): the card checked in to that event already, so nothing is credited
    # ("already"), no code is made, nothing changes.
    [anew] = await record(sessions, [batch[3]])
    assert (credited(anew).status, credited(anew).points, credited(anew).display) == ("already", 0, "")
    assert {k: v for k, v in (await binding_state(sessions)).items() if k != "outbox"} == \
        {k: v for k, v in before.items() if k != "outbox"}  # only its CheckinRepeated event is new

    # A later batch while the code lives: no new code.
    [later] = await record(sessions, [tap(5, card, event="ev-5")])
    assert credited(later).display == "" and len(await codes_of(sessions)) == 1
    # The code expired, the request still waits: the next tap shows a new one (the old one stays dead).
    async with sessions() as s, s.begin():
        await s.execute(card_registration_codes.update().values(expires_at=T0))
    [fresh] = await record(sessions, [tap(6, card, event="ev-6")])
    new_code = shown_code(fresh)
    assert new_code != code and len(await codes_of(sessions)) == 2
    with pytest.raises(errors.NotFound):
        await enter_code(sessions, PERSON, code)
    mine = await enter_code(sessions, PERSON, new_code)
    assert mine.balance == 9 and len(mine.cards) == 1  # 1 + 5 + 1 + 1 + 1
    assert (await card_balance(sessions, other_card)).balance == 1  # the other card is untouched


async def test_an_expired_binding_request_binds_nothing(sessions: Sessions) -> None:
    await define(sessions, "ev")
    await bind_request(sessions, PERSON, CARDS[1])
    async with sessions() as s, s.begin():
        await s.execute(card_binding_requests.update().values(expires_at=T0))
    [outcome] = await record(sessions, [tap(1, CARDS[1])])
    assert credited(outcome).display == ""  # no code: the request has expired
    assert await codes_of(sessions) == []
    mine = await points_of(sessions, PERSON)
    assert mine.balance == 0 and mine.cards == [] and mine.pending == []
    assert (await card_balance(sessions, CARDS[1])).balance == 1


async def test_two_batches_with_one_pending_card_make_one_code(sessions: Sessions, database: tuple[str, str | None]
                                                               ) -> None:
    """On PostgreSQL two tap batches run at once (consumer concurrency > 1, or two processes): the request's row
    lock makes the second wait for the first, then see its code. (SQLite has one writer: nothing to show there.)"""
    if database[1] is None:
        pytest.skip("SQLite has one writer")
    import asyncio

    await define(sessions, "ev", series=2)  # a card earns an event's points once: two events
    await bind_request(sessions, PERSON, CARDS[5])
    first_session = sessions()
    async with first_session as s1:
        await s1.begin()
        [first] = await service.record_taps(
            session=s1, items=[service.TapToApply(tap(1, CARDS[5], event="ev-1"), False)], card_key=KEY, node=NODE)
        code = shown_code(first)
        second = asyncio.create_task(record(sessions, [tap(2, CARDS[5], event="ev-2", terminal="term-2")]))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting for the request's lock
        await s1.commit()
    [other] = await asyncio.wait_for(second, 30)
    assert credited(other).display == "" and len(await codes_of(sessions)) == 1
    assert (await card_balance(sessions, CARDS[5])).balance == 2
    assert len((await enter_code(sessions, PERSON, code)).cards) == 1


async def test_a_tap_waiting_on_a_code_being_entered_credits_the_new_owner(
        sessions: Sessions, database: tuple[str, str | None]) -> None:
    """On PostgreSQL: the code is being entered (its transaction has removed the request and moved the points) while
    a batch with the card's tap runs; the batch waits for the request's lock, then credits the person, not the card
    (which would leave the point behind on an account nobody reads)."""
    if database[1] is None:
        pytest.skip("SQLite has one writer")
    import asyncio

    await define(sessions, "ev", series=2)  # a card earns an event's points once: two events
    await bind_request(sessions, PERSON, CARDS[6])
    code = shown_code((await record(sessions, [tap(1, CARDS[6], event="ev-1")]))[0])
    async with sessions() as s1:
        await s1.begin()
        await service.register_with_code(session=s1, person=PERSON, code=code.replace("-", ""), node=NODE)
        second = asyncio.create_task(record(sessions, [tap(2, CARDS[6], event="ev-2")]))
        await asyncio.sleep(0.5)
        assert not second.done()  # waiting for the request's lock
        await s1.commit()
    [later] = await asyncio.wait_for(second, 30)
    assert (credited(later).balance, credited(later).display) == (2, "")
    assert (await points_of(sessions, PERSON)).balance == 2 and (await card_balance(sessions, CARDS[6])).balance == 0


async def test_a_tap_is_stored_at_its_instant_whatever_its_offset(sessions: Sessions) -> None:
    """A terminal in Japan sends +09:00; the ledger keeps the instant (SQLite keeps no offset: it stores UTC)."""
    await define(sessions, "ev")
    jst = timezone(timedelta(hours=9))
    await record(sessions, [tap(1, CARDS[0], tapped_at=datetime(2025, 5, 3, 10, 0, tzinfo=jst))])
    async with sessions() as s:
        stored = (await s.execute(select(taps.c.tapped_at))).scalar_one()
    stored = stored if stored.tzinfo else stored.replace(tzinfo=UTC)
    assert stored == datetime(2025, 5, 3, 1, 0, tzinfo=UTC)


# ---- one ledger writer ----------------------------------------------------------------------------------------


async def test_taps_post_through_the_ledger_writer(sessions: Sessions, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tap's journal entry and postings are written by ledger.post_batch, the writer of every other money path,
    and look exactly like an entry posted by any other path (issuance -> the credited account, in that order)."""
    assert not hasattr(service, "write_rows") and "db.write_rows" not in inspect.getsource(service.record_taps)
    await define(sessions, "ev", participant_points=3, volunteer_points=7)
    calls: list[list[ledger.Entry]] = []
    post_batch = ledger.post_batch

    async def spy(session: AsyncSession, entries: Sequence[ledger.Entry], **kw: Any) -> ledger.Batch:
        calls.append(list(entries))
        return await post_batch(session, entries, **kw)

    monkeypatch.setattr(ledger, "post_batch", spy)
    results = await record(sessions, [tap(1, CARDS[0]), tap(2, CARDS[1], role="volunteer")])
    assert [credited(r).points for r in results] == [3, 7]
    assert [[e.key for e in batch] for batch in calls] == [[tap(1, CARDS[0]).key, tap(2, CARDS[1]).key]]
    card = service.card_account_id(KEY, CARDS[1])

    # The same movement posted by another path (the operator's ledger endpoint uses post_entries).
    async with sessions() as s, s.begin():
        [other] = await ledger.post_entries(s, [ledger.Entry(key="other:0001", kind="award", legs=(
            ledger.Leg(ledger.ISSUANCE, service.ASSET_POINTS, -7), ledger.Leg(card, service.ASSET_POINTS, 7)))],
            node=NODE, announce=False)
    assert isinstance(other, ledger.Posted) and other.status == "posted"
    async with sessions() as s:
        tap_legs = await ledger.entry_legs(s, tap(2, CARDS[1]).key)
        other_legs = await ledger.entry_legs(s, "other:0001")
        cols = [c for c in journal.c if c.name not in ("id", "idempotency_key", "kind", "payload_hash", "created_at",
                                                        "actor")]
        rows = {r.idempotency_key: r for r in await s.execute(select(journal.c.idempotency_key, *cols))}
        assert await ledger.balance(s, card, service.ASSET_POINTS) == 14
        assert await ledger.totals_by_asset(s) == {service.ASSET_POINTS: 0}
    assert tap_legs == other_legs == [ledger.Leg(ledger.ISSUANCE, service.ASSET_POINTS, -7),
                                      ledger.Leg(card, service.ASSET_POINTS, 7)]
    assert tuple(rows[tap(2, CARDS[1]).key])[1:] == tuple(rows["other:0001"])[1:] == (None, "")
