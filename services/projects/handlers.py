"""NATS adapters of the projects service: request/reply endpoints. They own the transactions and wake the outbox
relay and the mail sender after each commit."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.projects import inquiries, organisations, themes
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import projects as c


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, public_url: str,
                    on_commit: Callable[[], None]) -> Endpoints:
    eps = Endpoints()

    # ---- organisations ----

    @eps.add(c.EP_ORG_CREATE, c.OrgCreate)
    async def org_create(q: c.OrgCreate) -> c.Org:
        async with sessions() as session, session.begin():
            out = await organisations.create(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_ORG_UPDATE, c.OrgUpdate)
    async def org_update(q: c.OrgUpdate) -> c.Org:
        async with sessions() as session, session.begin():
            out = await organisations.update_profile(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_ORG_GET, c.OrgQuery)
    async def org_get(q: c.OrgQuery) -> c.Org:
        async with sessions() as session:
            return await organisations.get(session=session, org_id=q.org_id, actor=q.actor)

    @eps.add(c.EP_ORG_LIST, c.OrgListQuery)
    async def org_list(q: c.OrgListQuery) -> c.OrgList:
        async with sessions() as session:
            return c.OrgList(orgs=await organisations.list_(session=session, q=q))

    @eps.add(c.EP_ORG_MEMBER_ADD, c.MemberAdd)
    async def member_add(q: c.MemberAdd) -> c.Org:
        async with sessions() as session, session.begin():
            return await organisations.add_member(session=session, data=q)

    @eps.add(c.EP_ORG_MEMBER_REMOVE, c.MemberRemove)
    async def member_remove(q: c.MemberRemove) -> c.Org:
        async with sessions() as session, session.begin():
            return await organisations.remove_member(session=session, data=q)

    # ---- hearings and themes ----

    @eps.add(c.EP_HEARING_CREATE, c.HearingCreate)
    async def hearing_create(q: c.HearingCreate) -> c.Hearing:
        async with sessions() as session, session.begin():
            return await themes.create_hearing(session=session, data=q, node=node)

    @eps.add(c.EP_HEARING_LIST, c.HearingListQuery)
    async def hearing_list(q: c.HearingListQuery) -> c.HearingList:
        async with sessions() as session:
            return c.HearingList(hearings=await themes.list_hearings(session=session, q=q))

    @eps.add(c.EP_THEME_CREATE, c.ThemeCreate)
    async def theme_create(q: c.ThemeCreate) -> c.Theme:
        async with sessions() as session, session.begin():
            return await themes.create_theme(session=session, data=q, node=node)

    @eps.add(c.EP_THEME_UPDATE, c.ThemeUpdate)
    async def theme_update(q: c.ThemeUpdate) -> c.Theme:
        async with sessions() as session, session.begin():
            out = await themes.update_theme(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_THEME_PUBLISH, c.ThemeAction)
    async def theme_publish(q: c.ThemeAction) -> c.Theme:
        async with sessions() as session, session.begin():
            out = await themes.publish(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_THEME_REQUIREMENTS, c.RequirementsPut)
    async def theme_requirements(q: c.RequirementsPut) -> c.Theme:
        async with sessions() as session, session.begin():
            out = await themes.put_requirements(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_THEME_CALL_OPEN, c.ThemeAction)
    async def theme_call_open(q: c.ThemeAction) -> c.Theme:
        async with sessions() as session, session.begin():
            out = await themes.open_call(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_THEME_ADVANCE, c.PhaseAdvance)
    async def theme_advance(q: c.PhaseAdvance) -> c.Theme:
        async with sessions() as session, session.begin():
            out = await themes.advance_phase(session=session, data=q, node=node)
        on_commit()
        return out

    @eps.add(c.EP_THEME_GET, c.ThemeQuery)
    async def theme_get(q: c.ThemeQuery) -> c.Theme:
        async with sessions() as session:
            return await themes.get(session=session, theme_id=q.theme_id, actor=q.actor)

    @eps.add(c.EP_THEME_LIST, c.ThemeListQuery)
    async def theme_list(q: c.ThemeListQuery) -> c.ThemeList:
        async with sessions() as session:
            return c.ThemeList(themes=await themes.list_(session=session, q=q))

    @eps.add(c.EP_THEME_HISTORY, c.ThemeQuery)
    async def theme_history(q: c.ThemeQuery) -> c.History:
        async with sessions() as session:
            return await themes.history(session=session, theme_id=q.theme_id, actor=q.actor)

    # ---- the contact form ----

    @eps.add(c.EP_INQUIRY_CREATE, c.InquiryCreate)
    async def inquiry_create(q: c.InquiryCreate) -> c.InquiryReceipt:
        async with sessions() as session, session.begin():
            out = await inquiries.create(session=session, data=q, node=node, public_url=public_url)
        on_commit()
        return out

    @eps.add(c.EP_INQUIRY_LIST, c.InquiryListQuery)
    async def inquiry_list(q: c.InquiryListQuery) -> c.InquiryList:
        async with sessions() as session:
            return c.InquiryList(inquiries=await inquiries.list_(session=session, q=q))

    @eps.add(c.EP_INQUIRY_STATUS, c.InquiryStatusSet)
    async def inquiry_status(q: c.InquiryStatusSet) -> c.Inquiry:
        async with sessions() as session, session.begin():
            return await inquiries.set_status(session=session, data=q)

    return eps
