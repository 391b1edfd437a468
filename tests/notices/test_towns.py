"""Following other towns' public notices (issue 18 point 3), on SQLite and PostgreSQL: the person's own setting on
their home node, checked against the federation's member towns; refusals change nothing; a deleted account's
follows go with it. (The notices crossing between two real nodes: test_towns_federation_nodes.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import nats
import pytest
from sqlalchemy import select

from services.notices.app import NoticesService
from services.notices.towns_models import town_follows
from tests.notices.conftest import settings
from tests.notices.helpers import AKI, CLERK, HANAKO, NODE, NOW, TARO, Clock, MemberTowns, Node, a
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts import notices_towns as tc


@pytest.fixture
async def towns_node(nats_server, database, tmp_path) -> AsyncIterator[tuple[Node, MemberTowns]]:
    members = MemberTowns({"suginami": "https://suginami.example.jp", "shibuya": "https://shibuya.example.jp"})
    svc = NoticesService(settings(nats_server.url, database, tmp_path), clock=Clock(), poll_every=None,
                         member_towns=members)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc, Clock()), members
    finally:
        await nc.close()
        await svc.stop()


async def follows(node: Node) -> set[tuple[str, str]]:
    async with node.svc.sessions() as s:
        return set((await s.execute(select(town_follows.c.person, town_follows.c.node))).tuples())


async def refused(node: Node, refusal: errors.Refusal, endpoint: str, payload: dict[str, object]) -> None:
    before = await follows(node)
    with pytest.raises(errors.ServiceError) as info:
        await node.call(endpoint, payload)
    assert (info.value.error_code, info.value.code) == (refusal.code, refusal.status), info.value.reason
    assert await follows(node) == before, f"{endpoint} was refused but changed the follows"


def shown(answer: dict[str, object]) -> dict[str, bool]:
    return {t["node"]: t["following"] for t in answer["towns"]}  # type: ignore[union-attr,index]


async def test_a_person_follows_member_towns_on_their_home_node_only(towns_node) -> None:
    node, members = towns_node
    listed = await node.call(tc.EP_TOWNS_LIST, {"actor": a(HANAKO)})
    assert shown(listed) == {"shibuya": False, "suginami": False} and listed["available"] is True
    got = await node.call(tc.EP_TOWNS_FOLLOW, {"actor": a(HANAKO), "node": "suginami"})
    assert shown(got) == {"shibuya": False, "suginami": True}
    again = await node.call(tc.EP_TOWNS_FOLLOW, {"actor": a(HANAKO), "node": "suginami"})  # once, however often
    assert shown(again) == shown(got)
    assert await follows(node) == {(HANAKO.global_handle, "suginami")}
    # Only a member town other than this one; only on the person's home node; only a node id.
    await refused(node, tc.TOWN_UNKNOWN, tc.EP_TOWNS_FOLLOW, {"actor": a(HANAKO), "node": "nowhere"})
    await refused(node, tc.TOWN_UNKNOWN, tc.EP_TOWNS_FOLLOW, {"actor": a(HANAKO), "node": NODE})
    await refused(node, tc.TOWNS_HOME_ONLY, tc.EP_TOWNS_FOLLOW, {"actor": a(AKI), "node": "shibuya"})
    await refused(node, tc.TOWNS_HOME_ONLY, tc.EP_TOWNS_LIST, {"actor": a(AKI)})
    with pytest.raises(errors.ServiceError) as bad:
        await node.call(tc.EP_TOWNS_FOLLOW, {"actor": a(HANAKO), "node": "Shibuya.>"})
    assert bad.value.code == 400
    # Projects not answering: following waits, the page still shows what the person follows.
    members.listed = None
    await refused(node, tc.TOWNS_UNAVAILABLE, tc.EP_TOWNS_FOLLOW, {"actor": a(HANAKO), "node": "shibuya"})
    down = await node.call(tc.EP_TOWNS_LIST, {"actor": a(HANAKO)})
    assert shown(down) == {"suginami": True} and down["available"] is False
    # A town that left the federation: still listed as followed (to unfollow), marked as no longer a member.
    members.listed = {"shibuya": "https://shibuya.example.jp"}
    gone = await node.call(tc.EP_TOWNS_LIST, {"actor": a(HANAKO)})
    assert {t["node"]: t["listed"] for t in gone["towns"]} == {"shibuya": True, "suginami": False}
    left = await node.call(tc.EP_TOWNS_UNFOLLOW, {"actor": a(HANAKO), "node": "suginami"})
    assert shown(left) == {"shibuya": False} and await follows(node) == set()


async def test_a_deleted_account_takes_its_follows_with_it(towns_node) -> None:
    node, _members = towns_node
    await node.register(HANAKO, TARO)
    for who in (HANAKO, TARO):
        await node.call(tc.EP_TOWNS_FOLLOW, {"actor": a(who), "node": "shibuya"})
    await node.publish(ic.UserDeleted(global_handle=HANAKO.global_handle, home_node=NODE))
    await wait_for(lambda: _only_taro(node), "HANAKO's follows deleted with her account", timeout=10)


async def _only_taro(node: Node) -> bool:
    return await follows(node) == {(TARO.global_handle, "shibuya")}


def test_only_the_public_notices_stream_is_open_to_peers_and_it_carries_only_public_facts() -> None:
    """Peers source EVT_<NODE>_PUBLICNOTICES (leafnode.FEDERATED_SERVICES), never EVT_<NODE>_NOTICES (targeted
    notices' counts, official messages). A new event type on the public stream fails here until someone checked that
    it carries only what the node shows everyone and added it."""
    from towntip.kernel.contracts.events import registered
    from towntip.node.leafnode import FEDERATED_SERVICES
    from towntip.node.source_guard import sourceable

    assert tc.PUBLIC in FEDERATED_SERVICES and c.SERVICE not in FEDERATED_SERVICES
    assert set(sourceable("town-b")) >= {"EVT_TOWN_B_PUBLICNOTICES"}
    assert "EVT_TOWN_B_NOTICES" not in sourceable("town-b")
    on_public = {name for (service, name) in registered() if service == tc.PUBLIC}
    assert on_public == {"PublicNoticePublished", "PublicNoticeCorrected", "PublicNoticeWithdrawn"}
    fields = set(tc.PublicNoticePublished.model_fields)
    assert not fields & {"target", "recipients", "person", "persons", "handles", "created_by", "approved_by"}


async def test_a_public_notice_with_a_date_is_on_the_calendar_a_targeted_one_is_not(towns_node) -> None:
    node, _members = towns_node
    day = NOW + timedelta(days=3)
    period = {"valid_from": day.isoformat(), "valid_until": (day + timedelta(hours=2)).isoformat()}
    public = await node.notice({"kind": "everyone"}, title="市民清掃デー", **period)
    targeted = await node.notice({"kind": "stage", "value": "senior"}, title="敬老のつどい", **period)
    undated = await node.notice({"kind": "everyone"}, title="窓口時間の変更")
    for made in (public, targeted, undated):
        await node.sent(made["id"])
    query = {"start": (NOW - timedelta(days=1)).date().isoformat(), "days": 31}
    got = await node.call(f.EP_CALENDAR, query)
    assert [(n["id"], n["title"]) for n in got["notices"]] == [(public["id"], "市民清掃デー")]
    assert datetime.fromisoformat(got["notices"][0]["starts_at"]) == day
    assert (await node.call(f.EP_CALENDAR, {**query, "start": (NOW + timedelta(days=10)).date().isoformat()}))[
        "notices"] == []  # another month: not there
    assert (await node.call(f.EP_CALENDAR, {**query, "community_id": "fujimi-salon"}))["notices"] == []
    await node.call(c.EP_NOTICE_WITHDRAW, {"actor": a(CLERK), "notice_id": public["id"]})
    assert (await node.call(f.EP_CALENDAR, query))["notices"] == []  # withdrawn: off the calendar
