"""Direct messages (ダイレクト・メッセージ) in the sns service over a real nats-server, on SQLite and PostgreSQL: send,
the list of conversations and a thread (newest first, keyset cursors), read marks and unread counts, block (a
refusal that stores nothing) and mute, the rate limit, a person of another node logged in here, staff who cannot
read, and a deleted account's conversations going. Every refusal is checked to change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.sns.app import SnsService
from services.sns.models import conversation_members, conversations, message_peers, messages, people
from tests.sns.test_sns_service import AKI, HANAKO, JIRO, NODE, TABLES, TARO, Node, a, announce_deleted
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.contracts import mypage as mp
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

STAFF = Actor(user_id="user-staff-001", global_handle=f"staff@{NODE}", display_name="職員 一郎", roles=("staff",))
DM_TABLES = (conversations, conversation_members, messages, message_peers)


class MessagesNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        out = await super().snapshot()
        async with self.svc.sessions() as s:
            for table in DM_TABLES:
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
        return out

    async def send(self, who: Actor, to: Actor, body: str) -> dict[str, Any]:
        return await self.call(c.EP_MESSAGE_SEND, {"actor": a(who), "to": to.global_handle,
                                                   "to_name": to.display_name, "body": body})

    async def inbox(self, who: Actor, **kw: Any) -> dict[str, Any]:
        return await self.call(c.EP_MESSAGE_CONVERSATIONS, {"actor": a(who), **kw})

    async def thread(self, who: Actor, peer: Actor, **kw: Any) -> dict[str, Any]:
        return await self.call(c.EP_MESSAGE_THREAD, {"actor": a(who), "peer": peer.global_handle, **kw})

    async def unread(self, who: Actor) -> int:
        return (await self.call(c.EP_MESSAGE_UNREAD, {"actor": a(who)}))["unread"]

    async def peer(self, who: Actor, peer: Actor, **kw: bool) -> dict[str, Any]:
        return await self.call(c.EP_MESSAGE_PEER, {"actor": a(who), "peer": peer.global_handle, **kw})


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def node(nats_server, database, tmp_path, clock) -> AsyncIterator[MessagesNode]:
    url, schema = database
    settings = ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "")
    svc = SnsService(settings, clock=clock)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield MessagesNode(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_send_list_read_marks_and_unread_counts(node: MessagesNode, clock: Clock) -> None:
    assert TABLES
    first = await node.send(HANAKO, TARO, "  こんにちは  ")
    assert (first["body"], first["sender"], first["mine"]) == ("こんにちは", HANAKO.global_handle, True)
    for i in range(4):
        clock.now += timedelta(seconds=1)
        await node.send(TARO, HANAKO, f"返事 {i}")
    await node.send(JIRO, HANAKO, "次郎です")

    # Hanako: two conversations, newest first, with their unread counts and the total.
    box = await node.inbox(HANAKO)
    assert [(x["peer"]["global_handle"], x["unread"], x["preview"]) for x in box["conversations"]] == [
        (JIRO.global_handle, 1, "次郎です"), (TARO.global_handle, 4, "返事 3")]
    assert box["unread_total"] == 5 and await node.unread(HANAKO) == 5
    summary = await node.call(mp.EP_PERSON_SUMMARY, {"person": HANAKO.user_id})  # My Page's sns part
    assert summary["unread_messages"] == 5
    assert box["conversations"][1]["peer"]["display_name"] == TARO.display_name
    # Taro answered after her message: what one sends, one has read (up to it).
    assert (await node.inbox(TARO))["unread_total"] == 0
    # Keyset paging: one a page.
    page1 = await node.inbox(HANAKO, limit=1)
    page2 = await node.inbox(HANAKO, limit=1, before=page1["next"])
    assert [x["peer"]["global_handle"] for x in page1["conversations"] + page2["conversations"]] == [
        JIRO.global_handle, TARO.global_handle] and page2["next"] is None

    # The thread: newest first, paged by message id.
    t1 = await node.thread(HANAKO, TARO, limit=3)
    assert [m["body"] for m in t1["messages"]] == ["返事 3", "返事 2", "返事 1"] and t1["unread"] == 4
    t2 = await node.thread(HANAKO, TARO, limit=3, before=t1["next"])
    assert [(m["body"], m["mine"]) for m in t2["messages"]] == [("返事 0", False), ("こんにちは", True)]
    assert t2["next"] is None

    # Read up to the second reply: two remain; marks never go back.
    mark = await node.call(c.EP_MESSAGE_READ, {"actor": a(HANAKO), "peer": TARO.global_handle,
                                               "upto": t1["messages"][2]["id"]})
    assert mark["unread"] == 1 + 2
    back = await node.call(c.EP_MESSAGE_READ, {"actor": a(HANAKO), "peer": TARO.global_handle,
                                               "upto": first["id"]})
    assert back["unread"] == 3
    await node.call(c.EP_MESSAGE_READ, {"actor": a(HANAKO), "peer": TARO.global_handle,
                                        "upto": t1["messages"][0]["id"]})
    assert await node.unread(HANAKO) == 1

    # Bad input: refused, nothing stored.
    for bad in ("", "   ", "x" * (c.MESSAGE_MAX + 1)):
        await node.refused(errors.BadRequest, c.EP_MESSAGE_SEND, {
            "actor": a(HANAKO), "to": TARO.global_handle, "to_name": "太郎", "body": bad})
    await node.refused(errors.BadRequest, c.EP_MESSAGE_SEND, {"actor": a(HANAKO), "to": "not a handle",
                                                              "to_name": "x", "body": "hi"})
    await node.refused(errors.BadRequest, c.EP_MESSAGE_SEND, {"actor": a(HANAKO), "to": HANAKO.global_handle,
                                                              "to_name": "花子", "body": "me"}, match="yourself")
    assert len((await node.send(HANAKO, TARO, "x" * c.MESSAGE_MAX))["body"]) == c.MESSAGE_MAX


async def test_block_refuses_and_stores_nothing_mute_keeps_messages_without_counts(node: MessagesNode,
                                                                                   clock: Clock) -> None:
    await node.send(TARO, HANAKO, "はじめまして")
    assert await node.peer(HANAKO, TARO, blocked=True) == {"peer": TARO.global_handle, "blocked": True,
                                                           "muted": False}
    # Taro cannot message her: refused, nothing stored (not even his people row's seen time).
    clock.now += timedelta(seconds=5)
    reason = await node.refused(errors.Forbidden, c.EP_MESSAGE_SEND, {
        "actor": a(TARO), "to": HANAKO.global_handle, "to_name": HANAKO.display_name, "body": "もう一度"})
    assert "does not take messages" in reason
    # She cannot message him while she blocks him either (she unblocks first).
    await node.refused(errors.Conflict, c.EP_MESSAGE_SEND, {
        "actor": a(HANAKO), "to": TARO.global_handle, "to_name": TARO.display_name, "body": "やっぱり"},
        match="unblock")
    assert (await node.thread(HANAKO, TARO))["state"]["blocked"] is True
    await node.peer(HANAKO, TARO, blocked=False)
    await node.send(TARO, HANAKO, "届きますか")
    assert [m["body"] for m in (await node.thread(HANAKO, TARO))["messages"]] == ["届きますか", "はじめまして"]
    await node.refused(errors.BadRequest, c.EP_MESSAGE_PEER, {"actor": a(HANAKO), "peer": HANAKO.global_handle,
                                                              "blocked": True})

    # Mute: messages still arrive, no unread count for that conversation, the total leaves it out.
    await node.send(JIRO, HANAKO, "次郎です")
    assert await node.unread(HANAKO) == 3
    await node.peer(HANAKO, TARO, muted=True)
    await node.send(TARO, HANAKO, "ミュート中")
    box = await node.inbox(HANAKO)
    by = {x["peer"]["global_handle"]: x for x in box["conversations"]}
    assert (by[TARO.global_handle]["unread"], by[TARO.global_handle]["muted"]) == (0, True)
    assert by[TARO.global_handle]["preview"] == "ミュート中"
    assert box["unread_total"] == 1 and await node.unread(HANAKO) == 1
    await node.peer(HANAKO, TARO, muted=False)
    assert await node.unread(HANAKO) == 4
    async with node.svc.sessions() as s:
        assert (await s.execute(select(message_peers))).all() == []  # nothing chosen: no row kept


async def test_at_most_twenty_messages_a_minute(node: MessagesNode, clock: Clock) -> None:
    for i in range(c.MESSAGES_PER_MINUTE):
        await node.send(TARO, HANAKO if i % 2 else JIRO, f"{i}")
    await node.refused(errors.TooManyRequests, c.EP_MESSAGE_SEND, {
        "actor": a(TARO), "to": HANAKO.global_handle, "to_name": "花子", "body": "もう一通"}, match="a minute")
    await node.send(HANAKO, TARO, "わたしは送れます")  # the limit is per sender
    clock.now += timedelta(minutes=1, seconds=1)
    assert (await node.send(TARO, HANAKO, "一分後"))["body"] == "一分後"


async def test_a_person_of_another_node_messages_here_and_staff_read_nothing(node: MessagesNode) -> None:
    await node.send(AKI, HANAKO, "杉並から")
    await node.send(HANAKO, AKI, "ようこそ")
    assert [m["body"] for m in (await node.thread(AKI, HANAKO))["messages"]] == ["ようこそ", "杉並から"]
    box = await node.inbox(HANAKO)
    assert box["conversations"][0]["peer"] == {"global_handle": "aki@suginami", "display_name": AKI.display_name}
    assert await node.unread(AKI) == 1

    # A peer node blocked here by staff: its people write no messages either (and nothing is stored).
    await node.call(c.EP_BLOCK_PUT, {"actor": a(STAFF), "node": "suginami", "reason": "spam"})
    await node.refused(errors.Forbidden, c.EP_MESSAGE_SEND, {
        "actor": a(AKI), "to": HANAKO.global_handle, "to_name": HANAKO.display_name, "body": "まだ？"})
    await node.call(c.EP_BLOCK_REMOVE, {"actor": a(STAFF), "node": "suginami"})

    # Staff: their own conversations only, like anyone; no endpoint answers another's messages.
    assert (await node.inbox(STAFF))["conversations"] == []
    assert (await node.thread(STAFF, HANAKO))["messages"] == []
    assert (await node.thread(JIRO, AKI))["messages"] == []
    queue = await node.call(c.EP_MODERATION_QUEUE, {"actor": a(STAFF)})
    assert "杉並から" not in repr(queue) and "ようこそ" not in repr(queue)
    # Nor can a request name someone else: the actor is who asks, and extra fields are refused.
    await node.refused(errors.BadRequest, c.EP_MESSAGE_THREAD, {"actor": a(STAFF), "peer": HANAKO.global_handle,
                                                                "owner": AKI.global_handle})


async def test_a_deleted_account_takes_its_conversations_with_it(node: MessagesNode) -> None:
    await node.send(HANAKO, TARO, "花子から")
    await node.send(TARO, HANAKO, "太郎から")
    await node.send(TARO, JIRO, "次郎へ")
    await node.peer(JIRO, HANAKO, muted=True)
    await node.peer(HANAKO, JIRO, blocked=True)

    await announce_deleted(node, HANAKO.global_handle)

    async def gone() -> bool:
        async with node.svc.sessions() as s:
            return (await s.execute(select(people).where(people.c.global_handle == HANAKO.global_handle))
                    ).first() is None
    await wait_for(gone, "the deleted person to be forgotten")
    assert [x["peer"]["global_handle"] for x in (await node.inbox(TARO))["conversations"]] == [JIRO.global_handle]
    assert (await node.thread(TARO, HANAKO))["messages"] == []
    async with node.svc.sessions() as s:
        bodies = [r.body for r in await s.execute(select(messages))]
        assert bodies == ["次郎へ"]
        assert (await s.execute(select(message_peers))).all() == []
        assert len((await s.execute(select(conversations))).all()) == 1


async def test_crossed_first_messages_at_once_make_one_conversation(node: MessagesNode) -> None:
    await asyncio.gather(*(node.send(*((TARO, JIRO) if i % 2 else (JIRO, TARO)), f"{i}") for i in range(10)))
    async with node.svc.sessions() as s:
        assert len((await s.execute(select(conversations))).all()) == 1
        assert len((await s.execute(select(conversation_members))).all()) == 2
        assert len((await s.execute(select(messages))).all()) == 10
    assert len((await node.thread(TARO, JIRO, limit=50))["messages"]) == 10
