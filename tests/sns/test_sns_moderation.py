"""Moderation in the sns service over a real nats-server, on SQLite and PostgreSQL: reports (one open per reporter
and thing), the staff's queue and decisions (hide, warn, suspend, dismiss; a reason each time, kept with who and
when), ModerationDecided for the notices service, one appeal per decision and the staff's answer, blocked peer
nodes. Each refusal (a report twice, moderation by someone not staff, an appeal twice, …) changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.sns.app import SnsService
from services.sns.models import blocked_nodes, moderation_actions, reports
from tests.sns.test_sns_service import AKI, HANAKO, JIRO, NODE, TARO, Node, a
from towntip.kernel import errors
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

STAFF = Actor(user_id="user-staff-001", global_handle=f"staff@{NODE}", display_name="職員 一郎", roles=("staff",))


class ModNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        out = await super().snapshot()
        async with self.svc.sessions() as s:
            for table in (reports, moderation_actions, blocked_nodes):
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
        return out

    async def report(self, who: Actor, kind: str, target: Any, reason: str = "harassment", detail: str = ""
                     ) -> dict[str, Any]:
        return await self.call(c.EP_REPORT_CREATE, {"actor": a(who), "kind": kind, "target": str(target),
                                                    "reason": reason, "detail": detail})


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[ModNode]:
    url, schema = database
    settings = ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "")
    svc = SnsService(settings)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield ModNode(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_report_queue_decide_appeal_and_block(node: ModNode) -> None:
    cid = (await node.open(HANAKO, "まちの掲示板", ["npo-1"]))["id"]
    await node.join(TARO, cid)
    await node.join(AKI, cid)
    post = await node.post(TARO, cid, "売ります", "安いです")
    comment = await node.call(c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": post["id"], "body": "ひどい言葉"})

    # Reports: a comment, a post, a person; the same reporter twice on one thing is refused.
    rc = await node.report(HANAKO, "comment", comment["id"], detail="言葉がきつい")
    assert (rc["status"], rc["author"], rc["text"]) == ("open", TARO.global_handle, "ひどい言葉")
    await node.refused(errors.Conflict, c.EP_REPORT_CREATE, {"actor": a(HANAKO), "kind": "comment",
                                                             "target": str(comment["id"]), "reason": "spam"},
                       match="already")
    await node.report(AKI, "comment", comment["id"], "spam")  # someone else may
    rp = await node.report(HANAKO, "post", post["id"], "spam")
    rperson = await node.report(HANAKO, "person", TARO.global_handle, "harassment")
    for bad in ({"kind": "post", "target": "999999"}, {"kind": "person", "target": f"nobody@{NODE}"}):
        await node.refused(errors.NotFound, c.EP_REPORT_CREATE, {"actor": a(JIRO), "reason": "spam", **bad})
    await node.refused(errors.BadRequest, c.EP_REPORT_CREATE, {"actor": a(TARO), "kind": "post",
                                                               "target": str(post["id"]), "reason": "spam"})
    await node.refused(errors.BadRequest, c.EP_REPORT_CREATE, {"actor": a(JIRO), "kind": "post",
                                                               "target": str(post["id"]), "reason": "boring"})

    # Only staff see the queue and decide; a reason every time; bad actions refused.
    await node.refused(errors.Forbidden, c.EP_MODERATION_QUEUE, {"actor": a(HANAKO)})
    decide = {"actor": a(STAFF), "report_id": rc["id"], "action": "hide", "reason": "誹謗中傷にあたるため"}
    await node.refused(errors.Forbidden, c.EP_MODERATION_DECIDE, {**decide, "actor": a(HANAKO)})
    await node.refused(errors.BadRequest, c.EP_MODERATION_DECIDE, {**decide, "reason": ""})
    await node.refused(errors.BadRequest, c.EP_MODERATION_DECIDE, {**decide, "action": "suspend"})
    await node.refused(errors.BadRequest, c.EP_MODERATION_DECIDE, {**decide, "report_id": rperson["id"]})
    queue = await node.call(c.EP_MODERATION_QUEUE, {"actor": a(STAFF)})
    assert [r["id"] for r in queue["reports"]][:1] == [rc["id"]] and len(queue["reports"]) == 4

    # Hide the comment: both reports on it are answered; the reason kept with who and when.
    done = await node.call(c.EP_MODERATION_DECIDE, decide)
    assert (done["status"], done["decision"], done["decided_by"]) == ("closed", "hide", STAFF.global_handle)
    detail = await node.call(c.EP_POST_GET, {"post_id": post["id"], "actor": a(JIRO)})
    assert detail["comments"][0]["hidden"]["by_staff"] and detail["comments"][0]["body"] == ""
    assert len((await node.call(c.EP_MODERATION_QUEUE, {"actor": a(STAFF)}))["reports"]) == 2
    await node.refused(errors.NotFound, c.EP_MODERATION_DECIDE, decide)  # decided already
    # Dismiss the post's report; suspend the person for 7 days.
    await node.call(c.EP_MODERATION_DECIDE, {**decide, "report_id": rp["id"], "action": "dismiss",
                                             "reason": "問題なし"})
    await node.call(c.EP_MODERATION_DECIDE, {**decide, "report_id": rperson["id"], "action": "suspend",
                                             "days": 7, "reason": "繰り返しの迷惑行為"})
    await node.refused(errors.Forbidden, c.EP_POST_CREATE, {"actor": a(TARO), "community_id": cid, "title": "t",
                                                            "body": "b"}, match="suspended")
    await node.refused(errors.Forbidden, c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": post["id"],
                                                               "body": "b"}, match="suspended")
    told = [(e["data"]["person"], e["data"]["action"]) for s, e in await node.events()
            if e["type"] == "ModerationDecided"]
    assert told == [(TARO.global_handle, "hide"), (TARO.global_handle, "suspend")]

    # Taro sees the decisions about him and appeals the suspension once; only staff answer it.
    mine = (await node.call(c.EP_MODERATION_MINE, {"actor": a(TARO)}))["actions"]
    assert [(x["action"], x["reason"]) for x in mine] == [("suspend", "繰り返しの迷惑行為"),
                                                          ("hide", "誹謗中傷にあたるため")]
    assert (await node.call(c.EP_MODERATION_MINE, {"actor": a(HANAKO)}))["actions"] == []
    sid = mine[0]["id"]
    await node.refused(errors.NotFound, c.EP_MODERATION_APPEAL, {"actor": a(HANAKO), "action_id": sid, "text": "x"})
    await node.refused(errors.Conflict, c.EP_MODERATION_APPEAL_DECIDE, {
        "actor": a(STAFF), "action_id": sid, "decision": "lift", "reason": "r"})  # nothing appealed yet
    appealed = await node.call(c.EP_MODERATION_APPEAL, {"actor": a(TARO), "action_id": sid, "text": "反省しています"})
    assert appealed["appeal"] == "反省しています" and appealed["appealed_at"]
    await node.refused(errors.Conflict, c.EP_MODERATION_APPEAL, {"actor": a(TARO), "action_id": sid, "text": "再度"})
    assert [x["id"] for x in (await node.call(c.EP_MODERATION_QUEUE, {"actor": a(STAFF)}))["appeals"]] == [sid]
    lift = {"actor": a(STAFF), "action_id": sid, "decision": "lift", "reason": "初回のため解除"}
    await node.refused(errors.Forbidden, c.EP_MODERATION_APPEAL_DECIDE, {**lift, "actor": a(TARO)})
    lifted = await node.call(c.EP_MODERATION_APPEAL_DECIDE, lift)
    assert (lifted["appeal_decision"], lifted["appeal_decided_by"]) == ("lift", STAFF.global_handle)
    await node.refused(errors.Conflict, c.EP_MODERATION_APPEAL_DECIDE, lift)  # decided already
    assert (await node.post(TARO, cid, "再開", "よろしく"))["title"] == "再開"  # may post again

    # The leader's hiding keeps working beside the staff's.
    again = await node.post(TARO, cid, "二度目", "本文")
    hidden = await node.call(c.EP_POST_HIDE, {"actor": a(HANAKO), "id": again["id"], "reason": "重複"})
    assert hidden["hidden"]["reason"] == "重複" and not hidden["hidden"]["by_staff"]

    # A blocked peer node: its people may not post or comment here; only staff block.
    await node.refused(errors.Forbidden, c.EP_BLOCK_PUT, {"actor": a(HANAKO), "node": "suginami", "reason": "r"})
    await node.refused(errors.BadRequest, c.EP_BLOCK_PUT, {"actor": a(STAFF), "node": NODE, "reason": "r"})
    blocks = await node.call(c.EP_BLOCK_PUT, {"actor": a(STAFF), "node": "suginami", "reason": "スパムが続いたため"})
    assert [b["node"] for b in blocks["blocks"]] == ["suginami"]
    await node.refused(errors.Forbidden, c.EP_POST_CREATE, {"actor": a(AKI), "community_id": cid, "title": "t",
                                                            "body": "b"}, match="no posts from suginami")
    await node.call(c.EP_BLOCK_REMOVE, {"actor": a(STAFF), "node": "suginami"})
    assert (await node.post(AKI, cid, "こんにちは", "杉並から"))["title"] == "こんにちは"


async def test_the_same_report_sent_at_once_is_stored_once(node: ModNode) -> None:
    cid = (await node.open(HANAKO, "同時の会", ["npo-1"]))["id"]
    post = await node.post(HANAKO, cid, "告知", "本文")
    payload = {"actor": a(TARO), "kind": "post", "target": str(post["id"]), "reason": "spam", "detail": ""}
    got = await asyncio.gather(*(node.call(c.EP_REPORT_CREATE, payload) for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(g, dict) for g in got) == 1
    assert all(isinstance(g, errors.Conflict) and g.error_code == c.REPORT_ALREADY_OPEN.code
               for g in got if not isinstance(g, dict)), got
    assert len((await node.snapshot())["reports"]) == 1
