"""リーダーの用事 over a real nats-server, on SQLite and PostgreSQL: `leaders.todo` counts, in each open community the
person leads, the members who joined and the posts and comments others wrote within LEADER_WINDOW_DAYS (the
leader's own, hidden ones, older ones and closed communities left out); a person who leads nothing gets an empty
list, and nobody learns another leader's list (the actor is the person asked about)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import nats
import pytest

from services.sns.app import SnsService
from tests.sns.test_sns_service import HANAKO, JIRO, NODE, TARO, Node, a
from towntip.kernel import errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import sns as c
from towntip.kernel.settings import ServiceSettings


class Clock:
    """The service's clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[tuple[Node, Clock]]:
    url, schema = database
    settings = ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "")
    clock = Clock()
    svc = SnsService(settings, clock=clock)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc), clock
    finally:
        await nc.close()
        await svc.stop()


def counts(todo: dict) -> list[tuple[str, int, int, int, int]]:
    return [(x["name"], x["members"], x["new_members"], x["new_posts"], x["new_comments"])
            for x in todo["communities"]]


async def test_what_waits_for_a_leader(node: tuple[Node, Clock]) -> None:
    n, clock = node
    todo = {"actor": a(HANAKO)}
    assert (await n.call(c.EP_LEADER_TODO, todo))["communities"] == []  # leads nothing yet

    # Last month: a community with a member and a post, all older than the window.
    old = await n.open(HANAKO, "古い会", ["npo-7"])
    quiet = await n.open(HANAKO, "静かな会", ["npo-13"])
    await n.join(TARO, old["id"])
    await n.post(TARO, old["id"], "先月の投稿")
    clock.offset = timedelta(days=c.LEADER_WINDOW_DAYS + 1)

    # This week: JIRO joins and posts twice (one hidden by the leader), TARO comments, the leader writes too.
    await n.join(JIRO, old["id"])
    first = await n.post(JIRO, old["id"], "今週の投稿")
    bad = await n.post(JIRO, old["id"], "宣伝です")
    await n.call(c.EP_POST_HIDE, {"actor": a(HANAKO), "id": bad["id"], "reason": "宣伝のため"})
    await n.call(c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": first["id"], "body": "いいですね"})
    await n.call(c.EP_COMMENT_CREATE, {"actor": a(HANAKO), "post_id": first["id"], "body": "ありがとう"})
    await n.post(HANAKO, old["id"], "リーダーからのお知らせ")
    # A community JIRO leads, closed by him: not on anyone's list.
    closed = await n.open(JIRO, "閉じた会")
    await n.join(HANAKO, closed["id"])
    await n.call(c.EP_COMMUNITY_CLOSE, {"actor": a(JIRO), "community_id": closed["id"]})

    got = await n.call(c.EP_LEADER_TODO, todo)
    # Something new first, then by name; the quiet one is listed with nothing new.
    assert counts(got) == [("古い会", 3, 1, 1, 1), ("静かな会", 1, 0, 0, 0)]
    assert [x["categories"] for x in got["communities"]] == [["npo-7"], ["npo-13"]]
    assert got["communities"][1]["community_id"] == quiet["id"]
    assert (await n.call(c.EP_LEADER_TODO, {"actor": a(TARO)}))["communities"] == []  # a member, not a leader
    assert (await n.call(c.EP_LEADER_TODO, {"actor": a(JIRO)}))["communities"] == []  # his is closed

    # A week later nothing is new any more; handing over moves the list to the new leader.
    clock.offset = timedelta(days=2 * c.LEADER_WINDOW_DAYS + 2)
    assert counts(await n.call(c.EP_LEADER_TODO, todo)) == [("古い会", 3, 0, 0, 0), ("静かな会", 1, 0, 0, 0)]
    await n.call(c.EP_COMMUNITY_HAND_OVER, {"actor": a(HANAKO), "community_id": old["id"],
                                            "member": TARO.global_handle})
    assert [x["name"] for x in (await n.call(c.EP_LEADER_TODO, {"actor": a(TARO)}))["communities"]] == ["古い会"]
    assert counts(await n.call(c.EP_LEADER_TODO, todo)) == [("静かな会", 1, 0, 0, 0)]


async def test_a_bad_question_is_refused(node: tuple[Node, Clock]) -> None:
    n, _ = node
    for bad in ({}, {"actor": a(HANAKO), "global_handle": TARO.global_handle}, {"actor": {"user_id": "x"}}):
        await n.refused(errors.BadRequest, c.EP_LEADER_TODO, bad)
