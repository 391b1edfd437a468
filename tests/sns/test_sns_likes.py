"""共感 (likes) on posts and comments in the sns service, over a real nats-server on SQLite and PostgreSQL: one per
person per item, given twice or withdrawn twice changes nothing, never to one's own, counts on posts and comments,
what a person received (the notebook's 共感). Every refusal is checked to change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.sns.app import SnsService
from services.sns.models import likes
from tests.sns.test_sns_service import HANAKO, JIRO, NODE, TABLES, TARO, Node, a
from towntip.kernel import errors
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import sns as c
from towntip.kernel.settings import ServiceSettings


class LikesNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        out = await super().snapshot()
        async with self.svc.sessions() as s:
            out["likes"] = sorted(repr(tuple(r)) for r in await s.execute(select(likes)))
        return out

    async def like(self, who: Any, kind: str, item: int, endpoint: str = lk.EP_LIKE_GIVE) -> dict[str, Any]:
        return await self.call(endpoint, {"actor": a(who), "kind": kind, "id": str(item)})

    async def received(self, who: Any) -> int:
        return (await self.call(lk.EP_LIKES_RECEIVED, {"global_handle": who.global_handle}))["likes"]


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[LikesNode]:
    url, schema = database
    settings = ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "")
    svc = SnsService(settings)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield LikesNode(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_likes_on_posts_and_comments_once_per_person_never_ones_own(node: LikesNode) -> None:
    assert TABLES  # the service test's tables, with likes added by the snapshot above
    cid = (await node.open(HANAKO, "みどりの会", ["npo-7"]))["id"]
    await node.join(TARO, cid)
    post = await node.post(HANAKO, cid, "花壇", "植えました")
    comment = await node.call(c.EP_COMMENT_CREATE, {"actor": a(TARO), "post_id": post["id"], "body": "いいですね"})

    given = await node.like(TARO, "post", post["id"])
    assert given == {"kind": "post", "id": str(post["id"]), "likes": 1, "liked": True}
    # Again: idempotent, nothing added.
    before = await node.snapshot()
    assert await node.like(TARO, "post", post["id"]) == given
    after = await node.snapshot()
    assert (after["likes"], after["outbox"]) == (before["likes"], before["outbox"])  # (people: seen again)
    # A non-member signed in may give 共感 too (reading is public).
    assert (await node.like(JIRO, "post", post["id"]))["likes"] == 2
    assert (await node.like(HANAKO, "comment", comment["id"]))["likes"] == 1

    # The counts show on the post, the list and the comments, with `liked` for the reader.
    detail = await node.call(c.EP_POST_GET, {"post_id": post["id"], "actor": a(TARO)})
    assert (detail["post"]["likes"], detail["post"]["liked"]) == (2, True)
    assert (detail["comments"][0]["likes"], detail["comments"][0]["liked"]) == (1, False)
    listed = await node.call(c.EP_POST_LIST, {"community_id": cid, "actor": a(HANAKO)})
    assert (listed["posts"][0]["likes"], listed["posts"][0]["liked"]) == (2, False)
    counts = await node.call(lk.EP_LIKE_COUNTS, {"kind": "post", "ids": [str(post["id"]), "999"], "actor": a(JIRO)})
    assert [(x["likes"], x["liked"]) for x in counts["items"]] == [(2, True), (0, False)]

    # What each received: hanako's post twice, taro's comment once.
    assert (await node.received(HANAKO), await node.received(TARO), await node.received(JIRO)) == (2, 1, 0)

    # Refusals change nothing: one's own, unknown items, a bad kind, no actor.
    await node.refused(errors.Conflict, lk.EP_LIKE_GIVE, {"actor": a(HANAKO), "kind": "post", "id": str(post["id"])},
                       match="yourself")
    await node.refused(errors.Conflict, lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "comment",
                                                          "id": str(comment["id"])}, match="yourself")
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "post", "id": "424242"})
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "theme",
                                                          "id": str(post["id"])})
    await node.refused(errors.BadRequest, lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "photo", "id": "1"})
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": a(TARO), "kind": "blog", "id": "1"})  # none yet
    await node.refused(errors.BadRequest, lk.EP_LIKE_GIVE, {"kind": "post", "id": str(post["id"])})

    # Withdrawn, and again: the second changes nothing.
    assert (await node.like(JIRO, "post", post["id"], lk.EP_LIKE_WITHDRAW))["likes"] == 1
    before = await node.snapshot()
    assert (await node.like(JIRO, "post", post["id"], lk.EP_LIKE_WITHDRAW)) == {
        "kind": "post", "id": str(post["id"]), "likes": 1, "liked": False}
    assert (await node.snapshot())["likes"] == before["likes"]
    assert await node.received(HANAKO) == 1

    # A hidden comment takes no 共感; a deleted post takes its 共感 (and its comments') with it.
    await node.call(c.EP_COMMENT_HIDE, {"actor": a(HANAKO), "id": comment["id"], "reason": "話題外"})
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": a(JIRO), "kind": "comment",
                                                          "id": str(comment["id"])})
    await node.call(c.EP_POST_DELETE, {"actor": a(HANAKO), "id": post["id"]})
    assert (await node.snapshot())["likes"] == []
    assert (await node.received(HANAKO), await node.received(TARO)) == (0, 0)
