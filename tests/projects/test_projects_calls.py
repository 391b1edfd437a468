"""Phase 2 of co-creation (対話形成) over a real nats-server, on SQLite and PostgreSQL: companies matched to a theme,
briefings with a capacity kept under concurrent registrations, proposals from single companies and consortia kept
confidential (404 for every reader who may not see them), evaluators who declare conflicts and score independently,
the close, the published result, and the phase gate to 3.

The service runs in this process with a clock the test moves forward (a deadline passes, a briefing starts); every
call goes through NATS as the gateway's would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from sqlalchemy import func, select

from services.projects.app import ProjectsService
from services.projects.models import (
    audit_log,
    briefing_registrations,
    briefings,
    bus,
    evaluators,
    proposal_partners,
    proposals,
    results,
    review_scores,
    reviews,
    themes,
)
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

NODE = "testnode"
KIKAKU = Actor(user_id="user-kikaku-01", global_handle=f"kikaku@{NODE}", display_name="企画 太郎", roles=("staff",))
KANKYO = Actor(user_id="user-kankyo-01", global_handle=f"kankyo@{NODE}", display_name="環境 花子", roles=("staff",))
JIMU = Actor(user_id="user-jimu-0001", global_handle=f"jimu@{NODE}", display_name="事務局 一郎",
             roles=("secretariat",))
ACME = Actor(user_id="user-acme-0001", global_handle="acme@suginami", display_name="アクメ 佐藤")
ACME2 = Actor(user_id="user-acme-0002", global_handle=f"acme_two@{NODE}", display_name="アクメ 鈴木")
BETA = Actor(user_id="user-beta-0001", global_handle=f"beta@{NODE}", display_name="ベータ 田中")
GAMMA = Actor(user_id="user-gamma-001", global_handle=f"gamma@{NODE}", display_name="ガンマ 高橋")
OMEGA = Actor(user_id="user-omega-001", global_handle=f"omega@{NODE}", display_name="オメガ 伊藤")
EV1 = Actor(user_id="user-ev1-00001", global_handle=f"hyoka_one@{NODE}", display_name="評価 一")
EV2 = Actor(user_id="user-ev2-00001", global_handle="hyoka_two@kawagoe", display_name="評価 二")
EV3 = Actor(user_id="user-ev3-00001", global_handle=f"hyoka_three@{NODE}", display_name="評価 三")
OTHER = Actor(user_id="user-other-001", global_handle=f"other@{NODE}", display_name="市民 次郎")


def actor(a: Actor | None) -> dict[str, Any] | None:
    return a.model_dump(mode="json") if a is not None else None


class Clock:
    """The service's now: the real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Node:
    def __init__(self, nc: nats.NATS, svc: ProjectsService, clock: Clock) -> None:
        self.nc, self.svc, self.clock = nc, svc, clock

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=20)

    async def refused(self, kind: type[errors.ServiceError], endpoint: str, payload: Any,
                      match: str | None = None) -> str:
        """Refused with this kind of error (and `match` in its reason), and nothing changed."""
        before = await self.snapshot()
        with pytest.raises(kind, match=match) as info:
            await self.call(endpoint, payload)
        assert await self.snapshot() == before, f"{endpoint} was refused but changed something"
        return info.value.reason

    async def snapshot(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self.svc.sessions() as s:
            for table in (themes, briefings, briefing_registrations, proposals, proposal_partners, evaluators,
                          reviews, review_scores, results, audit_log):
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
            out["outbox"] = sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))
        return out

    async def count(self, table: Any, *where: Any) -> int:
        async with self.svc.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        js = self.nc.jetstream()
        out: list[tuple[str, dict[str, Any]]] = []
        for _ in range(100):  # the relay publishes after each commit: wait until it has caught up
            async with self.svc.sessions() as s:
                pending = (await s.execute(select(func.count()).select_from(bus.outbox).where(
                    bus.outbox.c.published_at.is_(None)))).scalar_one()
            if not pending:
                break
            await asyncio.sleep(0.1)
        sub = await js.subscribe(subjects.evt_all(NODE, c.SERVICE), ordered_consumer=True)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    break
                out.append((msg.subject.rsplit(".", 1)[1], json.loads(msg.data)["data"]))
        finally:
            await sub.unsubscribe()
        return out


@asynccontextmanager
async def running(nats_server: Any, database: tuple[str, str | None], tmp_path: Any,
                  cls: type[Node] = Node) -> AsyncIterator[Node]:
    """The projects service on this database with a test clock, and a client connection (also for
    tests/projects/test_projects_pilots.py, whose Node snapshots more tables)."""
    url, schema = database
    settings = ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "", public_url="https://tsuru.example.jp")
    clock = Clock()
    svc = ProjectsService(settings, clock=clock)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield cls(nc, svc, clock)
    finally:
        await nc.close()
        await svc.stop()


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    async with running(nats_server, database, tmp_path) as n:
        yield n


THEME = {
    "title": "高齢者の移動手段の確保",
    "background": "郊外の団地で路線バスが減便され、通院や買い物に困る高齢者が増えている。",
    "target": "団地に住む75歳以上の方",
    "desired_outcome": "予約型の乗合交通で、週2回以上の外出ができる",
    "fields": ["npo-3", "npo-1"],
    "company_points": "配車システム、車両と運行、地域の見守りとの連携",
}
CRITERIA = (("実現可能性", 50), ("費用対効果", 30), ("地域への波及", 20))


async def org(node: Node, who: Actor, name: str, kind: str = "company", **profile: Any) -> dict[str, Any]:
    return await node.call(c.EP_ORG_CREATE, {"actor": actor(who), "kind": kind, "name": name, **profile})


async def open_theme(node: Node, owner: Actor = KIKAKU, dept_name: str = "企画政策課",
                     days: int = 30) -> dict[str, Any]:
    """A published theme in phase 2 with its call open, the deadline `days` ahead on the service's clock."""
    dept = await org(node, owner, dept_name, kind="department")
    theme = await node.call(c.EP_THEME_CREATE, {"actor": actor(owner), "owner_department_id": dept["id"], **THEME})
    tid = theme["id"]
    await node.call(c.EP_THEME_PUBLISH, {"actor": actor(owner), "theme_id": tid})
    deadline = node.clock() + timedelta(days=days)
    await node.call(c.EP_THEME_REQUIREMENTS, {
        "actor": actor(owner), "theme_id": tid, "conditions": "市内で実証できる法人または共同事業体",
        "scope": "6か月の実証", "deadline": deadline.isoformat(),
        "criteria": [{"name": n, "weight": w} for n, w in CRITERIA]})
    await node.call(c.EP_THEME_ADVANCE, {"actor": actor(owner), "theme_id": tid, "to_phase": 2, "note": "公募へ"})
    return await node.call(c.EP_THEME_CALL_OPEN, {"actor": actor(owner), "theme_id": tid})


async def companies(node: Node) -> dict[str, dict[str, Any]]:
    acme = await org(node, ACME, "株式会社アクメ", fields=["npo-3"], expertise="デマンド交通の配車と運行管理")
    await node.call(c.EP_ORG_MEMBER_ADD, {"actor": actor(ACME), "org_id": acme["id"],
                                          "global_handle": ACME2.global_handle})
    beta = await org(node, BETA, "ベータ交通株式会社", fields=["npo-3", "npo-1"], expertise="乗合タクシーの車両")
    gamma = await org(node, GAMMA, "NPO法人ガンマ見守り", fields=["npo-1"], expertise="高齢者の見守り活動")
    omega = await org(node, OMEGA, "オメガ食品", fields=["npo-10"], expertise="食品の製造")
    return {"acme": acme, "beta": beta, "gamma": gamma, "omega": omega}


def proposal(theme_id: str, lead: dict[str, Any], title: str, partners: tuple[str, ...] = (), **more: Any
             ) -> dict[str, Any]:
    return {"theme_id": theme_id, "lead_org_id": lead["id"], "title": title,
            "summary": f"{title}の概要（社外秘）", "plan": "1. 需要調査 2. 車両2台で運行 3. 効果測定",
            "budget_yen": 4_800_000, "partner_org_ids": list(partners),
            "attachments": [{"label": "会社案内", "url": "https://example.jp/about.pdf"},
                            {"label": "体制", "text": "運行管理者2名"}], **more}


def criteria_ids(theme: dict[str, Any]) -> list[str]:
    return [x["id"] for x in theme["requirements"]["criteria"]]


# ---- matching ------------------------------------------------------------------------------------------------------


async def test_companies_that_fit_a_theme_and_themes_that_fit_a_company(node: Node) -> None:
    theme = await open_theme(node)
    orgs = await companies(node)
    got = await node.call(c.EP_MATCH_COMPANIES, {"theme_id": theme["id"], "actor": actor(KIKAKU)})
    assert got["words"] == ["配車", "システム", "車両", "運行", "地域", "見守", "連携"]
    ranked = [(m["org"]["name"], m["score"], m["fields"], m["words"]) for m in got["matches"]]
    assert ranked == [
        ("ベータ交通株式会社", 5, ["npo-1", "npo-3"], ["車両"]),
        ("株式会社アクメ", 4, ["npo-3"], ["配車", "運行"]),
        ("NPO法人ガンマ見守り", 3, ["npo-1"], ["見守"]),
    ]  # オメガ食品 shares nothing and is not listed
    assert all(m["org"]["members"] is None for m in got["matches"])
    assert [m["org"]["name"] for m in (await node.call(c.EP_MATCH_COMPANIES, {
        "theme_id": theme["id"], "actor": actor(JIMU)}))["matches"]][0] == "ベータ交通株式会社"
    for who in (ACME, KANKYO, None):
        await node.refused(errors.Forbidden, c.EP_MATCH_COMPANIES, {"theme_id": theme["id"], "actor": actor(who)})

    fits = await node.call(c.EP_MATCH_THEMES, {"actor": actor(ACME2), "org_id": orgs["acme"]["id"]})
    assert [(m["theme"]["title"], m["score"]) for m in fits["matches"]] == [(THEME["title"], 4)]
    none = await node.call(c.EP_MATCH_THEMES, {"actor": actor(OMEGA), "org_id": orgs["omega"]["id"]})
    assert none["matches"] == []
    await node.refused(errors.Forbidden, c.EP_MATCH_THEMES, {"actor": actor(BETA), "org_id": orgs["acme"]["id"]})


# ---- briefings ---------------------------------------------------------------------------------------------------


async def test_briefing_capacity_holds_under_concurrent_registrations(node: Node) -> None:
    theme = await open_theme(node)
    tid = theme["id"]
    orgs = await companies(node)
    starts = node.clock() + timedelta(days=3)
    new = {"actor": actor(KIKAKU), "theme_id": tid, "title": "第1回 説明会", "starts_at": starts.isoformat(),
           "ends_at": (starts + timedelta(hours=1)).isoformat(), "venue": "市役所 3階 会議室",
           "online_url": "https://meet.example.jp/abc", "capacity": 4}
    # Bad input and the wrong people: refused, nothing changed.
    await node.refused(errors.BadRequest, c.EP_BRIEFING_CREATE, {**new, "venue": "", "online_url": ""}, "venue")
    await node.refused(errors.BadRequest, c.EP_BRIEFING_CREATE, {**new, "ends_at": starts.isoformat()}, "ends")
    await node.refused(errors.BadRequest, c.EP_BRIEFING_CREATE, {**new, "capacity": 0}, "capacity")
    await node.refused(errors.BadRequest, c.EP_BRIEFING_CREATE,
                       {**new, "starts_at": (node.clock() - timedelta(hours=2)).isoformat(),
                        "ends_at": node.clock().isoformat()}, "future")
    await node.refused(errors.Forbidden, c.EP_BRIEFING_CREATE, {**new, "actor": actor(KANKYO)})
    await node.refused(errors.Forbidden, c.EP_BRIEFING_CREATE, {**new, "actor": actor(ACME)})
    briefing = await node.call(c.EP_BRIEFING_CREATE, new)
    bid = briefing["id"]
    assert briefing["seats_left"] == 4 and briefing["registrations"] == []

    # Twelve people of one company, all at once, for four seats.
    crowd = [Actor(user_id=f"user-crowd-{i:03d}", global_handle=f"crowd_{i:02d}@{NODE}",
                   display_name=f"参加者 {i}") for i in range(12)]
    for person in crowd:
        await node.call(c.EP_ORG_MEMBER_ADD, {"actor": actor(OMEGA), "org_id": orgs["omega"]["id"],
                                              "global_handle": person.global_handle})

    async def register(person: Actor) -> str:
        try:
            await node.call(c.EP_BRIEFING_REGISTER, {"actor": actor(person), "briefing_id": bid,
                                                     "org_id": orgs["omega"]["id"]})
            return "ok"
        except errors.Conflict as exc:
            assert "full" in exc.reason, exc.reason
            return "full"

    outcomes = await asyncio.gather(*(register(p) for p in crowd))
    assert outcomes.count("ok") == 4 and outcomes.count("full") == 8, outcomes
    assert await node.count(briefing_registrations) == 4
    async with node.svc.sessions() as s:
        assert (await s.execute(select(briefings.c.registered))).scalar_one() == 4

    # Full: the next one is refused with nothing changed; a cancellation frees a seat for someone else.
    lucky = [p for p, o in zip(crowd, outcomes, strict=True) if o == "ok"]
    waiting = [p for p, o in zip(crowd, outcomes, strict=True) if o == "full"]
    await node.refused(errors.Conflict, c.EP_BRIEFING_REGISTER, {
        "actor": actor(waiting[0]), "briefing_id": bid, "org_id": orgs["omega"]["id"]}, "full")
    await node.refused(errors.Conflict, c.EP_BRIEFING_REGISTER, {
        "actor": actor(lucky[0]), "briefing_id": bid, "org_id": orgs["omega"]["id"]}, "already registered")
    freed = await node.call(c.EP_BRIEFING_CANCEL, {"actor": actor(lucky[0]), "briefing_id": bid})
    assert freed["seats_left"] == 1 and freed["my_registration"] is None and freed["online_url"] == ""
    await node.refused(errors.NotFound, c.EP_BRIEFING_CANCEL, {"actor": actor(lucky[0]), "briefing_id": bid})
    mine = await node.call(c.EP_BRIEFING_REGISTER, {"actor": actor(waiting[0]), "briefing_id": bid,
                                                    "org_id": orgs["omega"]["id"]})
    assert mine["seats_left"] == 0 and mine["my_registration"]["org_name"] == "オメガ食品"
    assert mine["online_url"] == "https://meet.example.jp/abc" and mine["registrations"] is None

    # Only a member registers, and only for their own company.
    await node.refused(errors.Forbidden, c.EP_BRIEFING_REGISTER, {
        "actor": actor(OTHER), "briefing_id": bid, "org_id": orgs["omega"]["id"]}, "member")

    # The public sees seats, not who or where online; the owner sees who registered.
    public = await node.call(c.EP_BRIEFING_LIST, {"theme_id": tid})
    (b,) = public["briefings"]
    assert b["online"] is True and b["online_url"] == "" and b["registrations"] is None and b["seats_left"] == 0
    owner = await node.call(c.EP_BRIEFING_LIST, {"theme_id": tid, "actor": actor(KIKAKU)})
    regs = owner["briefings"][0]["registrations"]
    assert len(regs) == 4 and {r["org_name"] for r in regs} == {"オメガ食品"}
    assert waiting[0].global_handle in {r["global_handle"] for r in regs}

    # Once it has started, registration and cancellation are closed.
    node.clock.offset = timedelta(days=3, minutes=5)
    await node.refused(errors.Conflict, c.EP_BRIEFING_CANCEL, {"actor": actor(waiting[0]), "briefing_id": bid},
                       "started")
    assert await node.count(audit_log, audit_log.c.subject_kind == "briefing") == 4 + 1 + 1
    events = await node.events()
    seats = [e for t, e in events if t == "briefing_seats_changed"]
    assert [e["registered"] for e in seats][-2:] == [3, 4] and len(seats) == 6
    assert all("crowd" not in json.dumps(e) for _, e in events)  # no person in the events
    (scheduled,) = [e for t, e in events if t == "briefing_scheduled"]
    assert scheduled["online"] is True and "meet.example.jp" not in json.dumps(scheduled)


# ---- proposals -----------------------------------------------------------------------------------------------------


async def test_proposals_are_confidential_and_change_only_until_the_deadline(node: Node) -> None:
    theme = await open_theme(node)
    tid = theme["id"]
    orgs = await companies(node)
    other_theme = await open_theme(node, owner=KANKYO, dept_name="環境課")
    await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                             "global_handle": EV1.global_handle})
    await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": other_theme["id"],
                                             "global_handle": EV3.global_handle})

    single = await node.call(c.EP_PROPOSAL_SUBMIT, {"actor": actor(ACME2), **proposal(tid, orgs["acme"], "AI配車")})
    assert single["version"] == 1 and single["relation"] == ["lead"] and single["may_edit"]
    assert single["budget_yen"] == 4_800_000 and single["attachments"][1]["text"] == "運行管理者2名"
    consortium = await node.call(c.EP_PROPOSAL_SUBMIT, {
        "actor": actor(BETA), **proposal(tid, orgs["beta"], "乗合タクシーと見守り", (orgs["gamma"]["id"],))})
    assert [(p["org_name"], p["status"]) for p in consortium["partners"]] == [("NPO法人ガンマ見守り", "pending")]

    # One proposal per lead organisation and theme.
    await node.refused(errors.Conflict, c.EP_PROPOSAL_SUBMIT,
                       {"actor": actor(ACME), **proposal(tid, orgs["acme"], "二つ目")}, "already has a proposal")

    # Who reads what: every forbidden reader gets 404, exactly as for an id that does not exist.
    for who in (OMEGA, BETA, GAMMA, OTHER, KANKYO, EV3):
        await node.refused(errors.NotFound, c.EP_PROPOSAL_GET, {"actor": actor(who), "proposal_id": single["id"]},
                           "no proposal")
    for who in (OMEGA, ACME, OTHER, KANKYO, EV3):
        await node.refused(errors.NotFound, c.EP_PROPOSAL_GET,
                           {"actor": actor(who), "proposal_id": consortium["id"]}, "no proposal")
    await node.refused(errors.NotFound, c.EP_PROPOSAL_GET,
                       {"actor": actor(ACME), "proposal_id": "00000000-0000-4000-8000-000000000000"}, "no proposal")
    for who, rel in ((ACME, ["lead"]), (EV1, ["evaluator"]), (KIKAKU, ["manager"]), (JIMU, ["manager"])):
        seen = await node.call(c.EP_PROPOSAL_GET, {"actor": actor(who), "proposal_id": single["id"]})
        assert seen["relation"] == rel and seen["summary"] == "AI配車の概要（社外秘）", who
    assert (await node.call(c.EP_PROPOSAL_GET, {"actor": actor(GAMMA), "proposal_id": consortium["id"]}))[
        "relation"] == ["partner"]
    lists = {}
    for who in (ACME, BETA, GAMMA, OMEGA, EV1, EV3, KIKAKU, KANKYO):
        got = await node.call(c.EP_PROPOSAL_LIST, {"actor": actor(who), "theme_id": tid})
        lists[who.global_handle] = sorted(p["title"] for p in got["proposals"])
    both = sorted(["AI配車", "乗合タクシーと見守り"])
    assert lists == {ACME.global_handle: ["AI配車"], BETA.global_handle: ["乗合タクシーと見守り"],
                     GAMMA.global_handle: ["乗合タクシーと見守り"], OMEGA.global_handle: [], EV1.global_handle: both,
                     EV3.global_handle: [], KIKAKU.global_handle: both, KANKYO.global_handle: []}
    mine = await node.call(c.EP_PROPOSAL_LIST, {"actor": actor(GAMMA), "mine": True})
    assert [p["title"] for p in mine["proposals"]] == ["乗合タクシーと見守り"]

    # Editing: the lead's members, the version they saw; a partner reads but does not edit.
    edit = {**proposal(tid, orgs["acme"], "AI配車（改訂）"), "budget_yen": 5_000_000}
    del edit["theme_id"], edit["lead_org_id"]
    edited = await node.call(c.EP_PROPOSAL_UPDATE, {"actor": actor(ACME), "proposal_id": single["id"],
                                                    "version": 1, **edit})
    assert edited["version"] == 2 and edited["title"] == "AI配車（改訂）" and edited["budget_yen"] == 5_000_000
    await node.refused(errors.Conflict, c.EP_PROPOSAL_UPDATE, {"actor": actor(ACME), "proposal_id": single["id"],
                                                               "version": 1, **edit, "title": "古い版"}, "version 2")
    await node.refused(errors.Forbidden, c.EP_PROPOSAL_UPDATE, {
        "actor": actor(GAMMA), "proposal_id": consortium["id"], "version": 1, **edit}, "lead")
    await node.refused(errors.NotFound, c.EP_PROPOSAL_UPDATE, {
        "actor": actor(OMEGA), "proposal_id": single["id"], "version": 2, **edit})
    await node.refused(errors.NotFound, c.EP_PROPOSAL_WITHDRAW, {"actor": actor(BETA), "proposal_id": single["id"]})
    # A partner confirms for its own organisation only.
    await node.refused(errors.Forbidden, c.EP_PROPOSAL_PARTNER, {
        "actor": actor(BETA), "proposal_id": consortium["id"], "org_id": orgs["gamma"]["id"], "decision": "confirm"})
    ok = await node.call(c.EP_PROPOSAL_PARTNER, {"actor": actor(GAMMA), "proposal_id": consortium["id"],
                                                 "org_id": orgs["gamma"]["id"], "decision": "confirm"})
    assert ok["partners"][0]["status"] == "confirmed" and ok["partners"][0]["answered_by"] == GAMMA.global_handle

    # Bad input: a clear reason, nothing changed.
    base = {"actor": actor(ACME), **proposal(tid, orgs["omega"], "x")}
    for payload, words in (
        ({**base, "budget_yen": -1}, "budget_yen"),
        ({**base, "budget_yen": 1.5}, "budget_yen"),
        ({**base, "budget_yen": "百万円"}, "budget_yen"),
        ({**base, "title": ""}, "title"),
        ({**base, "attachments": [{"label": "資料"}]}, "address or a text"),
        ({**base, "attachments": [{"label": "資料", "url": "javascript:alert(1)"}]}, "http"),
        ({**base, "partner_org_ids": [orgs["gamma"]["id"], orgs["gamma"]["id"]]}, "once"),
        ({**base, "secret": "x"}, "secret"),
    ):
        await node.refused(errors.BadRequest, c.EP_PROPOSAL_SUBMIT, payload, words)
    await node.refused(errors.BadRequest, c.EP_PROPOSAL_SUBMIT, {
        "actor": actor(OMEGA), **proposal(tid, orgs["omega"], "x", (orgs["omega"]["id"],))}, "its own partner")
    dept_id = (await node.call(c.EP_ORG_LIST, {"kind": "department"}))["orgs"][0]["id"]
    await node.refused(errors.BadRequest, c.EP_PROPOSAL_SUBMIT, {
        "actor": actor(OMEGA), **proposal(tid, orgs["omega"], "x", (dept_id,))}, "department")
    await node.refused(errors.Forbidden, c.EP_PROPOSAL_SUBMIT, {
        "actor": actor(OTHER), **proposal(tid, orgs["omega"], "x")}, "member")

    # After the deadline: nothing is submitted, edited or confirmed any more.
    node.clock.offset = timedelta(days=30, seconds=1)
    await node.refused(errors.Conflict, c.EP_PROPOSAL_SUBMIT, {
        "actor": actor(OMEGA), **proposal(tid, orgs["omega"], "遅れた提案")}, "deadline")
    await node.refused(errors.Conflict, c.EP_PROPOSAL_UPDATE, {
        "actor": actor(ACME), "proposal_id": single["id"], "version": 2, **edit, "title": "締切後"}, "deadline")
    await node.refused(errors.Conflict, c.EP_PROPOSAL_PARTNER, {
        "actor": actor(GAMMA), "proposal_id": consortium["id"], "org_id": orgs["gamma"]["id"],
        "decision": "decline"}, "deadline")
    late = await node.call(c.EP_PROPOSAL_GET, {"actor": actor(ACME), "proposal_id": single["id"]})
    assert late["open_for_changes"] is False and late["may_edit"] is False

    # A withdrawal is final; an evaluator no longer sees a withdrawn proposal; the owner still does.
    gone = await node.call(c.EP_PROPOSAL_WITHDRAW, {"actor": actor(ACME2), "proposal_id": single["id"],
                                                    "note": "体制が整わないため"})
    assert gone["status"] == "withdrawn"
    await node.refused(errors.Conflict, c.EP_PROPOSAL_WITHDRAW, {"actor": actor(ACME), "proposal_id": single["id"]})
    await node.refused(errors.NotFound, c.EP_PROPOSAL_GET, {"actor": actor(EV1), "proposal_id": single["id"]})
    assert (await node.call(c.EP_PROPOSAL_GET, {"actor": actor(KIKAKU), "proposal_id": single["id"]}))[
        "status"] == "withdrawn"

    async with node.svc.sessions() as s:
        actions = [(r.subject_id, r.action, r.actor) for r in await s.execute(
            select(audit_log).where(audit_log.c.subject_kind == "proposal").order_by(audit_log.c.seq))]
    assert actions == [(single["id"], "submitted", ACME2.global_handle),
                       (consortium["id"], "submitted", BETA.global_handle),
                       (single["id"], "updated", ACME.global_handle),
                       (consortium["id"], "partner_confirmed", GAMMA.global_handle),
                       (single["id"], "withdrawn", ACME2.global_handle)]
    # The events say that proposals came and went; never who sent them or what they say.
    events = await node.events()
    received = [e for t, e in events if t in ("proposal_received", "proposal_withdrawn")]
    assert len(received) == 3
    text = json.dumps([e for t, e in events if not t.startswith("organisation_")], ensure_ascii=False)
    for secret in ("AI配車", "社外秘", "アクメ", "乗合タクシーと見守り", "4800000"):
        assert secret not in text, secret


# ---- the selection ---------------------------------------------------------------------------------------------------


async def _two_proposals(node: Node) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any],
                                              dict[str, Any]]:
    theme = await open_theme(node)
    tid = theme["id"]
    orgs = await companies(node)
    # ACME's partner (オメガ) never confirms; BETA's partner (ガンマ) does.
    a = await node.call(c.EP_PROPOSAL_SUBMIT, {"actor": actor(ACME), **proposal(tid, orgs["acme"], "AI配車",
                                                                                 (orgs["omega"]["id"],))})
    b = await node.call(c.EP_PROPOSAL_SUBMIT, {"actor": actor(BETA), **proposal(tid, orgs["beta"], "乗合タクシー",
                                                                                 (orgs["gamma"]["id"],))})
    await node.call(c.EP_PROPOSAL_PARTNER, {"actor": actor(GAMMA), "proposal_id": b["id"],
                                            "org_id": orgs["gamma"]["id"], "decision": "confirm"})
    return theme, orgs, a, b


def scores(theme: dict[str, Any], *values: int) -> dict[str, int]:
    return dict(zip(criteria_ids(theme), values, strict=True))


async def test_fair_selection_conflicts_independent_scores_close_and_publish(node: Node) -> None:
    theme, orgs, a, b = await _two_proposals(node)
    tid = theme["id"]
    for who in (EV1, EV2, ACME2):  # ACME2 works for ACME: they must declare that conflict
        await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                                 "global_handle": who.global_handle})
    await node.refused(errors.Conflict, c.EP_EVALUATOR_APPOINT, {
        "actor": actor(JIMU), "theme_id": tid, "global_handle": EV1.global_handle}, "already")
    for who in (KIKAKU, ACME):
        await node.refused(errors.Forbidden, c.EP_EVALUATOR_APPOINT, {
            "actor": actor(who), "theme_id": tid, "global_handle": EV3.global_handle}, "secretariat")
    await node.refused(errors.BadRequest, c.EP_EVALUATOR_APPOINT, {
        "actor": actor(JIMU), "theme_id": tid, "global_handle": "Not A Handle"}, "global_handle")

    # Before the deadline there is nothing to evaluate yet.
    declare = {"actor": actor(EV1), "proposal_id": a["id"], "conflicted": False}
    await node.refused(errors.Conflict, c.EP_REVIEW_DECLARE, declare, "deadline")
    await node.refused(errors.Conflict, c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid}, "deadline")
    node.clock.offset = timedelta(days=30, seconds=1)

    # Declarations first; scoring without one, or with a conflict, is refused.
    await node.refused(errors.Conflict, c.EP_REVIEW_SCORE, {"actor": actor(EV1), "proposal_id": a["id"],
                                                            "scores": scores(theme, 5, 4, 3), "comment": "良い"},
                       "declare")
    await node.refused(errors.Forbidden, c.EP_REVIEW_DECLARE, {**declare, "actor": actor(KIKAKU)}, "evaluators")
    await node.refused(errors.NotFound, c.EP_REVIEW_DECLARE, {**declare, "actor": actor(EV3)}, "no proposal")
    await node.refused(errors.BadRequest, c.EP_REVIEW_DECLARE, {**declare, "conflicted": True}, "conflict")
    await node.refused(errors.Conflict, c.EP_REVIEW_DECLARE, {**declare, "actor": actor(ACME2)}, "declare the conf")
    for who, prop, conflicted in ((EV1, a, False), (EV1, b, False), (EV2, a, True), (EV2, b, False),
                                  (ACME2, a, True), (ACME2, b, False)):
        await node.call(c.EP_REVIEW_DECLARE, {"actor": actor(who), "proposal_id": prop["id"],
                                              "conflicted": conflicted,
                                              "reason": "前職の同僚が提案者" if conflicted else ""})
    await node.refused(errors.Conflict, c.EP_REVIEW_DECLARE, {**declare, "conflicted": True, "reason": "x"},
                       "final")
    await node.refused(errors.Conflict, c.EP_REVIEW_SCORE, {"actor": actor(EV2), "proposal_id": a["id"],
                                                            "scores": scores(theme, 1, 1, 1), "comment": "x"},
                       "conflict")
    # Scores: every criterion once, on the 0..5 scale, with a comment.
    sc = {"actor": actor(EV1), "proposal_id": a["id"], "comment": "配車の実績が豊富"}
    await node.refused(errors.BadRequest, c.EP_REVIEW_SCORE, {**sc, "scores": scores(theme, 6, 4, 3)}, "5")
    await node.refused(errors.BadRequest, c.EP_REVIEW_SCORE, {**sc, "scores": scores(theme, 5, 4, 3),
                                                              "comment": ""}, "comment")
    await node.refused(errors.Unprocessable, c.EP_REVIEW_SCORE,
                       {**sc, "scores": dict(list(scores(theme, 5, 4, 3).items())[:2])}, "missing")
    await node.refused(errors.Unprocessable, c.EP_REVIEW_SCORE, {
        **sc, "scores": {**scores(theme, 5, 4, 3), "00000000-0000-4000-8000-000000000000": 3}}, "not a criterion")

    await node.call(c.EP_REVIEW_SCORE, {**sc, "scores": scores(theme, 2, 2, 2)})
    await node.call(c.EP_REVIEW_SCORE, {**sc, "scores": scores(theme, 5, 4, 3)})  # changed before the close
    await node.call(c.EP_REVIEW_SCORE, {"actor": actor(EV1), "proposal_id": b["id"],
                                        "scores": scores(theme, 4, 4, 4), "comment": "地域との連携が具体的"})
    await node.call(c.EP_REVIEW_SCORE, {"actor": actor(EV2), "proposal_id": b["id"],
                                        "scores": scores(theme, 5, 3, 5), "comment": "見守りと一体で良い"})

    # Independence: an evaluator sees only their own scores; the secretariat sees who has done what, no values.
    ev2 = await node.call(c.EP_REVIEW_MINE, {"theme_id": tid, "actor": actor(EV2)})
    by = {r["proposal_title"]: r for r in ev2["reviews"]}
    assert by["AI配車"]["conflicted"] is True and by["AI配車"]["scores"] is None
    assert sorted(by["乗合タクシー"]["scores"].values()) == [3, 5, 5] and ev2["open_for_review"] is True
    assert "配車の実績" not in json.dumps(ev2, ensure_ascii=False)
    await node.refused(errors.Forbidden, c.EP_REVIEW_MINE, {"theme_id": tid, "actor": actor(KIKAKU)})
    progress = await node.call(c.EP_EVALUATION_STATUS, {"theme_id": tid, "actor": actor(JIMU)})
    states = {(x["evaluator"], x["proposal_id"]): x["state"] for x in progress["progress"]}
    assert states == {(EV1.global_handle, a["id"]): "scored", (EV1.global_handle, b["id"]): "scored",
                      (EV2.global_handle, a["id"]): "conflicted", (EV2.global_handle, b["id"]): "scored",
                      (ACME2.global_handle, a["id"]): "conflicted", (ACME2.global_handle, b["id"]): "to_score"}
    assert progress["missing"] == ["1 review(s) are not scored yet"] and progress["ranking"] is None
    assert "地域との連携" not in json.dumps(progress, ensure_ascii=False)
    for who in (ACME, EV1, KANKYO):
        await node.refused(errors.Forbidden, c.EP_EVALUATION_STATUS, {"theme_id": tid, "actor": actor(who)})
    # No result for anyone before the close; the close waits for the last score.
    for who in (None, ACME, EV1, JIMU):
        await node.refused(errors.NotFound, c.EP_RESULT_GET, {"theme_id": tid, "actor": actor(who)})
    reason = await node.refused(errors.Conflict, c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid})
    assert "not scored" in reason
    await node.refused(errors.Conflict, c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid,
                                                              "selected": [b["id"]], "reasons": "x"}, "close")
    await node.call(c.EP_REVIEW_SCORE, {"actor": actor(ACME2), "proposal_id": b["id"],
                                        "scores": scores(theme, 3, 2, 4), "comment": "費用がやや高い"})
    await node.refused(errors.Forbidden, c.EP_EVALUATION_CLOSE, {"actor": actor(KIKAKU), "theme_id": tid})
    closed = await node.call(c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid})
    # Totals: each evaluator's sum(score × weight) / 100, averaged over those without a conflict.
    #   AI配車: EV1 only: (5·50 + 4·30 + 3·20)/100 = 4.3
    #   乗合タクシー: EV1 4.0, EV2 (250+90+100)/100 = 4.4, ACME2 (150+60+80)/100 = 2.9 → 11.3/3 = 3.767
    ranking = [(x["title"], x["rank"], x["total"], x["evaluators_counted"]) for x in closed["ranking"]]
    assert ranking == [("AI配車", 1, 4.3, 1), ("乗合タクシー", 2, 3.767, 3)]
    assert [x["average"] for x in closed["ranking"][1]["averages"]] == [4.0, 3.0, 4.333]
    assert closed["closed_at"] and closed["missing"] == []
    # Closed: scores and declarations are frozen, the close happens once.
    await node.refused(errors.Conflict, c.EP_REVIEW_SCORE, {"actor": actor(EV1), "proposal_id": b["id"],
                                                            "scores": scores(theme, 0, 0, 0), "comment": "x"},
                       "closed")
    await node.refused(errors.Conflict, c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid}, "already")
    await node.refused(errors.Conflict, c.EP_PROPOSAL_WITHDRAW, {"actor": actor(ACME), "proposal_id": a["id"]},
                       "closed")
    # The owner department sees the frozen ranking; the public does not until publication.
    assert (await node.call(c.EP_RESULT_GET, {"theme_id": tid, "actor": actor(KIKAKU)}))["status"] == "closed"
    await node.refused(errors.NotFound, c.EP_RESULT_GET, {"theme_id": tid, "actor": actor(ACME)})

    # The gate to phase 3 waits for a published result with a pilot candidate.
    move = {"actor": actor(KIKAKU), "theme_id": tid, "to_phase": 3, "note": "実証設計へ"}
    await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, move, "result must be published")
    # A consortium whose partner never confirmed cannot be selected; unknown ids are refused.
    await node.refused(errors.Conflict, c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid,
                                                              "selected": [a["id"]], "reasons": "x"}, "confirmed")
    await node.refused(errors.Unprocessable, c.EP_RESULT_PUBLISH, {
        "actor": actor(JIMU), "theme_id": tid, "selected": ["00000000-0000-4000-8000-000000000000"],
        "reasons": "x"})
    await node.refused(errors.BadRequest, c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid,
                                                                "selected": [b["id"]], "reasons": ""}, "reasons")
    await node.refused(errors.Forbidden, c.EP_RESULT_PUBLISH, {"actor": actor(KIKAKU), "theme_id": tid,
                                                               "selected": [b["id"]], "reasons": "x"})
    reasons = ("合計点は2位だが、共同事業体の見守り体制が実証に不可欠で、"
               "1位の提案は共同事業者の参加確認が得られなかった。")
    published = await node.call(c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid,
                                                      "selected": [b["id"]], "reasons": reasons})
    assert [x["title"] for x in published["pilot_candidates"]] == ["乗合タクシー"]
    await node.refused(errors.Conflict, c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid,
                                                              "selected": [b["id"]], "reasons": "x"}, "already")

    # Public now: the result, the criteria, the totals, the anonymised averages; never texts or who scored what.
    public = await node.call(c.EP_RESULT_GET, {"theme_id": tid})
    assert public["status"] == "published" and public["reasons"] == reasons
    assert [(x["name"], x["weight"]) for x in public["criteria"]] == list(CRITERIA)
    assert [(x["title"], x["total"], x["selected"]) for x in public["ranking"]] == [
        ("AI配車", 4.3, False), ("乗合タクシー", 3.767, True)]
    assert public["ranking"][1]["partner_names"] == ["NPO法人ガンマ見守り"]
    dumped = json.dumps(public, ensure_ascii=False)
    for secret in ("社外秘", "需要調査", "4800000", "hyoka", "acme_two", "地域との連携", "example.jp/about"):
        assert secret not in dumped, secret
    # The proposals' own texts stay with their authors, evaluators, the owner and the secretariat.
    for who in (OMEGA, OTHER, KANKYO, EV3):
        await node.refused(errors.NotFound, c.EP_PROPOSAL_GET, {"actor": actor(who), "proposal_id": b["id"]})
    assert (await node.call(c.EP_PROPOSAL_GET, {"actor": actor(EV2), "proposal_id": b["id"]}))["plan"]

    moved = await node.call(c.EP_THEME_ADVANCE, move)
    assert moved["phase"] == 3
    history = await node.call(c.EP_THEME_HISTORY, {"theme_id": tid, "actor": actor(JIMU)})
    actions = [e["action"] for e in history["entries"]]
    assert actions[-6:] == ["evaluator_appointed", "evaluator_appointed", "evaluator_appointed",
                            "evaluation_closed", "result_published", "phase_advanced"]
    assert "配車の実績" not in json.dumps(history, ensure_ascii=False)  # scores and comments are not in it
    assert await node.count(audit_log, audit_log.c.subject_kind == "review") == 6 + 5
    async with node.svc.sessions() as s:
        rescored = (await s.execute(select(audit_log).where(audit_log.c.action == "rescored"))).one()
    assert rescored.before["scores"] == {"実現可能性": 2, "費用対効果": 2, "地域への波及": 2}
    assert rescored.after["scores"] == {"実現可能性": 5, "費用対効果": 4, "地域への波及": 3}

    types = [t for t, _ in await node.events()]
    assert types.count("evaluator_appointed") == 3 and types[-3:] == ["evaluation_closed", "result_published",
                                                                     "theme_phase_advanced"]
    # From phase 3 the move to 4 waits for the pilot's design (tests/projects/test_projects_pilots.py); phases never go
    # back.
    await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, {**move, "to_phase": 4, "note": "実証終了"},
                       "the pilot plan must be saved")
    await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, move, "only forward")


async def test_a_result_without_a_pilot_candidate_keeps_the_theme_in_phase_two(node: Node) -> None:
    theme, _orgs, _a, b = await _two_proposals(node)
    tid = theme["id"]
    await node.call(c.EP_PROPOSAL_WITHDRAW, {"actor": actor(ACME), "proposal_id": _a["id"]})
    for who in (EV1, EV2):
        await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                                 "global_handle": who.global_handle})
    node.clock.offset = timedelta(days=31)
    # Every evaluator declares a conflict: nobody can score it, and the close says so.
    for who in (EV1, EV2):
        await node.call(c.EP_REVIEW_DECLARE, {"actor": actor(who), "proposal_id": b["id"], "conflicted": True,
                                              "reason": "親族が勤務"})
    reason = await node.refused(errors.Conflict, c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid})
    assert "appoint another evaluator" in reason
    await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                             "global_handle": EV3.global_handle})
    await node.call(c.EP_REVIEW_DECLARE, {"actor": actor(EV3), "proposal_id": b["id"], "conflicted": False})
    await node.call(c.EP_REVIEW_SCORE, {"actor": actor(EV3), "proposal_id": b["id"],
                                        "scores": scores(theme, 1, 1, 1), "comment": "要件を満たさない"})
    closed = await node.call(c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid})
    assert [(x["title"], x["total"]) for x in closed["ranking"]] == [("乗合タクシー", 1.0)]  # withdrawn ones drop
    await node.call(c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid, "selected": [],
                                          "reasons": "要件を満たす提案がなかったため、再公募とする。"})
    reason = await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, {"actor": actor(JIMU), "theme_id": tid,
                                                                      "to_phase": 3, "note": "次へ"})
    assert "at least one pilot candidate" in reason
    assert (await node.call(c.EP_RESULT_GET, {"theme_id": tid}))["pilot_candidates"] == []
