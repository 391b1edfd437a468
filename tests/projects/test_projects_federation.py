"""Federation of themes and cases at one node, on SQLite and PostgreSQL, over a real nats-server.

The node under test is `suginami`. Its peers' event streams (EVT_TSURUGASHIMA_PROJECTS, EVT_SHIBUYA_PROJECTS) live
on the same nats-server here, and the node's FED_SUGINAMI_PROJECTS sources them as it would through the hub
(tests/projects/test_projects_federation_nodes.py runs three real nodes). Events are real envelopes published on the
peers' subjects; the service's own consumer applies them once through its inbox.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.js.api import StreamSource
from sqlalchemy import func, select

from services.projects import federation as fed_domain
from services.projects.app import ProjectsService
from services.projects.models import (
    audit_log,
    bus,
    follows,
    participations,
    remote_cases,
    remote_themes,
    theme_invitations,
    theme_participants,
    themes,
)
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import Envelope, new_id
from towntip.kernel.bus.streams import ensure_stream, evt_stream_config, fed_stream_config
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node import leafnode
from towntip.node.source_guard import sourceable

NODE, A, C = "suginami", "tsurugashima", "shibuya"
STAFF = Actor(user_id="user-staff-001", global_handle=f"kikaku@{NODE}", display_name="企画 太郎", roles=("staff",))
CITIZEN = Actor(user_id="user-citizen-1", global_handle=f"hanako@{NODE}", display_name="市民 花子")
THEME_ID = "11111111-1111-4111-8111-111111111111"
CASE_ID = "22222222-2222-4222-8222-222222222222"
NOW = datetime.now(UTC).replace(microsecond=0)


def act(a: Actor) -> dict[str, Any]:
    return a.model_dump(mode="json")


def theme_event(version: int = 1, phase: int = 1, title: str = "高齢者の移動手段の確保", origin: str = A,
                **extra: Any) -> dict[str, Any]:
    return c.ThemePublished(
        id=THEME_ID, origin_node=origin, owner_department_name="都市計画課", title=title,
        background="路線バスが減便された", target="75歳以上の方", desired_outcome="週2回以上の外出",
        fields=["npo-1"], company_points="予約システム", phase=phase, version=version, published_at=NOW,
        **extra).model_dump(mode="json")


def case_event(version: int = 1, title: str = "乗合タクシーの実証") -> dict[str, Any]:
    return {"id": CASE_ID, "theme_id": THEME_ID, "origin_node": A, "owner_department_name": "都市計画課",
            "title": title, "summary": "予約型乗合交通を半年間運行した", "approach": "地元タクシー会社と協定",
            "outcomes": "外出回数が1.6倍", "lessons": "予約は電話も必要", "transferability": "団地の多い市で有効",
            "fields": ["npo-1"], "kpis": [{"name": "外出回数", "unit": "回/週", "baseline": "1", "target": "2",
                                          "actual": "1.6", "direction": "increase", "achievement_pct": "60"}],
            "partners": ["株式会社アクメ"], "decision": "expand", "version": version,
            "published_at": NOW.isoformat()}


class Node:
    def __init__(self, nc: nats.NATS, svc: ProjectsService) -> None:
        self.nc, self.svc = nc, svc
        self.js = nc.jetstream()

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)

    async def publish(self, peer: str, type_: str, data: dict[str, Any], *, node: str | None = None,
                      subject: str | None = None, env_id: str | None = None) -> str:
        """An event as `peer`'s outbox relay publishes it (or a forgery: another node inside, another subject)."""
        env = Envelope(id=env_id or new_id(), type=type_, node=node or peer, service="projects", data=data)
        await self.js.publish(subject or subjects.evt(peer, "projects", _token(type_)), env.to_bytes(),
                              headers={subjects.HDR_MSG_ID: new_id()})
        return env.id

    async def settle(self, timeout: float = 15.0) -> None:
        """Until the consumer has taken everything in FED_SUGINAMI_PROJECTS."""
        stream = subjects.fed_service_stream(NODE, "projects")
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            sent = sum([(await self.js.stream_info(subjects.evt_stream(p, "projects"))).state.messages for p in (A, C)])
            have = (await self.js.stream_info(stream)).state.messages
            info = await self.js.consumer_info(stream, "projects-peer-facts")
            if have >= sent and info.num_pending == 0 and info.num_ack_pending == 0:
                await asyncio.sleep(0.1)
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the consumer did not settle")

    async def rows(self, table: Any, *where: Any) -> list[Any]:
        async with self.svc.sessions() as s:
            return list(await s.execute(select(table).where(*where)))

    async def count(self, table: Any, *where: Any) -> int:
        async with self.svc.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()

    async def members(self, found: dict[str, str]) -> None:
        async with self.svc.sessions() as s, s.begin():
            await fed_domain.record_members(s, found, datetime.now(UTC))

    async def snapshot(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self.svc.sessions() as s:
            for t in (themes, remote_themes, remote_cases, follows, participations, theme_invitations,
                      theme_participants, audit_log):
                out[t.name] = sorted(repr(tuple(r)) for r in await s.execute(select(t)))
            out["outbox"] = sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))
        return out

    async def refused(self, kind: type[errors.ServiceError], endpoint: str, payload: Any) -> str:
        before = await self.snapshot()
        with pytest.raises(kind) as info:
            await self.call(endpoint, payload)
        assert await self.snapshot() == before, f"{endpoint} was refused but changed something"
        return info.value.reason


def _token(type_: str) -> str:
    from towntip.kernel.bus.envelope import event_token

    return event_token(type_)


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    url, schema = database
    settings = ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "", public_url="https://suginami.example.jp")
    svc = ProjectsService(settings, smtp=SmtpSettings(enabled=False))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    # The peers' streams on this one server, sourced as the hub would deliver them.
    for peer in (A, C):
        await ensure_stream(js, evt_stream_config(peer, "projects"))
    await ensure_stream(js, fed_stream_config(NODE, [
        StreamSource(name=subjects.evt_stream(p, "projects"), filter_subject=subjects.evt_all(p, "projects"))
        for p in (A, C)], own="projects"))
    try:
        yield Node(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_peer_themes_are_copied_newest_version_wins_applied_once_hidden_when_removed(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp", NODE: "https://suginami.example.jp"})
    first = await node.publish(A, "ThemePublished", theme_event(1))
    await node.publish(A, "ThemeChanged", theme_event(3, title="高齢者の移動支援"))
    await node.publish(A, "ThemeChanged", theme_event(2, title="古い版"))  # late and stale: ignored
    await node.publish(A, "ThemePublished", theme_event(1), env_id=first)  # the same event again: applied once
    await node.publish(A, "ThemePhaseAdvanced", {"theme_id": THEME_ID, "origin_node": A, "from_phase": 1,
                                                 "to_phase": 2, "at": NOW.isoformat(), "version": 4})
    await node.publish(A, "ResultPublished", {
        "theme_id": THEME_ID, "origin_node": A, "published_at": NOW.isoformat(), "reasons": "地域性を評価",
        "criteria": [], "pilot_candidates": ["p1"], "ranking": [
            {"proposal_id": "p1", "title": "AI乗合", "lead_org_name": "株式会社アクメ", "partner_names": [],
             "rank": 1, "total": 4.2, "evaluators_counted": 2, "averages": [], "selected": True},
            {"proposal_id": "p2", "title": "落選案", "lead_org_name": "B社", "partner_names": [], "rank": 2,
             "total": 3.0, "evaluators_counted": 2, "averages": [], "selected": False}]})
    await node.publish(A, "ProposalReceived", {"proposal_id": "p9", "theme_id": THEME_ID, "origin_node": A,
                                               "at": NOW.isoformat()})  # not copied: acknowledged, no effect
    await node.settle()
    got = await node.call(f.EP_THEMES_GET, {"origin_node": A, "id": THEME_ID})
    assert got["title"] == "高齢者の移動支援" and got["version"] == 4 and got["phase"] == 2
    assert got["origin_url"] == f"https://tsuru.example.jp/themes/{THEME_ID}"
    assert got["result"]["pilot_candidates"] == [{"title": "AI乗合", "lead_org_name": "株式会社アクメ",
                                                  "partner_names": []}]
    assert await node.count(remote_themes) == 1
    listed = await node.call(f.EP_THEMES_LIST, {"field": "npo-1"})
    assert [t["id"] for t in listed["themes"]] == [THEME_ID]
    assert (await node.call(f.EP_THEMES_LIST, {"field": "npo-2"}))["themes"] == []

    # A theme's own node is no peer of itself: its local copy would be its own row (never sourced).
    members = await node.call(f.EP_MEMBERS, {})
    assert {m["node"]: m["active"] for m in members["members"]} == {A: True, NODE: True}

    # The anchor removes A: its copies are hidden (kept), and come back if it is listed again.
    await node.members({NODE: "https://suginami.example.jp"})
    assert (await node.call(f.EP_THEMES_LIST, {}))["themes"] == []
    with pytest.raises(errors.NotFound):
        await node.call(f.EP_THEMES_GET, {"origin_node": A, "id": THEME_ID})
    assert await node.count(remote_themes) == 1
    await node.members({A: "https://tsuru.example.jp", NODE: "https://suginami.example.jp"})
    assert len((await node.call(f.EP_THEMES_LIST, {}))["themes"]) == 1


async def test_a_node_speaks_only_for_itself_forged_events_go_to_dead_letters(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp", C: "https://shibuya.example.jp"})
    dlq = subjects.dlq_stream(NODE)
    before = (await node.js.stream_info(dlq)).state.messages
    # C claims to be A, on C's own subject (the only one C can publish on at the hub).
    await node.publish(C, "ThemePublished", theme_event(9, title="偽"), node=A,
                       subject=subjects.evt(C, "projects", "theme_published"))
    # C, as itself, describes A's theme.
    await node.publish(C, "ThemeChanged", theme_event(9, title="偽", origin=A))
    # A type that does not match its subject.
    await node.publish(A, "ThemeChanged", theme_event(9, title="偽"),
                       subject=subjects.evt(A, "projects", "inquiry_received"))
    # Malformed data.
    await node.publish(A, "CasePublished", {"id": CASE_ID, "origin_node": A})
    await node.settle()
    assert await node.count(remote_themes) == 0 and await node.count(remote_cases) == 0
    for _ in range(50):
        if (await node.js.stream_info(dlq)).state.messages - before == 4:
            break
        await asyncio.sleep(0.1)
    assert (await node.js.stream_info(dlq)).state.messages - before == 4
    reasons = []
    for seq in range(before + 1, before + 5):
        msg = await node.js.get_msg(dlq, seq)
        reasons.append((msg.headers or {}).get(subjects.HDR_ERROR_CODE))
    assert sorted(reasons) == ["400", "400", "403", "403"]


async def test_follow_shows_what_changed_since_last_look(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp"})
    await node.publish(A, "ThemePublished", theme_event(1))
    await node.publish(A, "CasePublished", case_event(1))
    await node.settle()
    follow = {"actor": act(CITIZEN), "kind": "theme", "origin_node": A, "id": THEME_ID}
    got = await node.call(f.EP_FOLLOW, follow)
    assert got["seen_version"] == 1 and got["changed"] is False
    await node.call(f.EP_FOLLOW, {**follow, "kind": "case", "id": CASE_ID})
    assert (await node.call(f.EP_THEMES_GET, {"origin_node": A, "id": THEME_ID, "actor": act(CITIZEN)}))["following"]

    await node.publish(A, "ThemeChanged", theme_event(2, phase=2))
    await node.publish(A, "CaseChanged", case_event(2, title="乗合タクシーの実証(改訂)"))
    await node.settle()
    items = {i["kind"]: i for i in (await node.call(f.EP_FOLLOWING, {"actor": act(CITIZEN)}))["items"]}
    assert items["theme"]["changed"] and items["theme"]["phase_changed"]
    assert (items["theme"]["seen_version"], items["theme"]["version"], items["theme"]["phase"]) == (1, 2, 2)
    assert items["case"]["changed"] and items["case"]["title"] == "乗合タクシーの実証(改訂)"
    await node.call(f.EP_FOLLOW, follow)  # looked at it again
    items = {i["kind"]: i for i in (await node.call(f.EP_FOLLOWING, {"actor": act(CITIZEN)}))["items"]}
    assert not items["theme"]["changed"] and not items["theme"]["phase_changed"]
    await node.call(f.EP_UNFOLLOW, follow)
    assert [i["kind"] for i in (await node.call(f.EP_FOLLOWING, {"actor": act(CITIZEN)}))["items"]] == ["case"]
    # Following what is not here (or is hidden) is refused, and changes nothing.
    await node.refused(errors.NotFound, f.EP_FOLLOW, {**follow, "id": "33333333-3333-4333-8333-333333333333"})
    await node.refused(errors.NotFound, f.EP_UNFOLLOW, follow)
    await node.members({})
    assert (await node.call(f.EP_FOLLOWING, {"actor": act(CITIZEN)}))["items"] == []


async def test_adopting_a_case_starts_a_draft_that_keeps_the_link(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp"})
    await node.publish(A, "CasePublished", case_event(1))
    await node.settle()
    case = await node.call(f.EP_CASES_GET, {"origin_node": A, "id": CASE_ID})
    assert case["origin_url"] == f"https://tsuru.example.jp/cases/{CASE_ID}"
    assert case["prefill"]["title"] == "乗合タクシーの実証" and "団地の多い市" in case["prefill"]["company_points"]
    dept = await node.call(c.EP_ORG_CREATE, {"actor": act(STAFF), "kind": "department", "name": "交通政策課"})
    content = {**case["prefill"], "title": "杉並区版 乗合タクシー", "target": "区内の高齢者"}
    adopt = {"actor": act(STAFF), "owner_department_id": dept["id"], "case_origin_node": A, "case_id": CASE_ID,
             **content}
    # Not staff of the department: refused, nothing changes. A case that is not here: 404.
    await node.refused(errors.Forbidden, f.EP_ADOPT, {**adopt, "actor": act(CITIZEN)})
    await node.refused(errors.NotFound, f.EP_ADOPT, {**adopt, "case_id": THEME_ID})
    theme = await node.call(f.EP_ADOPT, adopt)
    assert theme["status"] == "draft" and theme["title"] == "杉並区版 乗合タクシー" and theme["origin_node"] == NODE
    assert theme["origin_case"] == {"origin_node": A, "case_id": CASE_ID, "title": "乗合タクシーの実証"}
    again = await node.call(c.EP_THEME_GET, {"theme_id": theme["id"], "actor": act(STAFF)})
    assert again["origin_case"] == theme["origin_case"]
    history = await node.call(c.EP_THEME_HISTORY, {"theme_id": theme["id"], "actor": act(STAFF)})
    assert history["entries"][0]["after"]["origin_case"]["case_id"] == CASE_ID


async def test_a_remote_theme_cannot_be_changed_through_local_endpoints(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp"})
    await node.publish(A, "ThemePublished", theme_event(1))
    await node.settle()
    boss = Actor(user_id="user-jimu-0001", global_handle=f"jimu@{NODE}", display_name="事務局",
                 roles=("secretariat",))
    edit = {"actor": act(boss), "theme_id": THEME_ID, "version": 1, **{k: v for k, v in theme_event(1).items() if k in
            ("title", "background", "target", "desired_outcome", "fields", "company_points")}}
    await node.refused(errors.NotFound, c.EP_THEME_UPDATE, edit)
    await node.refused(errors.NotFound, c.EP_THEME_ADVANCE, {"actor": act(boss), "theme_id": THEME_ID,
                                                             "to_phase": 2, "note": "x"})
    await node.refused(errors.NotFound, f.EP_WIDE_AREA, {"actor": act(boss), "theme_id": THEME_ID, "invite": [C]})


async def test_wide_area_invite_participation_recorded_and_uninvited_ignored(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp", C: "https://shibuya.example.jp",
                        NODE: "https://suginami.example.jp"})
    dept = await node.call(c.EP_ORG_CREATE, {"actor": act(STAFF), "kind": "department", "name": "交通政策課"})
    content = {k: v for k, v in theme_event(1).items() if k in
               ("title", "background", "target", "desired_outcome", "fields", "company_points")}
    theme = await node.call(c.EP_THEME_CREATE, {"actor": act(STAFF), "owner_department_id": dept["id"], **content})
    invite = {"actor": act(STAFF), "theme_id": theme["id"], "invite": [A]}
    await node.refused(errors.Conflict, f.EP_WIDE_AREA, invite)  # a draft
    await node.call(c.EP_THEME_PUBLISH, {"actor": act(STAFF), "theme_id": theme["id"]})
    await node.refused(errors.BadRequest, f.EP_WIDE_AREA, {**invite, "invite": ["nowhere"]})
    await node.refused(errors.BadRequest, f.EP_WIDE_AREA, {**invite, "invite": [NODE]})
    await node.refused(errors.Forbidden, f.EP_WIDE_AREA, {**invite, "actor": act(CITIZEN)})
    got = await node.call(f.EP_WIDE_AREA, invite)
    assert got["wide_area"] and got["invited_nodes"] == [A] and got["participants"] == []

    declared = {"theme_id": theme["id"], "theme_origin_node": NODE, "note": "参加します",
                "declared_at": NOW.isoformat()}
    await node.publish(C, "WideAreaParticipationDeclared", {**declared, "origin_node": C})  # not invited
    await node.publish(A, "WideAreaParticipationDeclared", {**declared, "origin_node": A})
    await node.publish(A, "WideAreaParticipationDeclared", {**declared, "origin_node": A})  # twice: once
    await node.settle()
    got = await node.call(c.EP_THEME_GET, {"theme_id": theme["id"]})
    assert got["participants"] == [A] and got["invited_nodes"] == [A]
    assert any(C in reason for reason in node.svc.peer_facts.ignored)
    history = await node.call(c.EP_THEME_HISTORY, {"theme_id": theme["id"], "actor": act(STAFF)})
    assert [e["action"] for e in history["entries"]][-2:] == ["wide_area_invited", "wide_area_participant"]
    async with node.svc.sessions() as s:
        events = [json.loads(r.payload) for r in await s.execute(select(bus.outbox).order_by(bus.outbox.c.seq))]
    changed = [e for e in events if e["type"] == "ThemeChanged"]
    assert changed[-1]["data"]["participants"] == [A] and changed[-1]["data"]["wide_area"] is True


async def test_staff_of_an_invited_node_declare_participation_on_their_own_stream(node: Node) -> None:
    await node.members({A: "https://tsuru.example.jp", NODE: "https://suginami.example.jp"})
    await node.publish(A, "ThemePublished", theme_event(1))
    await node.settle()
    declare = {"actor": act(STAFF), "origin_node": A, "theme_id": THEME_ID, "note": "広域で取り組みたい"}
    await node.refused(errors.Forbidden, f.EP_PARTICIPATE, declare)  # not wide-area yet
    await node.publish(A, "ThemeChanged", theme_event(2, wide_area=True, invited_nodes=[C]))
    await node.settle()
    await node.refused(errors.Forbidden, f.EP_PARTICIPATE, declare)  # this node was not invited
    await node.publish(A, "ThemeChanged", theme_event(3, wide_area=True, invited_nodes=[C, NODE]))
    await node.settle()
    got = await node.call(f.EP_THEMES_GET, {"origin_node": A, "id": THEME_ID, "actor": act(STAFF)})
    assert got["may_participate"] and not got["participating"]
    await node.refused(errors.Forbidden, f.EP_PARTICIPATE, {**declare, "actor": act(CITIZEN)})
    got = await node.call(f.EP_PARTICIPATE, declare)
    assert got["participating"] and not got["may_participate"]
    await node.refused(errors.Conflict, f.EP_PARTICIPATE, declare)
    stream = subjects.evt_stream(NODE, "projects")
    for _ in range(100):
        if (await node.js.stream_info(stream)).state.messages:
            break
        await asyncio.sleep(0.1)
    msg = await node.js.get_last_msg(stream, subjects.evt(NODE, "projects", "wide_area_participation_declared"))
    data = json.loads(msg.data)
    assert data["node"] == NODE and data["data"]["origin_node"] == NODE and data["data"]["theme_origin_node"] == A


def test_every_event_on_the_projects_stream_was_reviewed_as_public() -> None:
    """Peers may source EVT_<NODE>_PROJECTS (leafnode.FEDERATED_SERVICES): every event type the projects contracts
    define must be on the list reviewed in docs/projects.md ("Federation of themes and cases"). A new event
    type fails here until someone checked that it carries only public facts and added it."""
    import pathlib
    import re

    reviewed = {"OrganisationRegistered", "OrganisationChanged", "ThemePublished", "ThemeChanged",
                "ThemeRequirementsSet", "ThemeCallOpened", "ThemePhaseAdvanced", "InquiryReceived",
                "BriefingScheduled", "BriefingSeatsChanged", "ProposalReceived", "ProposalWithdrawn",
                "EvaluatorAppointed", "EvaluationClosed", "ResultPublished", "WideAreaParticipationDeclared",
                "CasePublished", "CaseChanged", "PilotAgreed", "ThemeCompleted"}
    contracts = pathlib.Path(__file__).parents[2] / "towntip" / "kernel" / "contracts"
    defined: set[str] = set()
    for name in ("projects.py", "pilots.py", "federation.py"):
        text = (contracts / name).read_text()
        for section in re.split(r"\n# ---- ", text)[1:]:
            if section.startswith("events"):
                defined |= set(re.findall(r"^class (\w+)\(", section, re.M))
    assert {"ThemePublished", "CasePublished", "WideAreaParticipationDeclared"} <= defined
    assert defined <= reviewed, f"not reviewed as public: {sorted(defined - reviewed)}"
    announced: set[str] = set()
    for path in (contracts.parent.parent.parent / "services" / "projects").glob("*.py"):
        announced |= set(re.findall(r"event=(?:c|f|p)\.([A-Z]\w+)\(", path.read_text()))
    assert announced <= reviewed, f"announced but not reviewed: {sorted(announced - reviewed)}"
    assert "projects" in leafnode.FEDERATED_SERVICES
    assert c.EvaluatorAppointed(theme_id="t", origin_node="x", at=NOW).global_handle == ""  # who stays at home


def test_leafnode_keeps_the_projects_fed_stream_private() -> None:
    imports = leafnode.deny_imports("town-b")
    assert "$JS.town-b.API.>" in imports  # peers source through the node's source guard alone
    assert "FED_TOWN_B_PROJECTS" not in sourceable("town-b")  # what B copied stays B's
    assert sourceable("town-b")["EVT_TOWN_B_PROJECTS"] == "evt.town-b.projects.>"  # peers source it


