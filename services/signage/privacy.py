"""A person's data in the signage service (issue 20 point 7): only who made, approved or changed screen content
(staff), by global handle. Exported on request; when the account is deleted (this node's UserDeleted, applied
once through the kernel's inbox by the `signage-privacy` consumer; one naming a person of another home node is
dead-lettered, 403) the content stays on the screens, its maker and approver a pseudonym. Screens, plays and slides
name no person.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.signage.models import bus, emergencies, items, playlists
from towntip.kernel import privacy
from towntip.kernel.contracts import privacy as pc
from towntip.kernel.contracts.signage import SERVICE
from towntip.kernel.privacy import Kept

KEPT = (
    Kept(items, "created_by", erase="anonymise", about="作成した掲示 / content you made"),
    Kept(items, "approved_by", erase="anonymise", about="承認した掲示 / content you approved"),
    Kept(playlists, "updated_by", erase="anonymise", about="変更した再生リスト / playlists you changed"),
    Kept(emergencies, "issued_by", erase="anonymise", about="緊急情報 / emergencies you issued"),
    Kept(emergencies, "cleared_by", erase="anonymise"),
)


async def export(session: AsyncSession, *, data: pc.ExportQuery) -> pc.PersonData:
    person = privacy.Person(data.global_handle, data.user_id)
    return pc.PersonData(service=SERVICE, tables=await privacy.export(session, KEPT, person),
                         about=privacy.about(KEPT))


async def forget(session: AsyncSession, erasure: privacy.Erasure) -> None:
    await privacy.erase(session, KEPT, erasure.person, alias=erasure.alias)
    await privacy.scrub_outbox(session, bus.outbox, erasure.person)
