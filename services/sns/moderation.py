"""Moderation by the node's staff (issue 20 point 4): anyone signed in reports a post, comment or person with a reason
from a list and free text (one open report per reporter and thing: the unique `open_key`); staff work the queue and
decide — hide (a post or comment), warn, suspend for N days (no posts or comments until then) or dismiss — with a
reason every time, kept with who and when; the person concerned is told (ModerationDecided → the notices service)
and may appeal each decision once; staff uphold or lift it (lifting unhides what staff hid and ends a suspension).
A node blocks peer nodes whose people may then not post or comment here. The community leader's own hiding
(services/sns/posts.py) is untouched. Blog entries and their comments (kinds blog and bcomment) are reported by
someone who may see them and hidden by staff alike. No NATS and no commits here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.sns import blog_access as ba
from services.sns.models import (
    blocked_nodes,
    blog_comments,
    blog_entries,
    bus,
    comments,
    moderation_actions,
    people,
    posts,
    reports,
)
from towntip.kernel import db, errors
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor

QUEUE_MAX = 100


def _staff(actor: Actor) -> None:
    if not actor.has("staff"):
        raise c.MODERATION_STAFF_ONLY("only the node's staff moderate / 対応できるのは職員だけです")


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 else None


async def _target(session: AsyncSession, kind: str, target: str) -> tuple[str | None, str, str]:
    """(its author, its text now, the page it is on) of a post, comment or person; REPORT_TARGET_NOT_FOUND."""
    found: Any = None
    if kind == "post" and (n := _id(target)) is not None:
        found = (await session.execute(select(posts).where(posts.c.id == n))).first()
        if found is not None:
            return (found.author, f"{found.title}\n{found.body}",
                    f"/communities/{found.community_id}/posts/{found.id}")
    elif kind == "comment" and (n := _id(target)) is not None:
        found = (await session.execute(select(comments, posts.c.community_id).select_from(
            comments.join(posts, posts.c.id == comments.c.post_id)).where(comments.c.id == n))).first()
        if found is not None:
            return found.author, found.body, f"/communities/{found.community_id}/posts/{found.post_id}"
    elif kind == "blog" and (n := _id(target)) is not None:
        found = (await session.execute(select(blog_entries).where(blog_entries.c.id == n))).first()
        if found is not None:
            return found.author, f"{found.title}\n{found.body}", f"/blogs/{found.id}"
    elif kind == "bcomment" and (n := _id(target)) is not None:
        found = (await session.execute(select(blog_comments).where(blog_comments.c.id == n))).first()
        if found is not None:
            return found.author, found.body, f"/blogs/{found.entry_id}"
    elif kind == "person":
        found = (await session.execute(select(people.c.global_handle).where(people.c.global_handle == target))
                 ).first()
        if found is not None:
            return target, "", ""
    raise c.REPORT_TARGET_NOT_FOUND(f"no {kind} {target!r} here / 見つかりません")


async def create_report(session: AsyncSession, *, data: c.ReportIn, now: datetime) -> c.Report:
    if data.kind in ba.BLOG_KINDS:  # only what the reporter may see: an entry for friends is no one else's to probe
        try:
            await (ba.entry if data.kind == "blog" else ba.comment)(session, data.target, data.actor)
        except errors.NotFound:
            raise c.REPORT_TARGET_NOT_FOUND(f"no {data.kind} {data.target!r} here / 見つかりません") from None
    author, _text, _link = await _target(session, data.kind, data.target)
    me = data.actor.global_handle
    if author == me:
        raise c.REPORT_SELF("you cannot report yourself or what you wrote / ご自身は通報できません")
    rid = str(uuid.uuid4())
    # The unique open key decides, also between two reports sent at the same moment: the second inserts nothing.
    ins = db.insert_on_conflict(session, reports).values(
        id=rid, kind=data.kind, target=data.target, author=author, reporter=me, reason=data.reason,
        detail=data.detail, created_at=now, status="open", open_key=f"{me} {data.kind} {data.target}")
    done = await session.execute(ins.on_conflict_do_nothing(index_elements=["open_key"]))
    if not getattr(done, "rowcount", 0):
        raise c.REPORT_ALREADY_OPEN("you reported this already: staff will look at it / すでに通報済みです")
    return await _report(session, rid)


async def _report(session: AsyncSession, rid: str) -> c.Report:
    row = (await session.execute(select(reports).where(reports.c.id == rid))).one()
    return await _report_out(session, row)


async def _report_out(session: AsyncSession, row: Any) -> c.Report:
    try:
        _author, text, link = await _target(session, row.kind, row.target)
    except errors.ServiceError:  # the item was deleted since: the report stays, its text is gone
        text, link = "", ""
    return c.Report(id=row.id, kind=row.kind, target=row.target, author=row.author, text=text, link=link,
                    reporter=row.reporter or "", reason=row.reason, detail=row.detail,
                    created_at=db.aware(row.created_at),
                    status=row.status, decision=row.decision, decision_reason=row.decision_reason,
                    decided_by=row.decided_by, decided_at=db.aware(row.decided_at))


def _action_out(row: Any) -> c.Action:
    return c.Action(id=row.id, person=row.person, action=row.action, reason=row.reason, kind=row.kind,
                    target=row.target, until=db.aware(row.until), by=row.by, at=db.aware(row.at),
                    appeal=row.appeal, appealed_at=db.aware(row.appealed_at), appeal_decision=row.appeal_decision,
                    appeal_reason=row.appeal_reason, appeal_decided_by=row.appeal_decided_by,
                    appeal_decided_at=db.aware(row.appeal_decided_at))


async def _blocks(session: AsyncSession) -> list[c.Block]:
    rows = await session.execute(select(blocked_nodes).order_by(blocked_nodes.c.node))
    return [c.Block(node=r.node, reason=r.reason, by=r.by, at=db.aware(r.at)) for r in rows]


async def queue(session: AsyncSession, *, data: c.StaffQuery) -> c.ModerationQueue:
    _staff(data.actor)
    rows = (await session.execute(select(reports).where(reports.c.status == "open")
                                  .order_by(reports.c.created_at, reports.c.id).limit(QUEUE_MAX))).all()
    appeals = (await session.execute(select(moderation_actions).where(
        moderation_actions.c.appealed_at.is_not(None), moderation_actions.c.appeal_decision.is_(None))
        .order_by(moderation_actions.c.appealed_at).limit(QUEUE_MAX))).all()
    return c.ModerationQueue(reports=[await _report_out(session, r) for r in rows],
                             appeals=[_action_out(r) for r in appeals], blocks=await _blocks(session))


async def _set_hidden(session: AsyncSession, kind: str, target: str, *, reason: str | None, by: str | None,
                      at: datetime | None, only_by: str | None = None) -> bool:
    """Hide (or, with reason None, unhide what `only_by` hid) a post or comment; False if there is nothing to do."""
    table = {"post": posts, "comment": comments, "blog": blog_entries, "bcomment": blog_comments}[kind]
    n = _id(target)
    if n is None:
        return False
    stmt = update(table).where(table.c.id == n)
    if reason is not None:
        stmt = stmt.where(table.c.hidden_at.is_(None))
    else:
        stmt = stmt.where(table.c.hidden_by == only_by)
    done = await session.execute(stmt.values(hidden_at=at, hidden_reason=reason, hidden_by=by))
    return bool(getattr(done, "rowcount", 0))


async def decide(session: AsyncSession, *, node: str, data: c.DecisionIn, now: datetime) -> c.Report:
    _staff(data.actor)
    row = (await session.execute(select(reports).where(reports.c.id == data.report_id,
                                                       reports.c.status == "open"))).first()
    if row is None:
        raise c.REPORT_NOT_FOUND(f"no open report {data.report_id} / 対応待ちの通報が見つかりません")
    if (data.action == "hide" and row.kind == "person") or (data.action == "suspend") != (data.days is not None):
        raise c.MODERATION_BAD_ACTION("a person is warned or suspended, not hidden; a suspension, and only it, "
                                      "takes its days / 人は非表示にできません。停止には日数が必要です")
    me = data.actor.global_handle
    if data.action != "dismiss":
        author = row.author if row.kind != "person" else row.target
        if author is None:
            raise c.REPORT_TARGET_NOT_FOUND("its author deleted their account / 投稿者は退会しています")
        if data.action == "hide":
            await _target(session, row.kind, row.target)  # still there
            await _set_hidden(session, row.kind, row.target, reason=data.reason, by=me, at=now)
        until = now + timedelta(days=data.days) if data.action == "suspend" and data.days else None
        aid = str(uuid.uuid4())
        await session.execute(moderation_actions.insert().values(
            id=aid, report_id=row.id, person=author, action=data.action, reason=data.reason, kind=row.kind,
            target=row.target, until=until, by=me, at=now))
        await announce(session, bus, node=node, at=now, event=c.ModerationDecided(
            action_id=aid, person=author, action=data.action, reason=data.reason, until=until, at=now))
    # Every open report on the same thing is answered by the one decision.
    await session.execute(update(reports).where(and_(reports.c.kind == row.kind, reports.c.target == row.target,
                                                     reports.c.status == "open")).values(
        status="closed", open_key=None, decision=data.action, decision_reason=data.reason, decided_by=me,
        decided_at=now))
    return await _report(session, row.id)


async def mine(session: AsyncSession, *, data: c.MineQuery) -> c.Actions:
    rows = await session.execute(select(moderation_actions).where(
        moderation_actions.c.person == data.actor.global_handle).order_by(moderation_actions.c.at.desc()))
    return c.Actions(actions=[_action_out(r) for r in rows])


async def _action(session: AsyncSession, action_id: str) -> Any:
    return (await session.execute(select(moderation_actions).where(moderation_actions.c.id == action_id))).first()


async def appeal(session: AsyncSession, *, data: c.AppealIn, now: datetime) -> c.Action:
    row = await _action(session, data.action_id)
    if row is None or row.person != data.actor.global_handle:
        raise c.APPEAL_NOT_FOUND(f"no decision {data.action_id} about you / 該当する対応が見つかりません")
    if row.appealed_at is not None:
        raise c.APPEAL_ALREADY("you appealed this decision already / この対応にはすでに異議を申し立てています")
    await session.execute(update(moderation_actions).where(moderation_actions.c.id == row.id)
                          .values(appeal=data.text, appealed_at=now))
    return _action_out(await _action(session, row.id))


async def decide_appeal(session: AsyncSession, *, node: str, data: c.AppealDecisionIn, now: datetime) -> c.Action:
    _staff(data.actor)
    row = await _action(session, data.action_id)
    if row is None:
        raise c.APPEAL_NOT_FOUND(f"no decision {data.action_id} / 該当する対応が見つかりません")
    if row.appealed_at is None or row.appeal_decision is not None:
        raise c.APPEAL_NONE("no appeal waits on this decision / 判断待ちの異議申し立てはありません")
    values: dict[str, Any] = {"appeal_decision": data.decision, "appeal_reason": data.reason,
                              "appeal_decided_by": data.actor.global_handle, "appeal_decided_at": now}
    if data.decision == "lift":
        if row.action == "hide":
            await _set_hidden(session, row.kind, row.target, reason=None, by=None, at=None, only_by=row.by)
        if row.action == "suspend" and row.until is not None:
            values["until"] = now
    await session.execute(update(moderation_actions).where(moderation_actions.c.id == row.id).values(**values))
    await announce(session, bus, node=node, at=now, event=c.ModerationDecided(
        action_id=row.id, person=row.person, action=data.decision, reason=data.reason, at=now))
    return _action_out(await _action(session, row.id))


async def put_block(session: AsyncSession, *, node: str, data: c.BlockIn, now: datetime) -> c.Blocks:
    _staff(data.actor)
    if data.node == node:
        raise c.MODERATION_BAD_ACTION("a node does not block itself / 自分のノードはブロックできません")
    ins = db.insert_on_conflict(session, blocked_nodes).values(node=data.node, reason=data.reason,
                                                                by=data.actor.global_handle, at=now)
    await session.execute(ins.on_conflict_do_update(index_elements=["node"], set_={
        "reason": data.reason, "by": data.actor.global_handle, "at": now}))
    return c.Blocks(blocks=await _blocks(session))


async def remove_block(session: AsyncSession, *, data: c.BlockRemove) -> c.Blocks:
    _staff(data.actor)
    await session.execute(delete(blocked_nodes).where(blocked_nodes.c.node == data.node))
    return c.Blocks(blocks=await _blocks(session))


async def forget(session: AsyncSession, handle: str) -> None:
    """A deleted account: decisions about them go, their open reports go, closed ones keep no reporter."""
    await session.execute(delete(moderation_actions).where(moderation_actions.c.person == handle))
    await session.execute(delete(reports).where(reports.c.reporter == handle, reports.c.status == "open",
                                                ~reports.c.id.in_(select(moderation_actions.c.report_id))))
    await session.execute(update(reports).where(reports.c.reporter == handle).values(reporter=None))
    await session.execute(update(reports).where(reports.c.author == handle).values(author=None))


async def staff_hidden(session: AsyncSession, kind: str, rows: Sequence[Any]) -> set[int]:
    """The ids of those posts or comments that staff (not the leader) hid: a hide decision by whoever hid them."""
    hidden = {str(r.id): r.hidden_by for r in rows if r.hidden_at is not None}
    if not hidden:
        return set()
    found = await session.execute(select(moderation_actions.c.target, moderation_actions.c.by).where(
        moderation_actions.c.kind == kind, moderation_actions.c.action == "hide",
        moderation_actions.c.target.in_(sorted(hidden))))
    return {int(r.target) for r in found if hidden.get(r.target) == r.by}


async def check_may_write(session: AsyncSession, actor: Actor, now: datetime) -> None:
    """Before a post or comment: the person's home node is not blocked here, and staff have not suspended them."""
    home = actor.global_handle.rsplit("@", 1)[-1]
    if (await session.execute(select(blocked_nodes.c.node).where(blocked_nodes.c.node == home))).first():
        raise c.POST_NODE_BLOCKED(f"this node takes no posts from {home} / このノードでは{home}の方は投稿できません")
    until = (await session.execute(select(moderation_actions.c.until).where(
        moderation_actions.c.person == actor.global_handle, moderation_actions.c.action == "suspend",
        moderation_actions.c.until > now).order_by(moderation_actions.c.until.desc()).limit(1))).scalar()
    if until is not None:
        raise c.POST_SUSPENDED(f"suspended until {db.aware(until).isoformat()} / 投稿は停止されています")
