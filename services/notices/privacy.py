"""A person's data in the notices service (issue 20 point 7): what it keeps about them, exported on request and
erased when their account is deleted (this node's UserDeleted, applied once through the kernel's inbox by the
`notices-privacy` consumer, beside the people consumer's own forgetting in services/notices/people.py; a UserDeleted
naming a person of another home node is dead-lettered, 403).

Erasure: the inbox, messages to them alone, life-stage answers, notifications and their settings, Web Push
subscriptions, private calendar tokens and followed towns go; a notice they wrote or approved as staff stays for the
record under a pseudonym.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.notices import people as people_domain
from services.notices.activity_models import activity_bookings, activity_notes, activity_prefs, push_subscriptions
from services.notices.feeds_models import calendar_tokens, feeds
from services.notices.models import (
    bus,
    inbox_entries,
    life_facets,
    life_profiles,
    notice_audience,
    notice_history,
    notices,
    people,
)
from services.notices.towns_models import town_follows
from towntip.kernel import privacy
from towntip.kernel.contracts import privacy as pc
from towntip.kernel.contracts.notices import SERVICE
from towntip.kernel.privacy import Kept

KEPT = (
    Kept(people, "global_handle", about="お知らせの宛先としてのあなた / you as a recipient"),
    Kept(life_profiles, "person", about="ライフステージの回答 / your life-stage answers"),
    Kept(life_facets, "person"),
    Kept(inbox_entries, "person", about="電子私書箱 / your inbox"),
    Kept(notice_audience, "person", about="届いたお知らせ / notices sent to you"),
    Kept(activity_notes, "person", about="通知 / notifications"),
    Kept(activity_notes, "who", erase="rename"),  # others' notifications of what the person did
    Kept(activity_prefs, "person", about="通知の設定 / notification settings"),
    Kept(push_subscriptions, "person", about="プッシュ通知の登録 / push subscriptions"),
    Kept(activity_bookings, "booker", about="予約の通知 / booking reminders"),
    Kept(calendar_tokens, "person", about="カレンダーのURL / your private calendar"),
    Kept(town_follows, "person", about="フォローしている自治体 / towns you follow"),
    Kept(notices, "created_by", erase="anonymise"),
    Kept(notices, "approved_by", erase="anonymise"),
    Kept(notice_history, "actor", erase="anonymise"),
    Kept(feeds, "created_by", erase="anonymise"),
)


async def export(session: AsyncSession, *, data: pc.ExportQuery) -> pc.PersonData:
    person = privacy.Person(data.global_handle, data.user_id)
    return pc.PersonData(service=SERVICE, tables=await privacy.export(session, KEPT, person),
                         about=privacy.about(KEPT))


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    """Everything of the person here, in the consumer's transaction (people.forget first: it knows which messages
    were theirs alone)."""
    await people_domain.forget(session, erasure.person.global_handle)
    await privacy.erase(session, KEPT, erasure.person, alias=erasure.alias)
    await privacy.scrub_outbox(session, bus.outbox, erasure.person)
