"""共感 (likes) on published themes and cases in the projects service, over a real nats-server on SQLite and
PostgreSQL: one per person per item (again changes nothing), never to what one made (the theme's maker, the case's
publisher), only on what is published, withdrawn by the giver; what a maker received (the notebook's 共感). Every
refusal changes nothing. The theme and its case come the way tests/projects/test_projects_pilots.py brings them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from services.projects import models
from tests.projects.test_projects_calls import BETA, JIMU, KIKAKU, OTHER, Node, actor, running
from tests.projects.test_projects_pilots import BUDGET, CASE, REPORT, to_phase4
from towntip.kernel import errors
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c


class LikesNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        async with self.svc.sessions() as s:
            return {"likes": sorted(repr(tuple(r)) for r in await s.execute(select(models.likes)))}

    async def like(self, who: Any, kind: str, item: str, endpoint: str = lk.EP_LIKE_GIVE) -> dict[str, Any]:
        return await self.call(endpoint, {"actor": actor(who), "kind": kind, "id": item})

    async def received(self, who: Any) -> int:
        return (await self.call(lk.EP_LIKES_RECEIVED, {"global_handle": who.global_handle}))["likes"]


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[LikesNode]:
    async with running(nats_server, database, tmp_path, LikesNode) as n:
        yield n


async def test_likes_on_published_themes_and_cases(node: LikesNode) -> None:
    tid, _org, _kpi = await to_phase4(node)
    base = {"theme_id": tid}
    draft = {"actor": actor(KIKAKU), **base, **CASE, "draft_revision": 0}
    cid = (await node.call(p.EP_CASE_PUT, draft))["id"]
    # A case not yet published takes no 共感.
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": actor(OTHER), "kind": "case", "id": cid})

    # The theme (made by KIKAKU): others give 共感 once each; its maker may not.
    assert await node.like(OTHER, "theme", tid) == {"kind": "theme", "id": tid, "likes": 1, "liked": True}
    before = await node.snapshot()
    assert (await node.like(OTHER, "theme", tid))["likes"] == 1
    assert await node.snapshot() == before
    assert (await node.like(BETA, "theme", tid))["likes"] == 2
    await node.refused(errors.Conflict, lk.EP_LIKE_GIVE, {"actor": actor(KIKAKU), "kind": "theme", "id": tid},
                       match="yourself")
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": actor(OTHER), "kind": "theme",
                                                          "id": "00000000-0000-4000-8000-000000000000"})
    await node.refused(errors.NotFound, lk.EP_LIKE_GIVE, {"actor": actor(OTHER), "kind": "post", "id": tid})
    await node.refused(errors.BadRequest, lk.EP_LIKE_GIVE, {"kind": "theme", "id": tid})

    # The case, published by JIMU: its publisher receives.
    await node.call(p.EP_REPORT_PUT, {"actor": actor(KIKAKU), **base, **REPORT, "version": 0})
    await node.call(p.EP_BUDGET_PUT, {"actor": actor(JIMU), **base, **BUDGET, "version": 0})
    await node.call(p.EP_DECISION_MAKE, {"actor": actor(KIKAKU), **base, "decision": "expand", "reasons": "効果あり"})
    await node.call(p.EP_CASE_PUBLISH, {"actor": actor(JIMU), **base})
    assert (await node.like(KIKAKU, "case", cid))["likes"] == 1
    await node.refused(errors.Conflict, lk.EP_LIKE_GIVE, {"actor": actor(JIMU), "kind": "case", "id": cid})

    counts = await node.call(lk.EP_LIKE_COUNTS, {"kind": "theme", "ids": [tid], "actor": actor(BETA)})
    assert counts["items"] == [{"kind": "theme", "id": tid, "likes": 2, "liked": True}]
    anonymous = await node.call(lk.EP_LIKE_COUNTS, {"kind": "case", "ids": [cid]})
    assert anonymous["items"] == [{"kind": "case", "id": cid, "likes": 1, "liked": False}]
    assert (await node.received(KIKAKU), await node.received(JIMU), await node.received(OTHER)) == (2, 1, 0)

    # Withdrawn; withdrawn again changes nothing.
    assert (await node.like(BETA, "theme", tid, lk.EP_LIKE_WITHDRAW))["likes"] == 1
    before = await node.snapshot()
    assert (await node.like(BETA, "theme", tid, lk.EP_LIKE_WITHDRAW))["liked"] is False
    assert await node.snapshot() == before
    assert await node.received(KIKAKU) == 1
    assert (await node.call(c.EP_THEME_GET, {"theme_id": tid}))["id"] == tid
