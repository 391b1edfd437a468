"""NATS adapters of the projects service: request/reply endpoints. They own the transactions and wake the outbox
relay and the mail sender after each commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.projects import inquiries, organisations, themes
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import projects as c

T = TypeVar("T")


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, public_url: str,
                    on_commit: Callable[[], None]) -> Endpoints:
    eps = Endpoints()

    async def write(change: Callable[..., Awaitable[T]], **args: Any) -> T:
        """One change in its own transaction; after the commit, the outbox relay and the mail sender are woken."""
        async with sessions() as session, session.begin():
            out = await change(session=session, **args)
        on_commit()
        return out

    # ---- organisations ----

    @eps.add(c.EP_ORG_CREATE, c.OrgCreate)
    async def org_create(q: c.OrgCreate) -> c.Org:
        return await write(organisations.create, data=q, node=node)

    @eps.add(c.EP_ORG_UPDATE, c.OrgUpdate)
    async def org_update(q: c.OrgUpdate) -> c.Org:
        return await write(organisations.update_profile, data=q, node=node)

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
        return await write(organisations.add_member, data=q)

    @eps.add(c.EP_ORG_MEMBER_REMOVE, c.MemberRemove)
    async def member_remove(q: c.MemberRemove) -> c.Org:
        return await write(organisations.remove_member, data=q)

    # ---- hearings and themes ----

    @eps.add(c.EP_HEARING_CREATE, c.HearingCreate)
    async def hearing_create(q: c.HearingCreate) -> c.Hearing:
        return await write(themes.create_hearing, data=q, node=node)

    @eps.add(c.EP_HEARING_LIST, c.HearingListQuery)
    async def hearing_list(q: c.HearingListQuery) -> c.HearingList:
        async with sessions() as session:
            return c.HearingList(hearings=await themes.list_hearings(session=session, q=q))

    @eps.add(c.EP_THEME_CREATE, c.ThemeCreate)
    async def theme_create(q: c.ThemeCreate) -> c.Theme:
        return await write(themes.create_theme, data=q, node=node)

    @eps.add(c.EP_THEME_UPDATE, c.ThemeUpdate)
    async def theme_update(q: c.ThemeUpdate) -> c.Theme:
        return await write(themes.update_theme, data=q, node=node)

    @eps.add(c.EP_THEME_PUBLISH, c.ThemeAction)
    async def theme_publish(q: c.ThemeAction) -> c.Theme:
        return await write(themes.publish, data=q, node=node)

    @eps.add(c.EP_THEME_REQUIREMENTS, c.RequirementsPut)
    async def theme_requirements(q: c.RequirementsPut) -> c.Theme:
        return await write(themes.put_requirements, data=q, node=node)

    @eps.add(c.EP_THEME_CALL_OPEN, c.ThemeAction)
    async def theme_call_open(q: c.ThemeAction) -> c.Theme:
        return await write(themes.open_call, data=q, node=node)

    @eps.add(c.EP_THEME_ADVANCE, c.PhaseAdvance)
    async def theme_advance(q: c.PhaseAdvance) -> c.Theme:
        return await write(themes.advance_phase, data=q, node=node)

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
        return await write(inquiries.create, data=q, node=node, public_url=public_url)

    @eps.add(c.EP_INQUIRY_LIST, c.InquiryListQuery)
    async def inquiry_list(q: c.InquiryListQuery) -> c.InquiryList:
        async with sessions() as session:
            return c.InquiryList(inquiries=await inquiries.list_(session=session, q=q))

    @eps.add(c.EP_INQUIRY_STATUS, c.InquiryStatusSet)
    async def inquiry_status(q: c.InquiryStatusSet) -> c.Inquiry:
        return await write(inquiries.set_status, data=q)

    return eps
