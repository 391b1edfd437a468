"""Federation of themes and cases: other municipalities' published themes and cases as read-only copies, follows,
starting a theme from a case (横展開) and wide-area themes (広域連携). No NATS, no commits here.

Where copies come from: every member node announces its public facts on its own EVT_<NODE>_PROJECTS; this node's
FED_<NODE>_PROJECTS sources the streams of the members the trust anchor lists (app.py refreshes the list), and
`PeerFactsHandler` applies them once (the kernel's inbox). A node speaks only for itself: an event of node X must
arrive on X's subject and may only describe X's own themes and cases (`origin_node` = X), so a copy here changes
only when its own node says so. The newest version wins; phases only move forward. A node the anchor no longer
lists is inactive here and its copies are hidden (kept, so that they come back if it is listed again).

Who may:
- the copies, their lists and the member list: anyone (they are public at their own node);
- follow and the followed list: a logged-in person, for themselves;
- start a theme from a case: whoever may create themes of that department (themes.create_theme decides);
- make a theme wide-area and invite: its managers (themes.may_manage), published themes only;
- declare participation: staff or the secretariat of an invited node, once.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import outcomes
from services.projects import themes as theme_domain
from services.projects.common import audit, aware
from services.projects.models import (
    audit_log,
    bus,
    federation_members,
    follows,
    participations,
    remote_cases,
    remote_themes,
    theme_invitations,
    theme_participants,
    themes,
)
from towntip.kernel import errors
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected, peer_event
from towntip.kernel.bus.envelope import event_token, utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import notices as nc
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor

log = logging.getLogger(__name__)


# ---- what a peer says, checked like input -----------------------------------------------------------------------


# Event types applied here and the model each is checked with. Every other type on a peer's projects stream is
# acknowledged without effect.
APPLIED: dict[str, type[BaseModel]] = {
    "ThemePublished": c.ThemePublished,
    "ThemeChanged": c.ThemeChanged,
    "ThemePhaseAdvanced": c.ThemePhaseAdvanced,
    "ResultPublished": c.ResultPublished,
    "CasePublished": p.CasePublished,
    "CaseChanged": p.CaseChanged,
    "WideAreaParticipationDeclared": f.WideAreaParticipationDeclared,
}


def _clip(value: Any, limit: int) -> str:
    return str(value)[:limit]


def _codes(values: list[Any]) -> list[str]:
    return [str(v)[:16] for v in values[:43]]


class PeerFactsHandler:
    """Applies other nodes' public projects events to this node's copies (and records wide-area participation
    in this node's own themes)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.ignored: deque[str] = deque(maxlen=100)  # why events were ignored (also logged), newest last

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        key, peer, type_, data = peer_event(msg, self.node, "projects")
        parts = msg.subject.split(".")
        if not isinstance(type_, str) or parts[3] != event_token(type_):
            raise Rejected(f"event type {type_!r} does not match its subject {msg.subject!r}")
        model = APPLIED.get(type_)
        if model is None:
            return f"{peer}:{key}", {"peer": peer, "type": type_, "data": None}
        if not isinstance(data, dict):
            raise Rejected("the event carries no data")
        if data.get("origin_node") != peer:
            raise Rejected(f"{peer!r} may speak only for its own themes and cases, not for "
                           f"{data.get('origin_node')!r}'s", code=403)
        try:
            facts = model.model_validate(data)
        except ValidationError as exc:
            raise Rejected(f"{type_}: {exc.errors()[0]['msg']}") from None
        return f"{peer}:{key}", {"peer": peer, "type": type_, "data": facts}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        out: list[Outcome] = []
        for d in deliveries:
            if not d.duplicate and d.item["data"] is not None:
                await self._apply_one(session, d.item["peer"], d.item["type"], d.item["data"])
            out.append(None)
        return out

    async def _apply_one(self, session: AsyncSession, peer: str, type_: str, e: Any) -> None:
        now = utcnow()
        if type_ in ("ThemePublished", "ThemeChanged"):
            await _upsert_theme(session, e, now)
        elif type_ == "ThemePhaseAdvanced":
            row = (await session.execute(select(remote_themes.c.phase, remote_themes.c.version).where(
                remote_themes.c.origin_node == peer, remote_themes.c.id == e.theme_id))).first()
            if row is not None and (e.to_phase > row.phase or (e.version or 0) > row.version):
                await session.execute(update(remote_themes).where(
                    remote_themes.c.origin_node == peer, remote_themes.c.id == e.theme_id).values(
                    phase=max(row.phase, min(e.to_phase, 4)), version=max(row.version, e.version or 0),
                    received_at=now))
        elif type_ == "ResultPublished":
            selected = [{"title": _clip(r.get("title", ""), 200),
                         "lead_org_name": _clip(r.get("lead_org_name", ""), 200),
                         "partner_names": [_clip(x, 200) for x in r.get("partner_names", [])][:20]}
                        for r in e.ranking if isinstance(r, dict) and r.get("selected")]
            await session.execute(update(remote_themes).where(
                remote_themes.c.origin_node == peer, remote_themes.c.id == e.theme_id).values(
                result={"published_at": aware(e.published_at).isoformat(), "reasons": e.reasons[:4000],
                        "pilot_candidates": selected}, received_at=now))
        elif type_ in ("CasePublished", "CaseChanged"):
            await _upsert_case(session, e, now)
        elif type_ == "WideAreaParticipationDeclared":
            await self._participation(session, peer, e, now)

    async def _participation(self, session: AsyncSession, peer: str, e: f.WideAreaParticipationDeclared,
                             now: datetime) -> None:
        if e.theme_origin_node != self.node:
            return  # another node's theme: that node records it, and its ThemeChanged tells us
        row = (await session.execute(theme_domain._themes_query().where(themes.c.id == e.theme_id))).first()
        invited = row is not None and row.wide_area and (await session.execute(select(theme_invitations.c.node).where(
            theme_invitations.c.theme_id == e.theme_id, theme_invitations.c.node == peer))).first() is not None
        if not invited:
            reason = f"{peer} declared participation in theme {e.theme_id} without an invitation: ignored"
            log.warning(reason)
            self.ignored.append(reason)
            return
        have = (await session.execute(select(theme_participants.c.node).where(
            theme_participants.c.theme_id == e.theme_id, theme_participants.c.node == peer))).first()
        if have is not None:
            return
        await session.execute(insert(theme_participants).values(
            theme_id=e.theme_id, node=peer, declared_at=e.declared_at, recorded_at=now, note=e.note[:1000]))
        await session.execute(update(themes).where(themes.c.id == e.theme_id).values(
            version=themes.c.version + 1, updated_at=now))
        await session.execute(insert(audit_log).values(
            subject_kind="theme", subject_id=e.theme_id, action="wide_area_participant", actor=f"node:{peer}",
            actor_name=peer, at=now, before=None, after={"participant": peer, "declared_at": aware(e.declared_at)
                                                          .isoformat()}, note=e.note[:1000]))
        row = await theme_domain._reload(session, e.theme_id)
        if row.status == "published":
            await announce(session, bus, node=self.node, at=now,
                           event=await theme_domain.public_event(session, row, c.ThemeChanged))


async def _upsert_theme(session: AsyncSession, e: c.ThemePublished, now: datetime) -> None:
    values = {
        "owner_department_name": _clip(e.owner_department_name, 200), "title": _clip(e.title, 200),
        "background": e.background, "target": e.target, "desired_outcome": e.desired_outcome,
        "fields": _codes(e.fields), "company_points": e.company_points, "phase": min(max(e.phase, 1), 4),
        "version": e.version, "published_at": e.published_at, "wide_area": e.wide_area,
        "invited_nodes": _codes(e.invited_nodes), "participants": _codes(e.participants),
        "origin_case": ({k: _clip(v, 200) for k, v in e.origin_case.items()} if e.origin_case else None),
        "received_at": now,
    }
    where = (remote_themes.c.origin_node == e.origin_node, remote_themes.c.id == e.id)
    row = (await session.execute(select(remote_themes.c.version, remote_themes.c.phase).where(*where))).first()
    if row is None:
        await session.execute(insert(remote_themes).values(origin_node=e.origin_node, id=e.id, result=None, **values))
    elif e.version > row.version:
        values["phase"] = max(values["phase"], row.phase)
        await session.execute(update(remote_themes).where(*where).values(**values))


async def _upsert_case(session: AsyncSession, e: p.CasePublished, now: datetime) -> None:
    values = {
        "theme_id": _clip(e.theme_id, 36), "owner_department_name": _clip(e.owner_department_name, 200),
        "title": _clip(e.title, 200), "summary": e.summary, "approach": e.approach, "outcomes": e.outcomes,
        "lessons": e.lessons, "transferability": e.transferability, "fields": _codes(e.fields),
        "kpis": e.kpis[:50], "partners": [_clip(p, 200) for p in e.partners[:50]], "decision": _clip(e.decision, 16),
        "version": e.version, "published_at": e.published_at, "received_at": now,
    }
    where = (remote_cases.c.origin_node == e.origin_node, remote_cases.c.id == _clip(e.id, 36))
    row = (await session.execute(select(remote_cases.c.version).where(*where))).first()
    if row is None:
        await session.execute(insert(remote_cases).values(origin_node=e.origin_node, id=_clip(e.id, 36), **values))
    elif e.version > row.version:
        await session.execute(update(remote_cases).where(*where).values(**values))


# ---- the member municipalities ------------------------------------------------------------------------------------


async def record_members(session: AsyncSession, found: dict[str, str], now: datetime) -> None:
    """The anchor's list as of now ({node: entity id}): listed nodes active, every other known node inactive."""
    known = {r.node for r in await session.execute(select(federation_members.c.node))}
    for node, entity_id in found.items():
        values = {"entity_id": entity_id[:300], "active": True, "checked_at": now}
        if node in known:
            await session.execute(update(federation_members).where(federation_members.c.node == node).values(**values))
        else:
            await session.execute(insert(federation_members).values(node=node, **values))
    gone = known - set(found)
    if gone:
        await session.execute(update(federation_members).where(federation_members.c.node.in_(gone)).values(
            active=False, checked_at=now))


async def known_entities(session: AsyncSession) -> dict[str, str]:
    """{entity id: node} of every member seen so far (a listed member whose configuration cannot be fetched for a
    moment stays a member)."""
    return {r.entity_id: r.node for r in await session.execute(select(federation_members))}


async def members(*, session: AsyncSession, node: str, anchor: str) -> f.Members:
    rows = await session.execute(select(federation_members).order_by(federation_members.c.node))
    return f.Members(node=node, anchor=anchor, members=[
        f.Member(node=r.node, public_url=r.entity_id, active=r.active, checked_at=aware(r.checked_at))
        for r in rows])


async def _active(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(federation_members.c.node, federation_members.c.entity_id)
                                 .where(federation_members.c.active.is_(True)))
    return {r.node: r.entity_id for r in rows}


# ---- read-only copies ---------------------------------------------------------------------------------------------


def _visible(table: Any, node: str):
    """Rows of active members other than this node."""
    return select(table, federation_members.c.entity_id).join(federation_members, and_(
        federation_members.c.node == table.c.origin_node, federation_members.c.active.is_(True))).where(
        table.c.origin_node != node)


async def _followed(session: AsyncSession, actor: Actor | None, kind: str) -> set[tuple[str, str]]:
    if actor is None:
        return set()
    rows = await session.execute(select(follows.c.origin_node, follows.c.item_id).where(
        follows.c.global_handle == actor.global_handle, follows.c.kind == kind))
    return {(r.origin_node, r.item_id) for r in rows}


async def _participating(session: AsyncSession) -> set[tuple[str, str]]:
    return {(r.origin_node, r.theme_id) for r in await session.execute(
        select(participations.c.origin_node, participations.c.theme_id))}


def _theme_out(row: Any, node: str, actor: Actor | None, followed: set[tuple[str, str]],
               participating: set[tuple[str, str]]) -> f.RemoteTheme:
    key = (row.origin_node, row.id)
    staff = actor is not None and actor.has("staff", "secretariat")
    invited = node in (row.invited_nodes or [])
    return f.RemoteTheme(
        id=row.id, origin_node=row.origin_node, origin_url=f"{row.entity_id.rstrip('/')}/themes/{row.id}",
        owner_department_name=row.owner_department_name, title=row.title, background=row.background,
        target=row.target, desired_outcome=row.desired_outcome, fields=list(row.fields or []),
        company_points=row.company_points, phase=row.phase, version=row.version,
        published_at=aware(row.published_at), result=row.result, wide_area=row.wide_area,
        invited_nodes=list(row.invited_nodes or []), participants=list(row.participants or []),
        origin_case=row.origin_case, received_at=aware(row.received_at), following=key in followed,
        participating=key in participating,
        may_participate=staff and row.wide_area and invited and key not in participating)


def prefill(row: Any) -> dict[str, Any]:
    """A new theme's content started from a case (横展開): the staff edit it before saving."""
    return {"title": row.title[:200], "background": f"{row.summary}\n\n({row.origin_node}: {row.title})".strip()[:4000],
            "target": "", "desired_outcome": row.outcomes[:4000], "fields": list(row.fields or []),
            "company_points": "\n\n".join(x for x in (row.approach, row.transferability) if x)[:4000]}


def _case_out(row: Any, followed: set[tuple[str, str]]) -> f.RemoteCase:
    return f.RemoteCase(
        id=row.id, theme_id=row.theme_id, origin_node=row.origin_node,
        origin_url=f"{row.entity_id.rstrip('/')}/cases/{row.id}", owner_department_name=row.owner_department_name,
        title=row.title, summary=row.summary, approach=row.approach, outcomes=row.outcomes, lessons=row.lessons,
        transferability=row.transferability, fields=list(row.fields or []), kpis=list(row.kpis or []),
        partners=list(row.partners or []), decision=row.decision, version=row.version,
        published_at=aware(row.published_at), received_at=aware(row.received_at),
        following=(row.origin_node, row.id) in followed, prefill=prefill(row))


async def list_themes(*, session: AsyncSession, q: f.RemoteListQuery, node: str) -> f.RemoteThemeList:
    stmt = _visible(remote_themes, node).order_by(remote_themes.c.published_at.desc())
    if q.origin_node:
        stmt = stmt.where(remote_themes.c.origin_node == q.origin_node)
    followed, part = await _followed(session, q.actor, "theme"), await _participating(session)
    return f.RemoteThemeList(themes=[_theme_out(r, node, q.actor, followed, part) for r in await session.execute(stmt)
                                     if q.field is None or q.field in (r.fields or [])])


async def _theme_row(session: AsyncSession, origin_node: str, theme_id: str, node: str) -> Any:
    row = (await session.execute(_visible(remote_themes, node).where(
        remote_themes.c.origin_node == origin_node, remote_themes.c.id == theme_id))).first()
    if row is None:
        raise c.FEDERATION_THEME_NOT_FOUND(f"no theme {theme_id} of {origin_node} here")
    return row


async def get_theme(*, session: AsyncSession, q: f.RemoteQuery, node: str) -> f.RemoteTheme:
    row = await _theme_row(session, q.origin_node, q.id, node)
    return _theme_out(row, node, q.actor, await _followed(session, q.actor, "theme"), await _participating(session))


async def list_cases(*, session: AsyncSession, q: f.RemoteListQuery, node: str) -> f.RemoteCaseList:
    stmt = _visible(remote_cases, node).order_by(remote_cases.c.published_at.desc())
    if q.origin_node:
        stmt = stmt.where(remote_cases.c.origin_node == q.origin_node)
    followed = await _followed(session, q.actor, "case")
    return f.RemoteCaseList(cases=[_case_out(r, followed) for r in await session.execute(stmt)
                                   if q.field is None or q.field in (r.fields or [])])


async def _case_row(session: AsyncSession, origin_node: str, case_id: str, node: str) -> Any:
    row = (await session.execute(_visible(remote_cases, node).where(
        remote_cases.c.origin_node == origin_node, remote_cases.c.id == case_id))).first()
    if row is None:
        raise c.FEDERATION_CASE_NOT_FOUND(f"no case {case_id} of {origin_node} here")
    return row


async def _local_case(session: AsyncSession, case_id: str, node: str, public_url: str) -> Any:
    """This node's own published case (phase 4, services.projects.outcomes) shaped like a copy: staff start themes
    from their own town's cases too."""
    case = await outcomes.get_case(session=session, q=p.CaseQuery(case_id=case_id))
    if case.published is None:
        raise c.CASE_NOT_FOUND(f"no published case {case_id}")
    return SimpleNamespace(**case.published.model_dump(), entity_id=public_url, received_at=case.published.published_at)


async def get_case(*, session: AsyncSession, q: f.RemoteQuery, node: str, public_url: str = "") -> f.RemoteCase:
    if q.origin_node == node:
        row = await _local_case(session, q.id, node, public_url)
    else:
        row = await _case_row(session, q.origin_node, q.id, node)
    return _case_out(row, await _followed(session, q.actor, "case"))


# ---- follows ------------------------------------------------------------------------------------------------------


async def theme_audience(session: AsyncSession, *, q: nc.ThemeAudienceQuery) -> nc.Audience:
    """The handles of a theme's followers, for the notices service sending a notice to them (nothing else)."""
    handles = (await session.execute(select(follows.c.global_handle).where(
        follows.c.kind == "theme", follows.c.origin_node == q.origin_node, follows.c.item_id == q.theme_id)
        .order_by(follows.c.global_handle).limit(nc.AUDIENCE_MAX))).scalars().all()
    return nc.Audience(handles=list(handles), known=bool(handles))



async def _item(session: AsyncSession, kind: str, origin_node: str, item_id: str, node: str) -> Any:
    if kind == "theme":
        return await _theme_row(session, origin_node, item_id, node)
    return await _case_row(session, origin_node, item_id, node)


def _followed_out(kind: str, f_row: Any, item: Any, following: bool = True) -> f.Followed:
    phase = getattr(item, "phase", None) if kind == "theme" else None
    return f.Followed(
        kind=kind, origin_node=f_row.origin_node, id=f_row.item_id, title=item.title,
        followed_at=aware(f_row.followed_at), seen_at=aware(f_row.seen_at), seen_version=f_row.seen_version,
        seen_phase=f_row.seen_phase, version=item.version, phase=phase, changed=item.version > f_row.seen_version,
        phase_changed=phase is not None and f_row.seen_phase is not None and phase != f_row.seen_phase,
        following=following)


async def follow(*, session: AsyncSession, data: f.FollowIn, node: str, now: datetime) -> f.Followed:
    """Follow a theme or case of another node; following it again records that the person looked at it now."""
    item = await _item(session, data.kind, data.origin_node, data.id, node)
    key = (follows.c.global_handle == data.actor.global_handle, follows.c.kind == data.kind,
           follows.c.origin_node == data.origin_node, follows.c.item_id == data.id)
    phase = item.phase if data.kind == "theme" else None
    values = {"seen_at": now, "seen_version": item.version, "seen_phase": phase}
    if (await session.execute(select(follows.c.kind).where(*key))).first() is None:
        await session.execute(insert(follows).values(
            global_handle=data.actor.global_handle, kind=data.kind, origin_node=data.origin_node, item_id=data.id,
            followed_at=now, **values))
    else:
        await session.execute(update(follows).where(*key).values(**values))
    f_row = (await session.execute(select(follows).where(*key))).one()
    return _followed_out(data.kind, f_row, item)


async def unfollow(*, session: AsyncSession, data: f.FollowIn, node: str, now: datetime) -> f.Followed:
    key = (follows.c.global_handle == data.actor.global_handle, follows.c.kind == data.kind,
           follows.c.origin_node == data.origin_node, follows.c.item_id == data.id)
    f_row = (await session.execute(select(follows).where(*key))).first()
    if f_row is None:
        raise c.FEDERATION_NOT_FOLLOWING("you do not follow it")
    item = await _item(session, data.kind, data.origin_node, data.id, node)
    await session.execute(delete(follows).where(*key))
    return _followed_out(data.kind, f_row, item, following=False)


async def following(*, session: AsyncSession, q: f.FollowingQuery, node: str) -> f.FollowingList:
    """The person's followed themes and cases, newest version first among the changed; a removed node's items are
    left out (hidden like everywhere)."""
    rows = list(await session.execute(select(follows).where(follows.c.global_handle == q.actor.global_handle)
                                      .order_by(follows.c.followed_at)))
    items: list[f.Followed] = []
    for r in rows:
        try:
            item = await _item(session, r.kind, r.origin_node, r.item_id, node)
        except errors.NotFound:
            continue
        items.append(_followed_out(r.kind, r, item))
    items.sort(key=lambda x: (not (x.changed or x.phase_changed),))
    return f.FollowingList(items=items)


async def followers(*, session: AsyncSession, q: f.FollowersQuery, node: str) -> f.Followers:
    """Who follows one theme or case (for the notices service of this node only: the handles stay at the node)."""
    handles = list((await session.execute(select(follows.c.global_handle).where(
        follows.c.kind == q.kind, follows.c.origin_node == q.origin_node, follows.c.item_id == q.id)
        .order_by(follows.c.global_handle))).scalars())
    try:
        title = (await _item(session, q.kind, q.origin_node, q.id, node)).title if handles else ""
    except errors.NotFound:
        title = ""
    return f.Followers(title=title, handles=handles)


# ---- 横展開: a theme started from a case ---------------------------------------------------------------------------


async def adopt(*, session: AsyncSession, data: f.CaseAdopt, node: str, now: datetime) -> c.Theme:
    if data.case_origin_node == node:
        row = await _local_case(session, data.case_id, node, "")
    else:
        row = await _case_row(session, data.case_origin_node, data.case_id, node)
    origin = {"origin_node": row.origin_node, "case_id": row.id, "title": row.title}
    create = c.ThemeCreate.model_validate(data.model_dump(exclude={"case_origin_node", "case_id"}))
    return await theme_domain.create_theme(session=session, data=create, node=node, now=now, origin_case=origin)


# ---- 広域連携: wide-area themes -------------------------------------------------------------------------------------


async def set_wide_area(*, session: AsyncSession, data: f.WideAreaSet, node: str, now: datetime) -> c.Theme:
    row = await theme_domain._managed_row(session, data.theme_id, data.actor)
    if row.status != "published":
        raise c.FEDERATION_THEME_UNPUBLISHED("publish the theme first: other municipalities see published themes only")
    active = await _active(session)
    bad = sorted({n for n in data.invite if n == node or n not in active})
    if bad:
        raise c.FEDERATION_UNKNOWN_MEMBER(f"not another member municipality of the federation: {', '.join(bad)}")
    have = set((await session.execute(select(theme_invitations.c.node).where(
        theme_invitations.c.theme_id == row.id))).scalars())
    new = sorted(set(data.invite) - have)
    if not new and row.wide_area:
        return await theme_domain._out(session, row, data.actor)
    if new:
        await session.execute(insert(theme_invitations), [
            {"theme_id": row.id, "node": n, "invited_at": now, "invited_by": data.actor.global_handle} for n in new])
    row = await theme_domain._bump(session, row, now, wide_area=True)
    await audit(session, kind="theme", subject_id=row.id, action="wide_area_invited", actor=data.actor, at=now,
                before={"wide_area": True, "invited_nodes": sorted(have)} if have else {"wide_area": False},
                after={"wide_area": True, "invited_nodes": sorted(have | set(new))}, note=data.note)
    await announce(session, bus, node=node, at=now, event=await theme_domain.public_event(session, row, c.ThemeChanged))
    return await theme_domain._out(session, row, data.actor)


async def participate(*, session: AsyncSession, data: f.ParticipationDeclare, node: str, now: datetime
                      ) -> f.RemoteTheme:
    if not data.actor.has("staff", "secretariat"):
        raise c.FEDERATION_STAFF_ONLY("participation is declared by the municipality's staff or the secretariat")
    row = await _theme_row(session, data.origin_node, data.theme_id, node)
    if not row.wide_area or node not in (row.invited_nodes or []):
        raise c.FEDERATION_NOT_INVITED(f"{data.origin_node} did not invite this municipality ({node}) to the theme")
    key = (participations.c.origin_node == data.origin_node, participations.c.theme_id == data.theme_id)
    if (await session.execute(select(participations.c.theme_id).where(*key))).first() is not None:
        raise c.FEDERATION_ALREADY_PARTICIPATING("this municipality already declared its participation")
    await session.execute(insert(participations).values(
        origin_node=data.origin_node, theme_id=data.theme_id, declared_at=now, declared_by=data.actor.global_handle,
        note=data.note))
    await audit(session, kind="federation", subject_id=data.theme_id, action="participation_declared",
                actor=data.actor, at=now, after={"theme_origin_node": data.origin_node, "title": row.title},
                note=data.note)
    await announce(session, bus, node=node, at=now, event=f.WideAreaParticipationDeclared(
        theme_id=data.theme_id, theme_origin_node=data.origin_node, origin_node=node, note=data.note,
        declared_at=now))
    return _theme_out(row, node, data.actor, await _followed(session, data.actor, "theme"),
                      await _participating(session))
