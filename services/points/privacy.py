"""A person's data in the points service (issue 20 point 7): what it keeps about them, exported on request and
erased when their account is deleted (this node's UserDeleted, applied once through the kernel's inbox by the
`points-privacy` consumer; a UserDeleted naming a person of another home node is dead-lettered, 403).

Erasure: the person's cards are unbound; their sign-ups go (a seat they held passes to the first waiting); the
directory, certificates and pending card requests go; donations, coupons and course completions stay as the
ledger's facts but name nobody (donor name and address cleared). The ledger is never rewritten in its amounts:
the person's account (`person:<user id>`) and each card that was bound to them (`card:<keyed hash>`) are re-keyed
to anonymous accounts (`anon:<random>`), so every posting stays, every journal entry still sums to zero and the
system's balances are unchanged, but nothing links them to the person any more. Idempotency keys that contain the
user id get the pseudonym in its place.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.coupons.models import coupons
from services.points.courses.models import certificates, course_completions, courses
from services.points.donations.models import donations
from services.points.ledger.models import accounts, balances, journal, postings
from services.points.people.models import people
from services.points.signups.service import fill_seats
from services.points.tables import bus
from services.points.taps.models import (
    card_binding_requests,
    card_bindings,
    card_registration_codes,
    event_signups,
    taps,
)
from services.points.volunteers.models import volunteer_roster
from towntip.kernel import privacy
from towntip.kernel.contracts import privacy as pc
from towntip.kernel.contracts.points import SERVICE
from towntip.kernel.privacy import Kept

KEPT = (
    Kept(people, "global_handle", about="あなたの登録情報(表示名・地区) / your name and district"),
    Kept(card_bindings, "person_account", "account", about="登録したカード / your bound cards"),
    Kept(card_binding_requests, "person_account", "account", about="カード登録の申請 / card requests"),
    Kept(card_registration_codes, "used_by", "account", erase="null"),
    Kept(event_signups, "person", about="イベントの申込 / event sign-ups"),
    Kept(volunteer_roster, "global_handle", about="ボランティアの登録 / volunteer rosters"),
    Kept(certificates, "person_id", "user_id", about="認定証 / certificates"),
    Kept(coupons, "person_account", "account", erase="keep", about="クーポン / coupons"),
    Kept(donations, "person", "user_id", erase="anonymise", names=("donor_name",), clear=("donor_address",),
         about="寄附 / donations"),
    Kept(donations, "confirmed_by", "user_id", erase="null"),
    Kept(donations, "cancelled_by", "user_id", erase="null"),
    Kept(course_completions, "person_id", "user_id", erase="anonymise", about="講座の修了 / course completions"),
    Kept(course_completions, "person_ref", "handle", erase="anonymise"),
    Kept(course_completions, "person_ref", "local", erase="anonymise"),
    Kept(course_completions, "journal_key", "user_id", erase="replace"),
    Kept(course_completions, "recorded_by", "user_id", erase="anonymise"),
    Kept(courses, "updated_by", "user_id", erase="anonymise"),
    Kept(balances, "account_id", "account", erase="keep", about="残高 / balances"),
    Kept(postings, "account_id", "account", erase="keep", about="ポイントの記録 / ledger postings"),
    Kept(taps, "account_id", "account", erase="keep", about="カードのタッチ / taps"),
    Kept(journal, "idempotency_key", "user_id", erase="replace"),
    Kept(journal, "actor", "user_id", erase="replace"),
    Kept(coupons, "purchase_key", "user_id", erase="replace"),
    Kept(donations, "journal_key", "user_id", erase="replace"),
)


async def export(session: AsyncSession, *, data: pc.ExportQuery) -> pc.PersonData:
    person = privacy.Person(data.global_handle, data.user_id)
    tables = await privacy.export(session, KEPT, person)
    cards = [r["card_account"] for r in tables.get("card_bindings", [])]
    if cards:  # the taps of the person's cards before they were bound: theirs too
        rows = (await session.execute(select(taps).where(taps.c.account_id.in_(cards)))).mappings().all()
        tables["card_taps"] = [{k: privacy._json(v) for k, v in r.items()} for r in rows]
    return pc.PersonData(service=SERVICE, tables=tables, about=privacy.about(KEPT))


async def rekey(session: AsyncSession, old: str, new: str) -> None:
    """The ledger account `old` becomes `new`: every posting, balance and tap moves with it, nothing is summed."""
    row = (await session.execute(select(accounts).where(accounts.c.id == old))).mappings().first()
    if row is None:
        return
    await session.execute(accounts.insert().values({**row, "id": new}))
    for col in (balances.c.account_id, postings.c.account_id, taps.c.account_id, taps.c.holder,
                coupons.c.person_account, card_registration_codes.c.card_account,
                card_registration_codes.c.used_by):
        await session.execute(update(col.table).where(col == old).values({col: new}))
    await session.execute(delete(accounts).where(accounts.c.id == old))


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    """Everything of the person here, in the consumer's transaction."""
    person = erasure.person
    handle = person.global_handle
    held = list((await session.execute(select(event_signups.c.event_code).where(
        event_signups.c.person == handle, event_signups.c.state == "signed_up"))).scalars())
    account = person.value("account")
    cards: list[str] = []
    if account is not None:
        cards = list((await session.execute(select(card_bindings.c.card_account).where(
            card_bindings.c.person_account == account))).scalars())
    await privacy.erase(session, KEPT, person, alias=erasure.alias)  # unbinds the cards, drops the sign-ups
    for code in held:
        await fill_seats(session, code=code, node=erasure.node, now=erasure.at)
    if account is not None:
        await rekey(session, account, f"anon:{erasure.alias}")
    for i, card in enumerate(cards):
        await session.execute(delete(card_binding_requests).where(card_binding_requests.c.card_account == card))
        await rekey(session, card, f"anon:{erasure.alias}-card{i}")
    await privacy.scrub_outbox(session, bus.outbox, person, also=[c.removeprefix("card:") for c in cards])
