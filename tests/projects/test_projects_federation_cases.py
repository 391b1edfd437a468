"""A case published by phase 4 travels to a peer and is adopted there and at home (横展開), on SQLite and PostgreSQL.

The theme is brought to phase 4 with tests/projects/test_projects_pilots.py's helpers at node `testnode` (its projects
service on the test's database); a second projects service, node `suginami` (its own SQLite file), runs on the same
nats-server, and its FED_SUGINAMI_PROJECTS sources testnode's event stream as the hub would deliver it. Nothing is
faked: the CasePublished and CaseChanged it applies are the ones phase 4 announced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.js.api import StreamSource

from services.projects import federation as fed_domain
from services.projects.app import ProjectsService
from tests.projects.test_projects_calls import JIMU, KIKAKU, NODE, actor
from tests.projects.test_projects_pilots import BUDGET, CASE, REPORT, PilotNode, node, to_phase4  # noqa: F401 - fixture
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.streams import ensure_stream, fed_stream_config
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings

PEER = "suginami"
PEER_STAFF = Actor(user_id="user-sugi-0001", global_handle=f"kotsu@{PEER}", display_name="杉並 交通", roles=("staff",))


@pytest.fixture
async def peer(nats_server, tmp_path) -> AsyncIterator[Any]:
    svc = ProjectsService(ServiceSettings(service="projects", node_id=PEER, nats_url=nats_server.url,
                                          data_dir=str(tmp_path / "peer"), public_url="https://suginami.example.jp"),
                          smtp=SmtpSettings(enabled=False))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    await ensure_stream(nc.jetstream(), fed_stream_config(PEER, [StreamSource(
        name=subjects.evt_stream(NODE, "projects"), filter_subject=subjects.evt_all(NODE, "projects"))],
        own="projects"))
    async with svc.sessions() as s, s.begin():
        await fed_domain.record_members(s, {NODE: "https://tsuru.example.jp", PEER: "https://suginami.example.jp"},
                                        datetime.now(UTC))

    async def call(endpoint: str, payload: Any) -> Any:
        return await rpc.call(nc, subjects.svc(PEER, c.SERVICE, endpoint), payload, timeout=15)

    try:
        yield call
    finally:
        await nc.close()
        await svc.stop()


async def eventually(fn: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await fn()
        except (errors.NotFound, AssertionError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_published_case_reaches_a_peer_and_is_adopted_there_and_at_home(node: PilotNode, peer) -> None:  # noqa: F811
    tid, org, kpi = await to_phase4(node)
    base = {"theme_id": tid}
    await node.call(p.EP_ACTUAL_ADD, {"actor": actor(KIKAKU), **base, "kpi_id": kpi["週あたり外出回数"], "value": "1.8",
                                      "measured_on": "2027-06-30", "source": "アンケート"})
    await node.call(p.EP_REPORT_PUT, {"actor": actor(KIKAKU), **base, **REPORT, "version": 0})
    await node.call(p.EP_BUDGET_PUT, {"actor": actor(JIMU), **base, **BUDGET, "version": 0})
    await node.call(p.EP_DECISION_MAKE, {"actor": actor(KIKAKU), **base, "decision": "expand", "reasons": "効果あり"})
    draft = {"actor": actor(KIKAKU), **base, **CASE, "draft_revision": 0}
    cid = (await node.call(p.EP_CASE_PUT, draft))["id"]
    pub = (await node.call(p.EP_CASE_PUBLISH, {"actor": actor(JIMU), **base}))["published"]

    async def copy(version: int) -> dict[str, Any]:
        got = await peer(f.EP_CASES_GET, {"origin_node": NODE, "id": cid})
        assert got["version"] == version
        return got

    got = await eventually(lambda: copy(1))
    for key in ("title", "summary", "approach", "outcomes", "lessons", "transferability", "fields", "kpis",
                "partners", "decision", "theme_id", "owner_department_name"):
        assert got[key] == pub[key], key
    assert got["origin_url"] == f"https://tsuru.example.jp/cases/{cid}"
    # The theme travelled too, with its phase and its selection's result.
    theme = await peer(f.EP_THEMES_GET, {"origin_node": NODE, "id": tid})
    assert theme["phase"] == 4 and theme["result"]["pilot_candidates"]

    # Re-published after an edit: the copy follows (newest version wins).
    await node.call(p.EP_CASE_PUT, {**draft, "draft_revision": 1, "title": "団地の乗合交通と見守り"})
    await node.call(p.EP_CASE_PUBLISH, {"actor": actor(KIKAKU), **base})
    got = await eventually(lambda: copy(2))
    assert got["title"] == "団地の乗合交通と見守り"

    # 横展開 at the peer: a draft of the peer's own department, linked to testnode's case.
    dept = await peer(c.EP_ORG_CREATE, {"actor": actor(PEER_STAFF), "kind": "department", "name": "交通政策課"})
    adopted = await peer(f.EP_ADOPT, {"actor": actor(PEER_STAFF), "owner_department_id": dept["id"],
                                      "case_origin_node": NODE, "case_id": cid, **got["prefill"]})
    assert adopted["origin_node"] == PEER and adopted["status"] == "draft"
    assert adopted["origin_case"] == {"origin_node": NODE, "case_id": cid, "title": "団地の乗合交通と見守り"}

    # ... and at home: another department starts from its own town's case.
    local = await node.call(f.EP_CASES_GET, {"origin_node": NODE, "id": cid})
    assert local["origin_url"] == f"https://tsuru.example.jp/cases/{cid}" and local["version"] == 2
    own = await node.call(f.EP_ADOPT, {"actor": actor(KIKAKU), "owner_department_id": org["dept"],
                                       "case_origin_node": NODE, "case_id": cid, **local["prefill"],
                                       "title": "別の団地への横展開"})
    assert own["origin_case"]["case_id"] == cid and own["title"] == "別の団地への横展開"
    with pytest.raises(errors.NotFound):  # a case that is not published is nobody's to adopt
        await node.call(f.EP_ADOPT, {"actor": actor(KIKAKU), "owner_department_id": org["dept"],
                                     "case_origin_node": NODE, "case_id": tid, **local["prefill"]})
