"""Donations to certified projects (issue 4, point 4) over a real nats-server, on SQLite and PostgreSQL: pledge,
confirmation once (points once, through the ledger), cancellation, refusals that change nothing, receipts numbered in
sequence as PDFs that parse, the transparency figures, and the donor's card confirming at a terminal."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import nats
import pypdf
import pytest
from sqlalchemy import func, select

from services.points.app import PointsService
from services.points.donations.models import donation_fund_uses, donation_projects, donations
from services.points.ledger.models import journal
from services.points.taps import service
from tests.points.test_documents import assert_font_embedded
from tests.support.bus import call
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts import donations as c
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.actor import Actor

NODE = "testnode"
STAFF = Actor(user_id="staff-0001", global_handle="kikaku@testnode", display_name="企画 一郎", roles=("staff",))
HANAKO = Actor(user_id="user-hanako1", global_handle="hanako@testnode", display_name="山田 花子")
TARO = Actor(user_id="user-taro0001", global_handle="taro@testnode", display_name="鈴木 太郎")
PROJECT = {"code": "nanohana", "title": "菜の花プロジェクト", "organisation": "NPO法人わかば", "field": "npo-3",
           "description": "休耕地に菜の花を植える", "goal_yen": 100_000}


def as_json(actor: Actor) -> dict[str, Any]:
    return actor.model_dump(mode="json")


async def project(nc: nats.NATS, *, certify: bool = True, **changes: Any) -> c.Project:
    out = c.Project.model_validate(await call(nc, c.EP_PROJECT_PUT, {"actor": as_json(STAFF), **PROJECT, **changes}))
    if certify:
        out = c.Project.model_validate(await call(nc, c.EP_PROJECT_CERTIFY,
                                                  {"actor": as_json(STAFF), "code": out.code}))
    return out


async def pledge(nc: nats.NATS, who: Actor, amount: Any, method: str = "counter", code: str = "nanohana"
                 ) -> c.Donation:
    return c.Donation.model_validate(await call(nc, c.EP_PLEDGE, {
        "actor": as_json(who), "project": code, "amount_yen": amount, "method": method}))


async def act(nc: nats.NATS, endpoint: str, who: Actor, reference: str, reason: str = "") -> Any:
    return await call(nc, endpoint, {"actor": as_json(who), "reference": reference, "reason": reason})


async def points_of(nc: nats.NATS, who: Actor) -> int:
    out = await call(nc, lc.EP_LEDGER_BALANCE, {"account": f"person:{who.user_id}", "asset": "machi-point"})
    return out["balance"]


async def mine(nc: nats.NATS, who: Actor) -> c.MyDonations:
    return c.MyDonations.model_validate(await call(nc, c.EP_MINE, {"actor": as_json(who)}))


async def count(svc: PointsService, table: Any, *where: Any) -> int:
    async with svc.sessions() as s:
        return (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


def pdf_text(receipt: c.ReceiptPdf) -> str:
    data = base64.b64decode(receipt.pdf_base64)
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert len(reader.pages) == 1
    assert_font_embedded(reader)  # the Japanese font travels with the file: Latin text and figures extract whole
    return reader.pages[0].extract_text()


async def test_pledge_confirm_once_points_once_receipts_in_sequence(nc: nats.NATS, points_service: PointsService
                                                                    ) -> None:
    await project(nc)
    d = await pledge(nc, HANAKO, 2500)
    assert re.fullmatch(r"D-[2-9A-HJ-NP-Z]{6}", d.reference), d.reference
    assert (d.status, d.points, d.amount_yen, d.donor_name, d.receipt_no) == ("pledged", 0, 2500, "山田 花子", None)

    # Not staff: refused, nothing changed.
    with pytest.raises(errors.Forbidden):
        await act(nc, c.EP_CONFIRM, HANAKO, d.reference)
    assert (await mine(nc, HANAKO)).donations[0].status == "pledged" and await points_of(nc, HANAKO) == 0

    done = c.Donation.model_validate(await act(nc, c.EP_CONFIRM, STAFF, d.reference.lower()))  # as typed
    year = datetime.now(ZoneInfo("Asia/Tokyo")).year
    assert (done.status, done.points, done.confirmed_via) == ("confirmed", 25, "staff")  # 10 per 1,000 yen
    assert done.receipt_no is not None and done.receipt_no.endswith("-000001")
    assert await points_of(nc, HANAKO) == 25
    with pytest.raises(errors.Conflict, match="already confirmed"):
        await act(nc, c.EP_CONFIRM, STAFF, d.reference)
    assert await points_of(nc, HANAKO) == 25
    assert await count(points_service, journal, journal.c.kind == "donation") == 1

    t = await pledge(nc, TARO, 1000, "bank_transfer")
    t = c.Donation.model_validate(await act(nc, c.EP_CONFIRM, STAFF, t.reference))
    assert t.points == 10 and t.receipt_no is not None and t.receipt_no.endswith("-000002")
    # The node changes its rate: later confirmations use it.
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_RULES_PUT, {"actor": as_json(TARO), "points_per_1000_yen": 100})
    rules = c.Rules.model_validate(await call(nc, c.EP_RULES_PUT, {
        "actor": as_json(STAFF), "points_per_1000_yen": 20, "issuer_name": "鶴ヶ島市"}))
    assert rules.points_per_1000_yen == 20
    h2 = c.Donation.model_validate(await act(nc, c.EP_CONFIRM, STAFF, (await pledge(nc, HANAKO, 1500)).reference))
    assert h2.points == 30 and h2.receipt_no.endswith("-000003")  # type: ignore[union-attr]
    assert await points_of(nc, HANAKO) == 55
    numbers = [t.receipt_no, done.receipt_no, h2.receipt_no]
    assert sorted(numbers) == [f"{NODE}-{y}-{n:06d}" for y, n in ((year, 1), (year, 2), (year, 3))]  # type: ignore[type-var]

    # The receipt: the donor's (and staff's), a PDF that parses and says what was given.
    receipt = c.ReceiptPdf.model_validate(await act(nc, c.EP_RECEIPT, HANAKO, d.reference))
    text = pdf_text(receipt)
    for expected in ("寄附金受領証明書", "2,500 円", done.receipt_no, "山田 花子", "菜の花プロジェクト", "鶴ヶ島市",
                     d.reference):
        assert expected in text, (expected, text)
    assert receipt.receipt_no == done.receipt_no
    assert c.ReceiptPdf.model_validate(await act(nc, c.EP_RECEIPT, STAFF, d.reference)).receipt_no == done.receipt_no
    with pytest.raises(errors.NotFound):  # someone else's: as if there were none
        await act(nc, c.EP_RECEIPT, TARO, d.reference)

    my = await mine(nc, HANAKO)
    assert (my.confirmed_yen, my.points, len(my.donations)) == (4000, 55, 2)
    assert {x.person for x in (await mine(nc, TARO)).donations} == {TARO.user_id}

    # Transparency: confirmed money only, distinct donors, the goal.
    await pledge(nc, TARO, 9999)  # pledged, not confirmed: not counted
    detail = c.ProjectDetail.model_validate(await call(nc, c.EP_PROJECT_GET, {"code": "nanohana"}))
    assert (detail.project.raised_yen, detail.project.donors, detail.project.goal_yen) == (5000, 2, 100_000)
    assert (detail.used_yen, detail.balance_yen, detail.pending_yen) == (0, 5000, 0)
    staff_view = c.ProjectDetail.model_validate(await call(nc, c.EP_PROJECT_GET, {"code": "nanohana",
                                                                                  "actor": as_json(STAFF)}))
    assert staff_view.pending_yen == 9999
    totals = lc.Totals.model_validate(await call(nc, lc.EP_LEDGER_TOTALS))
    assert totals.totals.get("machi-point", 0) == 0


async def test_refusals_change_nothing(nc: nats.NATS, points_service: PointsService) -> None:
    # A project nobody certified: invisible to people, refused for pledges; listed for staff only.
    await project(nc, certify=False)
    with pytest.raises(errors.NotFound):
        await pledge(nc, HANAKO, 1000)
    with pytest.raises(errors.Unprocessable, match="not certified"):
        await pledge(nc, STAFF, 1000)
    with pytest.raises(errors.NotFound):
        await call(nc, c.EP_PROJECT_GET, {"code": "nanohana"})
    public = c.ProjectList.model_validate(await call(nc, c.EP_PROJECT_LIST, {}))
    assert public.projects == []
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_PROJECT_LIST, {"include_uncertified": True, "actor": as_json(HANAKO)})
    listed = c.ProjectList.model_validate(await call(nc, c.EP_PROJECT_LIST, {"include_uncertified": True,
                                                                            "actor": as_json(STAFF)}))
    assert [(p.code, p.certified, p.takes_donations) for p in listed.projects] == [("nanohana", False, False)]

    # Only staff register or certify projects.
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_PROJECT_PUT, {"actor": as_json(HANAKO), **PROJECT, "code": "mine"})
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_PROJECT_CERTIFY, {"actor": as_json(HANAKO), "code": "nanohana"})
    assert await count(points_service, donation_projects) == 1
    with pytest.raises(errors.BadRequest, match="unknown field"):
        await call(nc, c.EP_PROJECT_PUT, {"actor": as_json(STAFF), **PROJECT, "code": "other", "field": "npo-99"})

    # Certified but closed: refused.
    await project(nc, open=False)
    with pytest.raises(errors.Unprocessable, match="closed"):
        await pledge(nc, HANAKO, 1000)
    assert await count(points_service, donations) == 0
    await project(nc, open=True)

    # Bad amounts and methods: 400 from the contract, 422 from the registry; nothing written.
    for amount in (0, -5, 1.5, "1000", 10**9, None):
        with pytest.raises(errors.BadRequest, match="amount_yen"):
            await pledge(nc, HANAKO, amount)
    with pytest.raises(errors.Unprocessable, match="unknown payment method"):
        await pledge(nc, HANAKO, 1000, method="bitcoin")
    with pytest.raises(errors.BadRequest):
        await call(nc, c.EP_PLEDGE, {"actor": as_json(HANAKO), "project": "nanohana", "amount_yen": 1000,
                                     "method": "counter", "extra": 1})
    assert await count(points_service, donations) == 0

    # Cancelled: by staff only; awards nothing, is never confirmed, has no receipt.
    d = await pledge(nc, HANAKO, 3000)
    with pytest.raises(errors.Forbidden):
        await act(nc, c.EP_CANCEL, HANAKO, d.reference)
    gone = c.Donation.model_validate(await act(nc, c.EP_CANCEL, STAFF, d.reference, reason="入金なし"))
    assert (gone.status, gone.cancel_reason, gone.points) == ("cancelled", "入金なし", 0)
    with pytest.raises(errors.Conflict, match="cancelled"):
        await act(nc, c.EP_CONFIRM, STAFF, d.reference)
    with pytest.raises(errors.Conflict):
        await act(nc, c.EP_RECEIPT, HANAKO, d.reference)
    with pytest.raises(errors.NotFound):
        await act(nc, c.EP_CONFIRM, STAFF, "D-ZZZZZZ")
    assert await points_of(nc, HANAKO) == 0
    assert await count(points_service, journal, journal.c.kind == "donation") == 0
    detail = c.ProjectDetail.model_validate(await call(nc, c.EP_PROJECT_GET, {"code": "nanohana"}))
    assert (detail.project.raised_yen, detail.project.donors) == (0, 0)

    # A confirmed donation is not cancelled (that would take back points: a reversal, not built here).
    ok = await pledge(nc, TARO, 1000)
    await act(nc, c.EP_CONFIRM, STAFF, ok.reference)
    with pytest.raises(errors.Conflict):
        await act(nc, c.EP_CANCEL, STAFF, ok.reference)

    # Use of funds: staff only, never beyond what was raised.
    use = {"project": "nanohana", "used_on": "2025-05-10", "amount_yen": 600, "description": "菜の花の種"}
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_FUND_USE_ADD, {"actor": as_json(TARO), **use})
    after = c.ProjectDetail.model_validate(await call(nc, c.EP_FUND_USE_ADD, {"actor": as_json(STAFF), **use}))
    assert (after.project.raised_yen, after.used_yen, after.balance_yen) == (1000, 600, 400)
    with pytest.raises(errors.Unprocessable, match="400"):
        await call(nc, c.EP_FUND_USE_ADD, {"actor": as_json(STAFF), **use})
    for bad in ({"amount_yen": 0}, {"amount_yen": 10.5}, {"used_on": "yesterday"}, {"description": ""}):
        with pytest.raises(errors.BadRequest):
            await call(nc, c.EP_FUND_USE_ADD, {"actor": as_json(STAFF), **use, **bad})
    assert await count(points_service, donation_fund_uses) == 1
    detail = c.ProjectDetail.model_validate(await call(nc, c.EP_PROJECT_GET, {"code": "nanohana"}))
    assert [(u.description, u.amount_yen) for u in detail.uses] == [("菜の花の種", 600)]


async def test_the_receipt_names_the_donor_by_address_and_the_address_is_kept_only_for_it(
        nc: nats.NATS, points_service: PointsService) -> None:
    """寄附金受領証明書 names the donor by address and name (a tax deduction needs both). The address is asked at
    the pledge, printed on the receipt only (not in the donor's or staff's lists, not in events), erased when the
    pledge is cancelled and five years after the receipt's year."""
    await project(nc)
    address = "埼玉県鶴ヶ島市大字三ツ木16番地1 グリーンハイツ 101号"

    async def give(who: Actor, amount: int) -> c.Donation:
        return c.Donation.model_validate(await call(nc, c.EP_PLEDGE, {
            "actor": as_json(who), "project": "nanohana", "amount_yen": amount, "method": "counter",
            "donor_address": address}))

    d = await give(HANAKO, 3000)
    assert address not in d.model_dump_json()  # the answer (and the event made from the same row) carries none
    await act(nc, c.EP_CONFIRM, STAFF, d.reference)
    listed = await call(nc, c.EP_LIST, {"actor": as_json(STAFF)})
    assert address not in str(listed) and address not in (await mine(nc, HANAKO)).model_dump_json()
    text = pdf_text(c.ReceiptPdf.model_validate(await act(nc, c.EP_RECEIPT, HANAKO, d.reference)))
    flat = text.replace("\n", "")
    assert "住所" in text and "氏名" in text and "山田 花子 様" in text and "3,000 円" in text
    assert address.replace(" ", "") in flat.replace(" ", ""), text  # whole, digits and all

    gone = await give(TARO, 1000)
    await act(nc, c.EP_CANCEL, STAFF, gone.reference, reason="入金なし")
    with pytest.raises(errors.BadRequest):
        await call(nc, c.EP_PLEDGE, {"actor": as_json(TARO), "project": "nanohana", "amount_yen": 1000,
                                     "method": "counter", "donor_address": "あ" * 301})
    async with points_service.sessions() as s:
        kept = dict((await s.execute(select(donations.c.reference, donations.c.donor_address))).all())
    assert kept == {d.reference: address, gone.reference: ""}  # a cancelled pledge will have no receipt

    from services.points.donations.service import ADDRESS_KEEP_YEARS, forget_addresses

    receipt_year = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo")).year
    async with points_service.sessions() as s, s.begin():
        later = datetime(receipt_year + ADDRESS_KEEP_YEARS, 12, 31, 12, tzinfo=UTC)
        assert await forget_addresses(s, now=later) == 0  # still within the keeping time
        assert await forget_addresses(s, now=datetime(receipt_year + ADDRESS_KEEP_YEARS + 1, 1, 2, tzinfo=UTC)) == 1
    async with points_service.sessions() as s:
        assert (await s.execute(select(donations.c.donor_address).where(
            donations.c.reference == d.reference))).scalar_one() == ""
    text = pdf_text(c.ReceiptPdf.model_validate(await act(nc, c.EP_RECEIPT, HANAKO, d.reference)))
    assert "山田 花子 様" in text and "住所" not in text  # issued again later: the name only


# ---- the terminal in donation mode --------------------------------------------------------------------------------


class Terminal:
    def __init__(self, nc: nats.NATS) -> None:
        self.nc, self.js, self.n = nc, nc.jetstream(), 0

    async def touch(self, card: str, *, mode: str = "checkin", ref: str | None = None, tap_id: str | None = None
                    ) -> pc.TapOutcome | tuple[int, str]:
        self.n += 1
        tap = pc.Tap(tap_id=tap_id or f"counter-{self.n:04d}", terminal_id="counter-1", card_idm=card,
                     event="ev" if mode == "checkin" else None, mode=mode, ref=ref,  # type: ignore[arg-type]
                     tapped_at=datetime.now(UTC))
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox, max_msgs=1)
        await self.js.publish(subjects.edge(NODE, "counter-1", "tap"), tap.model_dump_json().encode(),
                              headers={subjects.HDR_MSG_ID: tap.key, subjects.HDR_RESULT_TO: inbox})
        reply = await sub.next_msg(timeout=15)
        hdrs = reply.headers or {}
        if subjects.HDR_SERVICE_ERROR_CODE in hdrs:
            return int(hdrs[subjects.HDR_SERVICE_ERROR_CODE]), hdrs.get(subjects.HDR_SERVICE_ERROR, "")
        return pc.TapOutcome.model_validate_json(reply.data)


async def bind(nc: nats.NATS, term: Terminal, who: Actor, card: str) -> None:
    await call(nc, pc.EP_CARD_BIND_REQUEST, {"person": who.user_id, "card_idm": card})
    shown = await term.touch(card)  # the card's touch shows a code; entered while logged in, it binds the card
    assert isinstance(shown, pc.TapOutcome) and shown.display, shown
    await call(nc, pc.EP_CARD_REGISTER_CODE, {"person": who.user_id, "code": shown.display[:9]})
    bound = pc.PersonPoints.model_validate(await call(nc, pc.EP_PERSON_POINTS, {"person": who.user_id}))
    assert len(bound.cards) == 1


async def test_the_donors_own_card_confirms_at_the_terminal(nc: nats.NATS, points_service: PointsService
                                                            ) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    await call(nc, pc.EP_EVENT_PUT, {"code": "ev", "name": "窓口", "participant_points": 0, "volunteer_points": 0})
    term = Terminal(nc)
    hanako_card, taro_card, stray_card = "0123456789ABCDEF", "FEDCBA9876543210", "1111222233334444"
    await bind(nc, term, HANAKO, hanako_card)
    await bind(nc, term, TARO, taro_card)
    await project(nc)
    d = await pledge(nc, HANAKO, 3000)

    for card in (taro_card, stray_card):  # someone else's card, a card bound to nobody: refused, nothing changes
        code, reason = await term.touch(card, mode="donation", ref=d.reference)  # type: ignore[misc]
        assert code == 403 and "not registered to the person who pledged" in reason
    assert (await mine(nc, HANAKO)).donations[0].status == "pledged" and await points_of(nc, HANAKO) == 0
    assert await term.touch(hanako_card, mode="donation", ref="D-ZZZZZZ") == (
        404, "no donation 'D-ZZZZZZ' / 受付番号が見つかりません")

    ok = await term.touch(hanako_card, mode="donation", ref=d.reference.lower(), tap_id="donate-touch-1")
    assert isinstance(ok, pc.TapOutcome)
    assert (ok.status, ok.points, ok.balance, ok.display) == ("credited", 30, 30, d.reference)
    done = (await mine(nc, HANAKO)).donations[0]
    assert (done.status, done.confirmed_via, done.points) == ("confirmed", "terminal", 30)
    assert done.receipt_no is not None

    # The same touch heard again (a redelivery after a crash): duplicate, nothing more.
    repeat = pc.Tap(tap_id="donate-touch-1", terminal_id="counter-1", card_idm=hanako_card, mode="donation",
                    ref=d.reference, tapped_at=datetime.now(UTC))
    async with points_service.sessions() as s, s.begin():
        [again] = await service.record_taps(session=s, items=[service.TapToApply(repeat, True)],
                                            card_key=points_service.card_key(), node=NODE)
    assert isinstance(again, pc.TapOutcome) and (again.status, again.points, again.balance) == ("duplicate", 30, 30)
    # A new touch for the same pledge: already confirmed.
    code, reason = await term.touch(hanako_card, mode="donation", ref=d.reference)  # type: ignore[misc]
    assert code == 409 and "already confirmed" in reason
    assert await points_of(nc, HANAKO) == 30
    assert await count(points_service, journal, journal.c.kind == "donation") == 1

    # A bank transfer is confirmed by staff who saw the money, not at a terminal.
    b = await pledge(nc, HANAKO, 1000, "bank_transfer")
    code, reason = await term.touch(hanako_card, mode="donation", ref=b.reference)  # type: ignore[misc]
    assert code == 422 and "not confirmed by terminal" in reason
    assert await points_of(nc, HANAKO) == 30
    # The terminal's check-ins still work beside donations.
    assert isinstance(await term.touch(stray_card), pc.TapOutcome)
