"""Donations (寄附) to certified projects: the domain. No NATS, no commits here (the endpoints in
donations/handlers.py own the transactions, through the kernel's unit of work).

- Staff register projects and certify them (認定プロジェクト); only certified, open projects take pledges.
- A person pledges (project, amount in integer yen, payment method) and gets a reference, D-XXXXXX, to show at the
  counter or write on the bank transfer.
- Payment methods are pluggable (PaymentMethod, register_method): each says who confirms it and through which
  channels. `counter` (窓口) is confirmed by staff on their page or by the donor's own card touched on a terminal in
  donation mode; `bank_transfer` (銀行振込) by staff once the transfer is seen. An online method would confirm
  through its provider (confirmed_by="provider"): none is built.
- Confirmation awards まちづくりポイント at the node's rate (donation_rules) through the ledger, once (idempotency key
  donation:<id>), and numbers the receipt per node and year (Japan time): <node>-<year>-<seq:06d>.
- A cancelled pledge awards nothing; a confirmed one cannot be cancelled here (that would be a ledger reversal).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.documents import receipt as receipt_pdf
from services.points.donations.models import (
    donation_fund_uses,
    donation_projects,
    donation_receipt_counters,
    donation_rules,
    donations,
)
from services.points.ledger import service as ledger
from services.points.tables import bus
from services.points.taps.models import card_bindings
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import donations as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.points import Tap, TapOutcome
from towntip.kernel.db import aware as _aware

SERVICE = "points"
ASSET = "machi-point"  # まちづくりポイント
REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a counter, typed on a transfer slip
REF_LENGTH = 6


# ---- payment methods --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentMethod:
    """How a pledge is paid. `channels` are the ways a confirmation may arrive: "staff" (the staff page), "terminal"
    (the donor's own card on a terminal in donation mode), "provider" (a payment provider's callback; for an online
    method, not built). The instructions are what the person is told after pledging ({reference}, {bank_account})."""

    code: str
    name_ja: str
    name_en: str
    confirmed_by: str  # "staff" | "provider"
    channels: frozenset[str]
    instructions_ja: str
    instructions_en: str

    def accepts(self, channel: str) -> bool:
        return channel in self.channels

    def describe(self) -> c.Method:
        return c.Method(code=self.code, name_ja=self.name_ja, name_en=self.name_en,
                        confirmed_by=self.confirmed_by, channels=sorted(self.channels),
                        instructions_ja=self.instructions_ja, instructions_en=self.instructions_en)


METHODS: dict[str, PaymentMethod] = {}


def register_method(method: PaymentMethod) -> None:
    if method.code in METHODS:
        raise ValueError(f"payment method {method.code!r} registered twice")
    METHODS[method.code] = method


register_method(PaymentMethod(
    code="counter", name_ja="窓口で支払う", name_en="Pay at the counter", confirmed_by="staff",
    channels=frozenset({"staff", "terminal"}),
    instructions_ja="市役所・公民館などの窓口で受付番号 {reference} をお伝えのうえ、お支払いください。"
                    "交通系ICカードを登録済みの方は、窓口の端末にカードをタッチすると確認できます。",
    instructions_en="Pay at a counter (city hall, community hall) and give the reference {reference}. "
                    "If your transit IC card is registered, touching it on the counter's terminal confirms it.",
))
register_method(PaymentMethod(
    code="bank_transfer", name_ja="銀行振込", name_en="Bank transfer", confirmed_by="staff",
    channels=frozenset({"staff"}),
    instructions_ja="振込依頼人名の前に受付番号 {reference} を入れてお振り込みください。{bank_account}"
                    "入金を職員が確認すると、寄附が確定します。",
    instructions_en="Transfer the amount with the reference {reference} before your name. {bank_account}"
                    "The donation is confirmed once staff see the payment.",
))


def method_of(code: str) -> PaymentMethod:
    m = METHODS.get(code)
    if m is None:
        raise c.DONATION_UNKNOWN_METHOD(f"unknown payment method {code!r}: one of {', '.join(sorted(METHODS))}")
    return m


# ---- helpers ----------------------------------------------------------------------------------------------------


def _staff(actor: Actor | None) -> Actor:
    if actor is None or not actor.has("staff"):
        raise c.DONATION_STAFF_ONLY("only the node's staff may do this / 職員のみが行えます")
    return actor


def person_account(person: str) -> str:
    return f"person:{person}"


def _jp_date(t: datetime) -> str:
    d = _aware(t).astimezone(JST)
    return f"{d.year}年{d.month}月{d.day}日"


async def _announce(session: AsyncSession, node: str, kind: type[c.DonationEvent], row: Any) -> None:
    """The donation as it stands after the fact, announced as `kind` (pledged, confirmed, cancelled)."""
    await announce(session, bus, kind(
        reference=row.reference, project=row.project_code, person=row.person, amount_yen=row.amount_yen,
        method=row.method, status=row.status, points=row.points, receipt_no=row.receipt_no), node=node)


# ---- projects ---------------------------------------------------------------------------------------------------


def _raised():
    return (select(donations.c.project_code,
                   func.coalesce(func.sum(donations.c.amount_yen), 0).label("raised"),
                   func.count(donations.c.person.distinct()).label("donors"))
            .where(donations.c.status == "confirmed").group_by(donations.c.project_code).subquery())


def _project_query():
    r = _raised()
    p = donation_projects
    return (select(p, func.coalesce(r.c.raised, 0).label("raised"), func.coalesce(r.c.donors, 0).label("donors"))
            .select_from(p.outerjoin(r, r.c.project_code == p.c.code)))


def _project(row: Any) -> c.Project:
    certified = row.certified_at is not None
    return c.Project(code=row.code, title=row.title, organisation=row.organisation, description=row.description,
                     field=row.field, goal_yen=row.goal_yen, open=row.open, certified=certified,
                     certified_at=_aware(row.certified_at), raised_yen=int(row.raised), donors=int(row.donors),
                     takes_donations=certified and row.open)


async def _project_row(session: AsyncSession, code: str, actor: Actor | None) -> Any:
    row = (await session.execute(_project_query().where(donation_projects.c.code == code))).first()
    if row is None or (row.certified_at is None and not (actor and actor.has("staff"))):
        raise c.DONATION_PROJECT_NOT_FOUND(f"no certified project {code!r} / プロジェクトが見つかりません")
    return row


async def put_project(session: AsyncSession, q: c.ProjectPut) -> c.Project:
    actor = _staff(q.actor)
    now = utcnow()
    values = {"title": q.title, "organisation": q.organisation, "description": q.description, "field": q.field,
              "goal_yen": q.goal_yen, "open": q.open, "updated_at": now}
    stmt = db.insert_on_conflict(session, donation_projects).values(
        code=q.code, created_at=now, created_by=actor.user_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["code"],
                                                     set_={k: stmt.excluded[k] for k in values}))
    return _project(await _project_row(session, q.code, actor))


async def certify_project(session: AsyncSession, q: c.ProjectCertify) -> c.Project:
    actor = _staff(q.actor)
    row = await _project_row(session, q.code, actor)
    if q.certified and row.certified_at is None:
        await session.execute(update(donation_projects).where(donation_projects.c.code == q.code)
                              .values(certified_at=utcnow(), certified_by=actor.user_id, updated_at=utcnow()))
    elif not q.certified and row.certified_at is not None:
        await session.execute(update(donation_projects).where(donation_projects.c.code == q.code)
                              .values(certified_at=None, certified_by=None, updated_at=utcnow()))
    return _project(await _project_row(session, q.code, actor))


async def list_projects(session: AsyncSession, q: c.ProjectListQuery) -> c.ProjectList:
    stmt = _project_query().order_by(donation_projects.c.created_at, donation_projects.c.code)
    if q.include_uncertified:
        _staff(q.actor)
    else:
        stmt = stmt.where(donation_projects.c.certified_at.is_not(None))
    return c.ProjectList(projects=[_project(r) for r in await session.execute(stmt)])


async def project_detail(session: AsyncSession, code: str, actor: Actor | None) -> c.ProjectDetail:
    row = await _project_row(session, code, actor)
    uses = [c.FundUse(id=u.id, used_on=u.used_on, amount_yen=u.amount_yen, description=u.description,
                      recorded_at=_aware(u.recorded_at))
            for u in await session.execute(select(donation_fund_uses)
                                           .where(donation_fund_uses.c.project_code == code)
                                           .order_by(donation_fund_uses.c.used_on, donation_fund_uses.c.recorded_at))]
    used = sum(u.amount_yen for u in uses)
    pending = 0
    if actor is not None and actor.has("staff"):
        pending = int((await session.execute(select(func.coalesce(func.sum(donations.c.amount_yen), 0)).where(
            donations.c.project_code == code, donations.c.status == "pledged"))).scalar_one())
    project = _project(row)
    return c.ProjectDetail(project=project, uses=uses, used_yen=used, balance_yen=project.raised_yen - used,
                           pending_yen=pending)


async def add_fund_use(session: AsyncSession, q: c.FundUseIn) -> c.ProjectDetail:
    """A use of a project's money. Refused (422) beyond what was raised: the balance never goes below zero."""
    actor = _staff(q.actor)
    # Lock the project row (PostgreSQL) so two uses recorded at once are checked one after the other.
    await session.execute(select(donation_projects.c.code).where(donation_projects.c.code == q.project)
                          .with_for_update())
    before = await project_detail(session, q.project, actor)
    if q.amount_yen > before.balance_yen:
        raise c.DONATION_OVER_BALANCE(f"only {before.balance_yen:,} yen of confirmed donations remain for this project "
                                   f"/ 残高（{before.balance_yen:,}円）を超えています")
    await session.execute(donation_fund_uses.insert().values(
        id=new_id(), project_code=q.project, used_on=q.used_on, amount_yen=q.amount_yen, description=q.description,
        recorded_at=utcnow(), recorded_by=actor.user_id))
    return await project_detail(session, q.project, actor)


# ---- rules ------------------------------------------------------------------------------------------------------


async def get_rules(session: AsyncSession) -> c.Rules:
    row = (await session.execute(select(donation_rules).where(donation_rules.c.id == 1))).one()
    return c.Rules(points_per_1000_yen=row.points_per_1000_yen, issuer_name=row.issuer_name,
                   bank_account=row.bank_account, updated_at=_aware(row.updated_at))


async def put_rules(session: AsyncSession, q: c.RulesPut) -> c.Rules:
    actor = _staff(q.actor)
    await session.execute(update(donation_rules).where(donation_rules.c.id == 1).values(
        points_per_1000_yen=q.points_per_1000_yen, issuer_name=q.issuer_name, bank_account=q.bank_account,
        updated_at=utcnow(), updated_by=actor.user_id))
    return await get_rules(session)


def points_for(amount_yen: int, per_1000_yen: int) -> int:
    """Points for a donation: whole points, rounded down (10 per 1,000 yen: 2,500 yen -> 25, 50 yen -> 0)."""
    return amount_yen * per_1000_yen // 1000


# ---- pledges ----------------------------------------------------------------------------------------------------


def _donation_query():
    return (select(donations, donation_projects.c.title)
            .select_from(donations.join(donation_projects, donation_projects.c.code == donations.c.project_code)))


def _donation(row: Any) -> c.Donation:
    return c.Donation(id=row.id, reference=row.reference, project=row.project_code, project_title=row.title,
                      person=row.person, donor_name=row.donor_name, amount_yen=row.amount_yen, method=row.method,
                      status=row.status, pledged_at=_aware(row.pledged_at), confirmed_at=_aware(row.confirmed_at),
                      confirmed_via=row.confirmed_via, cancelled_at=_aware(row.cancelled_at),
                      cancel_reason=row.cancel_reason, points=row.points, receipt_no=row.receipt_no)


async def _new_reference(session: AsyncSession) -> str:
    for _ in range(10):
        ref = "D-" + "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_LENGTH))
        taken = (await session.execute(select(donations.c.id).where(donations.c.reference == ref))).first()
        if taken is None:
            return ref
    raise c.DONATION_NO_REFERENCE("could not find a free reference; try again")


async def pledge(session: AsyncSession, q: c.PledgeIn, node: str) -> c.Donation:
    method = method_of(q.method)
    row = (await session.execute(select(donation_projects).where(donation_projects.c.code == q.project))).first()
    if row is None or row.certified_at is None:
        if row is None or not q.actor.has("staff"):
            raise c.DONATION_PROJECT_NOT_FOUND(f"no certified project {q.project!r} / プロジェクトが見つかりません")
        raise c.DONATION_PROJECT_NOT_CERTIFIED("this project is not certified: it takes no donations "
                                   "/ 認定されていないプロジェクトには寄附できません")
    if not row.open:
        raise c.DONATION_PROJECT_CLOSED("this project is closed: it takes no more donations "
                                   "/ このプロジェクトは寄附の受付を終了しました")
    did = new_id()
    await session.execute(donations.insert().values(
        id=did, reference=await _new_reference(session), project_code=q.project, person=q.actor.user_id,
        donor_name=q.donor_name or q.actor.display_name, donor_address=q.donor_address,
        amount_yen=q.amount_yen, method=method.code,
        status="pledged", pledged_at=utcnow(), points=0, cancel_reason=""))
    out = await _donation_row(session, did)
    await _announce(session, node, c.DonationPledged, out)
    return _donation(out)


async def _donation_row(session: AsyncSession, donation_id: str) -> Any:
    return (await session.execute(_donation_query().where(donations.c.id == donation_id))).one()


async def _by_reference(session: AsyncSession, reference: str, *, lock: bool = False) -> Any:
    stmt = select(donations).where(donations.c.reference == reference.upper())
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise c.DONATION_NOT_FOUND(f"no donation {reference!r} / 受付番号が見つかりません")
    return row


async def my_donations(session: AsyncSession, actor: Actor) -> c.MyDonations:
    rows = [_donation(r) for r in await session.execute(
        _donation_query().where(donations.c.person == actor.user_id).order_by(donations.c.pledged_at.desc()))]
    return c.MyDonations(donations=rows, confirmed_yen=sum(d.amount_yen for d in rows if d.status == "confirmed"),
                         points=sum(d.points for d in rows))


async def list_donations(session: AsyncSession, q: c.DonationListQuery) -> c.DonationList:
    _staff(q.actor)
    stmt = _donation_query().order_by(donations.c.pledged_at.desc()).limit(500)
    if q.status:
        stmt = stmt.where(donations.c.status == q.status)
    if q.project:
        stmt = stmt.where(donations.c.project_code == q.project)
    return c.DonationList(donations=[_donation(r) for r in await session.execute(stmt)])


async def _confirm(session: AsyncSession, row: Any, *, by: str, via: str, node: str,
                   tap_key: str | None = None) -> Any:
    """pledged -> confirmed: points through the ledger once, the next receipt number of the year."""
    if row.status != "pledged":
        raise c.DONATION_ALREADY_SETTLED(f"donation {row.reference} is already {row.status} / この寄附はすでに"
                              + ("確定しています" if row.status == "confirmed" else "取り消されています"))
    if not method_of(row.method).accepts(via):
        raise c.DONATION_WRONG_CONFIRMATION(f"a {row.method} donation is not confirmed by {via} "
                                   "/ この支払方法はここでは確認できません")
    now = utcnow()
    rules = await get_rules(session)
    points = points_for(row.amount_yen, rules.points_per_1000_yen)
    key = f"donation:{row.id}"
    if points:
        [posted] = await ledger.post_entries(session, [ledger.Entry(
            key=key, kind="donation", actor=by[:100], memo=f"donation {row.reference}",
            legs=(ledger.Leg(ledger.ISSUANCE, ASSET, -points), ledger.Leg(person_account(row.person), ASSET, points)),
        )], node=node)
        if isinstance(posted, errors.ServiceError):
            raise posted
    year = now.astimezone(JST).year
    counter = db.insert_on_conflict(session, donation_receipt_counters).values(year=year, last_seq=1)
    seq = (await session.execute(counter.on_conflict_do_update(
        index_elements=["year"], set_={"last_seq": donation_receipt_counters.c.last_seq + 1},
    ).returning(donation_receipt_counters.c.last_seq))).scalar_one()
    done = await session.execute(update(donations).where(donations.c.id == row.id, donations.c.status == "pledged")
                                 .values(status="confirmed", confirmed_at=now, confirmed_by=by[:100],
                                         confirmed_via=via, confirm_tap_key=tap_key, points=points,
                                         journal_key=key if points else None, receipt_year=year, receipt_seq=seq,
                                         receipt_no=f"{node}-{year}-{seq:06d}"))
    if db.rowcount(done) != 1:  # another confirmation got there first (it holds the points and the number)
        raise c.DONATION_ALREADY_SETTLED(f"donation {row.reference} was confirmed meanwhile")
    out = await _donation_row(session, row.id)
    await _announce(session, node, c.DonationConfirmed, out)
    return out


async def confirm(session: AsyncSession, q: c.DonationAction, node: str) -> c.Donation:
    actor = _staff(q.actor)
    row = await _by_reference(session, q.reference, lock=True)
    return _donation(await _confirm(session, row, by=actor.user_id, via="staff", node=node))


async def cancel(session: AsyncSession, q: c.DonationAction, node: str) -> c.Donation:
    actor = _staff(q.actor)
    row = await _by_reference(session, q.reference, lock=True)
    if row.status != "pledged":
        raise c.DONATION_NOT_CANCELLABLE(
            f"only a pledge not yet confirmed can be cancelled; {row.reference} is {row.status} "
            "/ 確定済み・取消済みの寄附は取り消せません")
    await session.execute(update(donations).where(donations.c.id == row.id).values(
        status="cancelled", cancelled_at=utcnow(), cancelled_by=actor.user_id, cancel_reason=q.reason,
        donor_address=""))  # no receipt will be issued: the address has no purpose left
    out = await _donation_row(session, row.id)
    await _announce(session, node, c.DonationCancelled, out)
    return _donation(out)


async def receipt(session: AsyncSession, q: c.DonationAction, node: str) -> c.ReceiptPdf:
    """The receipt of a confirmed donation, as PDF, for the donor or staff (anyone else: 404, as if none)."""
    row = (await session.execute(_donation_query().where(donations.c.reference == q.reference.upper()))).first()
    if row is None or (row.person != q.actor.user_id and not q.actor.has("staff")):
        raise c.DONATION_NOT_FOUND(f"no donation {q.reference!r} / 受付番号が見つかりません")
    if row.status != "confirmed" or row.receipt_no is None:
        raise c.DONATION_RECEIPT_NOT_READY(
            "a receipt is issued once the donation is confirmed / 受領証明書は寄附の確定後に発行されます")
    project = (await session.execute(select(donation_projects).where(
        donation_projects.c.code == row.project_code))).one()
    rules = await get_rules(session)
    pdf = receipt_pdf.receipt(receipt_pdf.ReceiptData(
        receipt_no=row.receipt_no, issued_on=_jp_date(row.confirmed_at), donor_name=row.donor_name,
        donor_address=row.donor_address,
        amount_yen=row.amount_yen, project_title=project.title, project_organisation=project.organisation,
        received_on=_jp_date(row.confirmed_at), reference=row.reference, issuer=rules.issuer_name or node, node=node))
    return c.ReceiptPdf(receipt_no=row.receipt_no, filename=f"receipt-{row.receipt_no}.pdf",
                        pdf_base64=base64.b64encode(pdf).decode())


# How long a donor's address is kept after the year of its receipt: the receipt can be issued again while a tax
# return may still ask for it (5 years, as 地方自治法 236条 keeps the municipality's money claims; the node's
# operator confirms it against the municipality's 文書管理規程).
ADDRESS_KEEP_YEARS = 5


async def forget_addresses(session: AsyncSession, *, now: datetime) -> int:
    """Erase the addresses whose keeping time is over (run by the points service's hourly sweep)."""
    last_year = now.astimezone(JST).year - ADDRESS_KEEP_YEARS - 1
    done = await session.execute(update(donations).where(
        donations.c.donor_address != "", donations.c.receipt_year <= last_year).values(donor_address=""))
    return int(getattr(done, "rowcount", 0) or 0)


# ---- the donor's touch at a terminal in donation mode -----------------------------------------------------------


async def confirm_by_touch(session: AsyncSession, tap: Tap, *, card_key: bytes,
                           node: str) -> TapOutcome | errors.ServiceError:
    """Staff set the terminal's ref to the pledge's reference; the donor touches their card. It confirms only if the
    card is bound to the person who pledged. A touch heard again (redelivery) answers duplicate."""
    # service.py calls this module, so its helper is imported here rather than at the top.
    from services.points.taps.service import card_account_id

    before = (await session.execute(select(donations).where(donations.c.confirm_tap_key == tap.key))).first()
    if before is not None:
        return TapOutcome(tap_id=tap.tap_id, status="duplicate", points=before.points,
                          balance=await ledger.balance(session, person_account(before.person), ASSET),
                          display=before.reference)
    try:
        # A savepoint: a refused touch leaves nothing behind, and the other taps of its batch are still written.
        async with session.begin_nested():
            row = await _by_reference(session, tap.ref or "", lock=True)
            card = card_account_id(card_key, tap.card_idm)
            bound = (await session.execute(select(card_bindings.c.person_account)
                                           .where(card_bindings.c.card_account == card))).scalar_one_or_none()
            if bound != person_account(row.person):
                raise c.DONATION_CARD_NOT_DONORS("this card is not registered to the person who pledged "
                                       "/ 寄附を申し込んだ方のカードではありません")
            done = await _confirm(session, row, by=f"terminal:{tap.terminal_id}", via="terminal", node=node,
                                  tap_key=tap.key)
    except errors.ServiceError as exc:
        return exc
    return TapOutcome(tap_id=tap.tap_id, status="credited", points=done.points,
                      balance=await ledger.balance(session, person_account(done.person), ASSET),
                      display=done.reference)
