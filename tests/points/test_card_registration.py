"""Card registration at a terminal (issue 3 point 6, issue 4 point 7), on SQLite and PostgreSQL: a touch in
registration mode shows a one-time code; the logged-in person enters it; the card's points move to them once.
Over NATS, the code endpoint refuses bad input with the contract's reason."""

from __future__ import annotations

from datetime import UTC, datetime

import nats
import pytest
from sqlalchemy import func, select, update

from services.points.ledger.models import postings
from services.points.taps import service
from services.points.taps.models import card_registration_codes
from tests.points.test_points_service import (  # noqa: F401 - fixtures
    CARDS,
    OTHER,
    PERSON,
    Sessions,
    card_balance,
    define,
    points_of,
    record,
    sessions,
    tap,
)
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import points as contract
from towntip.kernel.contracts.points import Tap, TapOutcome

NODE = "testnode"


def reg_tap(n: int, card: str) -> Tap:
    return tap(n, card).model_copy(update={"mode": "register", "event": None})


async def enter(sessions: Sessions, person: str, code: str) -> contract.PersonPoints:  # noqa: F811
    q = contract.CardCodeIn(person=person, code=code)  # as the endpoint takes it
    async with sessions() as s, s.begin():
        return await service.register_with_code(session=s, person=q.person, code=q.code, node=NODE)


async def test_a_registration_touch_shows_a_code_that_binds_the_card_once(sessions: Sessions) -> None:  # noqa: F811
    await define(sessions, "ev", participant_points=1, volunteer_points=5, series=9)  # ev-1 … ev-9
    # 6 points on the card
    await record(sessions, [tap(1, CARDS[0], event="ev-1"), tap(2, CARDS[0], role="volunteer", event="ev-2")])
    [shown] = await record(sessions, [reg_tap(3, CARDS[0])])
    assert isinstance(shown, TapOutcome) and shown.points == 0 and shown.balance == 6
    code = shown.display
    assert len(code) == 9 and code[4] == "-" and all(ch in service.REG_ALPHABET for ch in code.replace("-", ""))
    async with sessions() as s:  # only its hash is kept
        stored = (await s.execute(select(card_registration_codes.c.code_hash))).scalars().all()
    assert code.replace("-", "") not in str(stored) and len(stored) == 1

    # the same touch heard twice (redelivery): duplicate, no second code
    [again] = await record(sessions, [reg_tap(3, CARDS[0])], duplicate=True)
    assert isinstance(again, TapOutcome) and again.status == "duplicate" and again.display == ""

    mine = await enter(sessions, PERSON, code.lower().replace("-", " "))  # typed as people type it
    assert mine.balance == 6 and len(mine.cards) == 1
    assert (await card_balance(sessions, CARDS[0])).balance == 0
    [later] = await record(sessions, [tap(4, CARDS[0], event="ev-4")])
    assert isinstance(later, TapOutcome) and later.balance == 7 and (await points_of(sessions, PERSON)).balance == 7

    # the code is single use, for the owner and for anyone else
    for who in (PERSON, OTHER):
        with pytest.raises(errors.NotFound, match="unknown, used or expired"):
            await enter(sessions, who, code)
    # a bound card gets no new code: it must be reported lost first
    [refused] = await record(sessions, [reg_tap(5, CARDS[0])])
    assert isinstance(refused, errors.Conflict) and "already registered" in refused.reason
    async with sessions() as s:
        assert (await s.execute(select(func.sum(postings.c.amount)))).scalar_one() == 0


async def test_an_expired_or_wrong_code_binds_nothing(sessions: Sessions) -> None:  # noqa: F811
    await define(sessions, "ev")
    [shown] = await record(sessions, [reg_tap(1, CARDS[1])])
    async with sessions() as s, s.begin():
        await s.execute(update(card_registration_codes).values(expires_at=datetime(2025, 1, 1, tzinfo=UTC)))
    with pytest.raises(errors.NotFound):
        await enter(sessions, PERSON, shown.display)
    with pytest.raises(errors.NotFound):
        await enter(sessions, PERSON, "ABCD2345")
    assert (await points_of(sessions, PERSON)).cards == []


async def test_the_code_endpoint_checks_its_input(nc: nats.NATS, points_service) -> None:
    subject = subjects.svc(NODE, "points", contract.EP_CARD_REGISTER_CODE)
    for code in ("ABC", "ABCD-EFGH-J", "ABCD_EFG", ""):
        with pytest.raises(errors.BadRequest, match="8 letters and digits"):
            await rpc.call(nc, subject, {"person": "user-0001", "code": code}, timeout=10)
    with pytest.raises(errors.NotFound):
        await rpc.call(nc, subject, {"person": "user-0001", "code": "ABCD-EFGH"}, timeout=10)


async def test_a_card_that_never_earned_can_be_registered(sessions: Sessions) -> None:  # noqa: F811
    [shown] = await record(sessions, [reg_tap(1, CARDS[2])])  # its very first touch
    mine = await enter(sessions, PERSON, shown.display)
    assert mine.balance == 0 and len(mine.cards) == 1


async def test_a_redelivered_tap_shows_no_second_code(nc: nats.NATS, points_service) -> None:
    """Through the tap consumer: the code is made in the batch's transaction, with the inbox row of the tap's key.
    The same tap sent again after JetStream's duplicate window (shortened here) is answered duplicate from the
    database: no second code, no second credit; the first code still binds the card."""
    import asyncio
    import copy

    from towntip.kernel.bus.streams import ensure_node_streams

    js = nc.jetstream()
    await ensure_node_streams(js, NODE)
    short = copy.copy((await js.stream_info(subjects.edge_stream(NODE))).config)
    short.duplicate_window = 1.0
    await js.update_stream(short)

    async def call(endpoint: str, payload: dict) -> dict:
        return await rpc.call(nc, subjects.svc(NODE, "points", endpoint), payload, timeout=15)

    await call(contract.EP_EVENT_PUT, {"code": "ev", "name": "会場"})
    await call(contract.EP_CARD_BIND_REQUEST, {"person": PERSON, "card_idm": CARDS[6]})
    answers = await nc.subscribe(nc.new_inbox())
    t = tap(1, CARDS[6]).model_copy(update={"tapped_at": datetime.now(UTC)})

    async def send() -> TapOutcome:
        ack = await js.publish(subjects.edge(NODE, "term-1", "tap"), t.model_dump_json().encode(),
                               headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: answers.subject})
        assert not ack.duplicate
        return TapOutcome.model_validate_json((await answers.next_msg(timeout=15)).data)

    first = await send()
    assert (first.status, first.points, first.balance) == ("credited", 1, 1) and first.display
    await asyncio.sleep(1.5)  # past the stream's window: the stream takes the repeat, the consumer's inbox does not
    again = await send()
    assert (again.status, again.points, again.balance, again.display) == ("duplicate", 1, 1, "")
    async with points_service.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(card_registration_codes))).scalar_one() == 1
    mine = contract.PersonPoints.model_validate(await call(contract.EP_CARD_REGISTER_CODE,
                                                           {"person": PERSON, "code": first.display[:9]}))
    assert mine.balance == 1 and len(mine.cards) == 1 and mine.pending == []
