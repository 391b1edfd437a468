"""A booking's life (issue 17, points 4, 6, 10), on SQLite and PostgreSQL with a real nats-server and the points
service running beside the bookings service: staff approve or reject requests (never two overlapping, even when
approving at once through two instances), fees are paid with local currency (charged once however often retried),
a coupon or at the counter, an unpaid booking cancels itself at its deadline (once, however often the job runs),
and a paid booking cancelled late is refunded less its fee tier. Every refusal changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import select, update

from services.bookings import life
from services.bookings.app import BookingsService
from services.bookings.models import bookings
from tests.bookings.conftest import settings
from tests.bookings.helpers import CLERK, HALL, HANAKO, NOW, TARO, Node, a
from tests.support import bus as tbus
from tests.support.nodes import points_running
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_life as lc
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import payments as pc

STAFF = {**a(CLERK)}
FEE_HALL = {**HALL, "rules": {**HALL["rules"], "max_per_month": None, "pay_within_days": 7,
                              "coupon_types": ["kominkan-fee"],
                              "cancel_fees": [{"days_before": 7, "percent": 0}, {"days_before": 1, "percent": 50},
                                              {"days_before": 0, "percent": 100}]}}
APPROVAL_HALL = {**FEE_HALL, "id": "women-center", "name_ja": "女性センター 研修室", "name_en": "Women's Center",
                 "rules": {**FEE_HALL["rules"], "needs_approval": True}}
FREE_ROOM = {**HALL, "id": "free-room", "rules": {}, "layout": {"kind": "blocks", "blocks": [
    {"name_ja": "午前", "name_en": "morning", "start": "09:00", "end": "12:00"}]}}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)  # as the service's clock: UTC


class Life(Node):
    """The bookings service (its sweeper left to the test) and the points service, on one nats-server."""

    def __init__(self, nc: nats.NATS, svc: BookingsService, clock: Clock) -> None:
        super().__init__(nc, svc)
        self.clock = clock

    async def points(self, endpoint: str, payload: Any) -> Any:
        return await tbus.call(self.nc, endpoint, payload)

    async def currency(self, person: str) -> int:
        w = (await self.points(cc.EP_WALLET, {"person": person}))["balances"]
        return next(b["balance"] for b in w if b["asset"] == "local-currency")

    async def award(self, person: str, amount: int, key: str) -> None:
        await self.points(cc.EP_CURRENCY_AWARD, {"actor": STAFF, "person": person, "amount": amount,
                                                 "memo": "清掃ボランティア", "key": key})

    async def row(self, booking_id: str) -> Any:
        async with self.svc.sessions() as s:
            return (await s.execute(select(bookings).where(bookings.c.id == booking_id))).one()

    async def cancel_unpaid(self, svc: BookingsService | None = None) -> int:
        s = svc or self.svc
        return await s.sweeper.jobs[0][1](self.clock())

    async def refund_cancelled(self) -> int:
        return await self.svc.sweeper.jobs[1][1](self.clock())

    def pay(self, who: Any, booking_id: str, method: str = "currency", **more: Any) -> dict[str, Any]:
        return {"actor": a(who), "booking_id": booking_id, "method": method, **more}


@contextlib.asynccontextmanager
async def bookings_instance(nats_url: str, database: tuple[str, str | None], tmp_path: Path, clock: Clock
                            ) -> AsyncIterator[BookingsService]:
    svc = BookingsService(settings(nats_url, database, tmp_path), clock=clock, sweep_every=None)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Life]:
    url, schema = database
    points_db = (url, f"{schema}_p") if schema else None  # its own schema (or SQLite file) beside the bookings one
    clock = Clock()
    try:
        async with points_running(nats_server.url, tmp_path, points_db), \
                bookings_instance(nats_server.url, database, tmp_path, clock) as svc:
            nc = await nats.connect(nats_server.url)
            try:
                node = Life(nc, svc, clock)
                for f in (FEE_HALL, APPROVAL_HALL, FREE_ROOM):
                    await node.put(f)
                yield node
            finally:
                await nc.close()
    finally:
        if schema:
            import asyncpg

            from tests.conftest import PG_URL
            conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"))
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_p" CASCADE')
            await conn.close()


def subjects_of(events: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [e["data"] for s, e in events if s.endswith("." + name)]


# ---- the arithmetic ---------------------------------------------------------------------------------------------

def test_deadline_and_fee_tiers() -> None:
    f = c.Facility.model_validate({**FEE_HALL, "layout": HALL["layout"], "created_at": NOW, "updated_at": NOW,
                                   "closed_dates": [], "lat": None, "lon": None, "note": "",
                                   "closed_on_holidays": True, "buffer_minutes": 0})
    start = datetime(2026, 11, 12, 13, 0, tzinfo=JST)
    assert life.due_at(f, start, NOW) == NOW + timedelta(days=7)  # a week from confirmation
    near = datetime(2026, 10, 30, 13, 0, tzinfo=JST)
    assert life.due_at(f, near, NOW) == datetime(2026, 10, 30, 0, 0, tzinfo=JST)  # by the end of the day before
    today = datetime(2026, 10, 27, 18, 0, tzinfo=JST)
    assert life.due_at(f, today, NOW) == today  # booked for today: before it starts
    fees = {days: life.cancellation_fee(f, fee=800, start=start, now=start - timedelta(days=days))
            for days in (30, 8, 7, 2, 1, 0)}
    assert fees == {30: 0, 8: 0, 7: 0, 2: 0, 1: 400, 0: 800}


# ---- approval ---------------------------------------------------------------------------------------------------

async def test_approve_and_reject_requests(node: Life) -> None:
    taro = await node.book(TARO, "women-center", "2026-11-12", "13:00", "17:00")
    hanako = await node.book(HANAKO, "women-center", "2026-11-12", "09:00", "12:00")
    assert (taro["state"], taro["fee_due_at"]) == ("requested", None)
    await node.refused(c.BOOKING_TAKEN, c.EP_BOOKING_CREATE,  # a request holds its slot
                       node.booking(HANAKO, "women-center", "2026-11-12", "13:00", "17:00"))
    queue = await node.call(lc.EP_APPROVALS, {"actor": STAFF, "facility_id": "women-center", "date": "2026-11-12"})
    assert [b["id"] for b in queue["bookings"]] == [taro["id"], hanako["id"]]  # oldest first
    assert (await node.call(lc.EP_APPROVALS, {"actor": STAFF, "date": "2026-11-13"}))["bookings"] == []
    await node.refused(lc.DECIDE_STAFF_ONLY, lc.EP_APPROVALS, {"actor": a(TARO)})
    await node.refused(lc.DECIDE_STAFF_ONLY, lc.EP_APPROVE, {"actor": a(TARO), "booking_id": taro["id"]})
    await node.refused(c.BOOKING_NOT_FOUND, lc.EP_APPROVE, {"actor": STAFF, "booking_id": "0" * 8 + "-" + "0" * 27})
    await node.refused(lc.NOT_PAYABLE, lc.EP_PAY, node.pay(TARO, taro["id"]))  # not confirmed yet

    done = await node.call(lc.EP_APPROVE, {"actor": STAFF, "booking_id": taro["id"], "note": "鍵は受付で"})
    assert (done["state"], done["decided_by"], done["decision_note"]) == (
        "confirmed", CLERK.global_handle, "鍵は受付で")
    assert datetime.fromisoformat(done["fee_due_at"]) == NOW + timedelta(days=7)
    await node.refused(lc.NOT_REQUESTED, lc.EP_APPROVE, {"actor": STAFF, "booking_id": taro["id"]})

    with pytest.raises(errors.ServiceError) as info:  # a rejection needs its reason
        await node.call(lc.EP_REJECT, {"actor": STAFF, "booking_id": hanako["id"], "reason": "  "})
    assert info.value.code == 400
    no = await node.call(lc.EP_REJECT, {"actor": STAFF, "booking_id": hanako["id"], "reason": "館の行事と重なるため"})
    assert (no["state"], no["decision_note"]) == ("rejected", "館の行事と重なるため")
    await node.refused(lc.NOT_REQUESTED, lc.EP_REJECT, {"actor": STAFF, "booking_id": taro["id"], "reason": "x"})
    day = await node.day("women-center", "2026-11-12")
    assert [s["free"] for s in day["slots"]] == [True, False, True]  # the rejected request let its slot go
    assert (await node.call(lc.EP_APPROVALS, {"actor": STAFF}))["bookings"] == []

    events = await node.events()
    assert [e["booking_id"] for e in subjects_of(events, "booking_confirmed")] == [taro["id"]]
    assert [(e["booking_id"], e["reason"]) for e in subjects_of(events, "booking_rejected")] == [
        (hanako["id"], "館の行事と重なるため")]


async def test_concurrent_approvals_never_overlap(node: Life, nats_server, database, tmp_path) -> None:
    """Every request is approved once however many staff press at once through two instances; two overlapping
    requests cannot both exist, so they cannot both be approved."""
    requests = []
    for person, start, end in ((TARO, "09:00", "12:00"), (HANAKO, "13:00", "17:00"), (TARO, "18:00", "21:30")):
        requests.append(await node.book(person, "women-center", "2026-11-12", start, end))
    await node.refused(c.BOOKING_TAKEN, c.EP_BOOKING_CREATE,
                       node.booking(HANAKO, "women-center", "2026-11-12", "09:00", "17:00"))
    async with bookings_instance(nats_server.url, database, tmp_path / "second", node.clock):
        async def approve(bid: str) -> str:
            try:
                await node.call(lc.EP_APPROVE, {"actor": STAFF, "booking_id": bid})
            except errors.ServiceError as exc:
                return exc.error_code
            return "approved"

        outcomes = await asyncio.gather(*(approve(r["id"]) for r in requests for _ in range(8)))
    per = Counter(zip([r["id"] for r in requests for _ in range(8)], outcomes, strict=True))
    for r in requests:
        assert per[(r["id"], "approved")] == 1 and per[(r["id"], lc.NOT_REQUESTED.code)] == 7, per
    confirmed = subjects_of(await node.events(), "booking_confirmed")
    assert sorted(e["booking_id"] for e in confirmed) == sorted(r["id"] for r in requests)  # one event each
    async with node.svc.sessions() as s:
        held = (await s.execute(select(bookings.c.starts_at, bookings.c.held_until)
                                .where(bookings.c.facility_id == "women-center",
                                       bookings.c.state.in_(c.HOLDING_STATES))
                                .order_by(bookings.c.starts_at))).all()
    assert all(a.held_until <= b.starts_at for a, b in zip(held, held[1:], strict=False))


# ---- paying -----------------------------------------------------------------------------------------------------

async def test_pay_with_local_currency_once(node: Life) -> None:
    me = HANAKO.user_id
    await node.award(me, 1000, "award-life-00000001")
    booking = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")  # 午後: 800 yen
    assert booking["fee"] == 800 and booking["fee_due_at"] is not None

    await node.refused(c.BOOKING_NOT_YOURS, lc.EP_PAY, node.pay(TARO, booking["id"]))
    paid = await node.call(lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    assert (paid["paid_with"], paid["state"]) == ("currency", "confirmed") and paid["paid_at"]
    assert await node.currency(me) == 200
    # The same charge again (a retry after a lost answer) moves nothing.
    again = await node.points(pc.EP_CHARGE, {"key": f"booking:{booking['id']}", "person": me, "amount": 800,
                                             "method": "currency", "memo": "facility fee ohashi-hall"})
    assert (again["status"], again["journal_id"]) == ("duplicate", paid["payment_ref"])
    assert await node.currency(me) == 200
    await node.refused(lc.ALREADY_PAID, lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    assert await node.currency(me) == 200
    assert [e["paid_with"] for e in subjects_of(await node.events(), "booking_paid")] == ["currency"]


async def test_a_charge_whose_answer_was_lost_is_recorded_once(node: Life) -> None:
    """The points service charged but the bookings service never heard (it crashed): paying again records that
    charge, and the deadline job records it too instead of cancelling."""
    me = HANAKO.user_id
    await node.award(me, 2000, "award-life-00000002")
    first = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")
    second = await node.book(HANAKO, "ohashi-hall", "2026-11-13", "13:00", "17:00")
    for b in (first, second):
        await node.points(pc.EP_CHARGE, {"key": f"booking:{b['id']}", "person": me, "amount": 800,
                                         "method": "currency", "memo": "facility fee ohashi-hall"})
    assert await node.currency(me) == 400
    paid = await node.call(lc.EP_PAY, node.pay(HANAKO, first["id"]))
    assert paid["paid_with"] == "currency" and await node.currency(me) == 400
    async with node.svc.sessions() as s, s.begin():  # the second was marked pending before its charge
        await s.execute(update(bookings).where(bookings.c.id == second["id"]).values(payment_ref=life.PENDING))
    node.clock.now = datetime.fromisoformat(second["fee_due_at"]) + timedelta(minutes=1)
    assert await node.cancel_unpaid() == 0
    row = await node.row(second["id"])
    assert (row.state, row.paid_with) == ("confirmed", "currency") and await node.currency(me) == 400


async def test_payment_refusals_change_nothing(node: Life) -> None:
    me = HANAKO.user_id
    await node.award(me, 500, "award-life-00000003")
    booking = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")  # 800 > 500
    await node.refused(lc.NOT_ENOUGH_CURRENCY, lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    assert await node.currency(me) == 500
    free = await node.book(HANAKO, "free-room", "2026-11-12", "09:00", "12:00")
    await node.refused(lc.NO_FEE, lc.EP_PAY, node.pay(HANAKO, free["id"]))
    await node.refused(c.BOOKING_NOT_FOUND, lc.EP_PAY, node.pay(HANAKO, "0" * 8 + "-" + "0" * 27))
    await node.refused(lc.COUPON_NOT_USABLE, lc.EP_PAY, node.pay(HANAKO, booking["id"], "coupon"))
    await node.refused(lc.COUNTER_STAFF_ONLY, lc.EP_PAID_AT_COUNTER, {"actor": a(HANAKO), "booking_id": booking["id"]})
    await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": booking["id"]})
    await node.refused(lc.NOT_PAYABLE, lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    assert await node.currency(me) == 500


async def test_pay_with_a_coupon(node: Life) -> None:
    me = HANAKO.user_id
    await node.award(me, 2000, "award-life-00000004")
    for code, price in (("kominkan-fee", 1000), ("city-bus", 1000), ("kominkan-small", 300)):
        await node.points(cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, "code": code, "title_ja": "公民館の施設使用料",
                                                  "title_en": "Hall fee", "issuer": "公民館", "price": price,
                                                  "valid_days": 90})
    bought = {}
    for code in ("kominkan-fee", "city-bus"):
        got = await node.points(cc.EP_COUPON_BUY, {"person": me, "type_code": code, "key": f"buy-{code}-0000000001"})
        bought[code] = got["coupon"]["id"]
    assert await node.currency(me) == 0
    booking = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")
    await node.refused(lc.COUPON_NOT_USABLE, lc.EP_PAY, node.pay(HANAKO, booking["id"], "coupon",
                                                                coupon_id=bought["city-bus"]))  # not accepted here
    await node.refused(lc.COUPON_NOT_USABLE, lc.EP_PAY, node.pay(HANAKO, booking["id"], "coupon",
                                                                coupon_id="0" * 8 + "-" + "0" * 27))  # no such coupon
    paid = await node.call(lc.EP_PAY, node.pay(HANAKO, booking["id"], "coupon", coupon_id=bought["kominkan-fee"]))
    assert paid["paid_with"] == "coupon"
    mine = {cp["id"]: cp["status"] for cp in (await node.points(cc.EP_COUPON_MINE, {"person": me}))["coupons"]}
    assert mine == {bought["kominkan-fee"]: "redeemed", bought["city-bus"]: "active"}
    other = await node.book(HANAKO, "ohashi-hall", "2026-11-13", "13:00", "17:00")
    await node.refused(lc.COUPON_NOT_USABLE, lc.EP_PAY, node.pay(HANAKO, other["id"], "coupon",
                                                                coupon_id=bought["kominkan-fee"]))  # used


async def test_paid_at_the_counter(node: Life) -> None:
    booking = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")
    paid = await node.call(lc.EP_PAID_AT_COUNTER, {"actor": STAFF, "booking_id": booking["id"], "receipt": "R-0012"})
    assert (paid["paid_with"], paid["payment_ref"]) == ("counter", "R-0012")
    await node.refused(lc.ALREADY_PAID, lc.EP_PAID_AT_COUNTER, {"actor": STAFF, "booking_id": booking["id"]})
    await node.refused(lc.ALREADY_PAID, lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    node.clock.now = NOW + timedelta(days=8)
    assert await node.cancel_unpaid() == 0  # paid: stays
    # Cancelled by its booker: cash is given back at the counter, nothing through the ledger.
    done = await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": booking["id"]})
    assert done["cancellation_fee"] == 0 and (await node.row(booking["id"])).refund_due is None


# ---- the deadline -----------------------------------------------------------------------------------------------

async def test_unpaid_bookings_cancel_themselves_once(node: Life, nats_server, database, tmp_path) -> None:
    booking = await node.book(HANAKO, "ohashi-hall", "2026-10-30", "13:00", "17:00")
    due = datetime.fromisoformat(booking["fee_due_at"])
    assert due == datetime(2026, 10, 30, 0, 0, tzinfo=JST)  # the day before's end, sooner than a week
    node.clock.now = due - timedelta(minutes=1)
    assert await node.cancel_unpaid() == 0
    node.clock.now = due
    await node.refused(lc.DEADLINE_PASSED, lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    await node.refused(lc.DEADLINE_PASSED, lc.EP_PAID_AT_COUNTER, {"actor": STAFF, "booking_id": booking["id"]})
    async with bookings_instance(nats_server.url, database, tmp_path / "second", node.clock) as second:
        done = await asyncio.gather(node.cancel_unpaid(), node.cancel_unpaid(second), node.cancel_unpaid(second))
    assert sorted(done) == [0, 0, 1]
    assert await node.cancel_unpaid() == 0
    row = await node.row(booking["id"])
    assert (row.state, row.cancel_reason, row.cancelled_by) == ("cancelled", "unpaid", "service")
    cancelled = subjects_of(await node.events(), "booking_cancelled")
    assert [(e["booking_id"], e["by"], e["reason"]) for e in cancelled] == [(booking["id"], "service", "unpaid")]
    day = await node.day("ohashi-hall", "2026-10-30")
    assert [s["free"] for s in day["slots"]] == [True, True, True]


# ---- cancellation fees and refunds ------------------------------------------------------------------------------

@pytest.mark.parametrize("days_before, kept", [(10, 0), (1, 400)])
async def test_cancellation_fee_tiers_and_refund(node: Life, days_before: int, kept: int) -> None:
    me = HANAKO.user_id
    await node.award(me, 800, "award-life-00000005")
    booking = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")
    await node.call(lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    assert await node.currency(me) == 0
    node.clock.now = datetime(2026, 11, 12, 10, 0, tzinfo=JST).astimezone(UTC) - timedelta(days=days_before)
    done = await node.call(c.EP_BOOKING_CANCEL, {"actor": a(HANAKO), "booking_id": booking["id"]})
    assert (done["state"], done["cancellation_fee"]) == ("cancelled", kept)
    assert (await node.row(booking["id"])).refund_due == 800 - kept
    assert await node.refund_cancelled() == 1
    assert await node.refund_cancelled() == 0
    assert await node.currency(me) == 800 - kept
    refunded = subjects_of(await node.events(), "booking_refunded")
    assert [(e["amount"], e["cancellation_fee"]) for e in refunded] == [(800 - kept, kept)]
    state = await node.points(pc.EP_CHARGE_GET, {"key": f"booking:{booking['id']}"})
    assert (state["amount"], state["refunded"]) == (800, 800 - kept)


async def test_staff_cancellation_refunds_everything(node: Life) -> None:
    me = HANAKO.user_id
    await node.award(me, 800, "award-life-00000006")
    booking = await node.book(HANAKO, "ohashi-hall", "2026-11-12", "13:00", "17:00")
    await node.call(lc.EP_PAY, node.pay(HANAKO, booking["id"]))
    node.clock.now = datetime(2026, 11, 12, 8, 0, tzinfo=JST)  # the day itself
    done = await node.call(c.EP_BOOKING_CANCEL, {"actor": STAFF, "booking_id": booking["id"]})
    assert done["cancellation_fee"] == 0
    assert await node.refund_cancelled() == 1 and await node.currency(me) == 800
