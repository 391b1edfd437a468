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

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.bookings import bookings as bookings_domain
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
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import privacy as pc
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


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    """Everything of the person here, in the consumer's transaction."""
    handle = erasure.person.global_handle
    future = (await session.execute(select(bookings.c.id).where(
        bookings.c.booker == handle, bookings.c.state != "cancelled", bookings.c.starts_at > erasure.at))).scalars()
    for booking_id in list(future):
        await bookings_domain.cancel(session, node=erasure.node, now=erasure.at,
                                     data=c.BookingAction(booking_id=booking_id))
    await privacy.erase(session, KEPT, erasure.person, alias=erasure.alias)
    await privacy.scrub_outbox(session, bus.outbox, erasure.person)
