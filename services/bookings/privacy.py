"""A person's data in the bookings service (issue 20 point 7): what it keeps about them, exported on request and
erased when their account is deleted (this node's UserDeleted, applied once through the kernel's inbox by the
`bookings-privacy` consumer; a UserDeleted naming a person of another home node is dead-lettered, 403).

Erasure: the person's bookings that have not started are cancelled as the operator would (the time is released
and the first on the waitlist is offered it, in the same transaction); then every booking, series, waitlist place
and lottery entry of theirs stays for the facility's records and counts, under a pseudonym, with the name
退会したユーザー and no phone or user id; their calendar feed token, group memberships and open waitlist places go. A
refund of a fee they had paid is not sent (the account it would go to is gone): staff see it as due.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import bookings as bookings_domain
from services.bookings import life
from services.bookings import waitlist as waiting
from services.bookings.models import (
    bookings,
    bus,
    facility_photos,
    feed_tokens,
    group_members,
    groups,
    lottery_entries,
    lottery_rounds,
    series,
    waitlist,
)
from towntip.kernel import privacy
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import privacy as pc
from towntip.kernel.db import aware
from towntip.kernel.privacy import Kept

KEPT = (
    Kept(bookings, "booker", erase="anonymise", names=("booker_name",), clear=("booker_user_id", "contact_phone"),
         about="施設の予約 / facility bookings"),
    Kept(bookings, "booked_by", erase="anonymise"),
    Kept(bookings, "cancelled_by", erase="anonymise"),
    Kept(bookings, "decided_by", erase="anonymise"),
    Kept(series, "booker", erase="anonymise", names=("booker_name",), clear=("booker_user_id",),
         about="定期予約 / recurring bookings"),
    Kept(series, "booked_by", erase="anonymise"),
    Kept(waitlist, "person", erase="anonymise", names=("person_name",), clear=("person_user_id",),
         about="キャンセル待ち / waitlist places"),
    Kept(waitlist, "booked_by", erase="anonymise"),
    Kept(feed_tokens, "booker", about="予約カレンダーのURL / your private calendar feed"),
    Kept(group_members, "handle", about="登録団体のメンバー / registered groups you belong to"),
    Kept(groups, "representative", erase="anonymise", names=("representative_name",),
         about="代表している団体 / groups you represent"),
    Kept(groups, "representative_user_id", "user_id", erase="anonymise"),
    Kept(groups, "decided_by", erase="anonymise"),
    Kept(lottery_entries, "booker", erase="anonymise", names=("booker_name",), about="抽選の申込 / lottery entries"),
    Kept(lottery_entries, "booker_user_id", "user_id", erase="anonymise"),
    Kept(lottery_entries, "applicant_key", erase="replace"),
    Kept(lottery_entries, "applicant", erase="replace"),
    Kept(lottery_rounds, "created_by", erase="anonymise"),
    Kept(lottery_rounds, "drawn_by", erase="anonymise"),
    Kept(facility_photos, "created_by", erase="anonymise"),
)


async def export(session: AsyncSession, *, data: pc.ExportQuery) -> pc.PersonData:
    person = privacy.Person(data.global_handle, data.user_id)
    return pc.PersonData(service=c.SERVICE, tables=await privacy.export(session, KEPT, person),
                         about=privacy.about(KEPT))


async def cancel(session: AsyncSession, *, booking_id: str, node: str, now: datetime) -> None:
    """As the booker's own cancellation (services/bookings/bookings.py: cancel), but the event names nobody: the
    notices service then sends no message to the person who left, and the outbox keeps nothing of them."""
    row = await bookings_domain.get_row(session, booking_id, lock=True)
    terms = await life.cancel_terms(session, row, own=True, now=now)
    await session.execute(update(bookings).where(bookings.c.id == row.id).values(
        state="cancelled", cancelled_at=now, cancelled_by=None, cancel_reason="booker", **terms))
    await announce(session, bus, node=node, at=now, event=c.BookingCancelled(
        booking_id=row.id, facility_id=row.facility_id, start=aware(row.starts_at).astimezone(JST),
        end=aware(row.ends_at).astimezone(JST), booker=None, by="booker", at=now, reason="booker",
        cancellation_fee=terms.get("cancellation_fee", 0)))
    if row.state in c.HOLDING_STATES:  # the freed time goes to the first in line, in this same transaction
        await waiting.released(session, node=node, facility_id=row.facility_id,
                                start=aware(row.starts_at), held_until=aware(row.held_until), now=now)


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    """Everything of the person here, in the consumer's transaction."""
    handle = erasure.person.global_handle
    future = (await session.execute(select(bookings.c.id).where(
        bookings.c.booker == handle, bookings.c.state != "cancelled", bookings.c.starts_at > erasure.at))).scalars()
    for booking_id in list(future):
        await cancel(session, booking_id=booking_id, node=erasure.node, now=erasure.at)
    await privacy.erase(session, KEPT, erasure.person, alias=erasure.alias)
    await privacy.scrub_outbox(session, bus.outbox, erasure.person)
