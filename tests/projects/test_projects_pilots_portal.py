"""The co-creation pages of phase 3 (実証設計) and phase 4 (成果定着) and the public cases over HTTP (the gateway app
in-process, httpx), with the real identity and projects services on a real nats-server, the projects service on
SQLite and on PostgreSQL: each page renders for who may, "not found" (404) for everyone else and the login page
for visitors; a form without its CSRF token changes nothing; the service's refusals (a stale plan, a KPI target in
the wrong direction, a company changing the roles, a signature for another organisation) show their reason with
their status. Phases 1 and 2 are made over NATS (tests/projects/test_projects_calls.py's helpers), as their pages
would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import func, select

from gateway import words as gw
from identity.app import IdentityService
from services.projects import models
from services.projects.app import ProjectsService
from tests.projects.test_projects_calls import (
    BETA,
    EV1,
    EV3,
    GAMMA,
    JIMU,
    KIKAKU,
    Clock,
    Node,
    actor,
    companies,
    open_theme,
    proposal,
    scores,
)
from tests.projects.test_projects_portal import PW, csrf_of, post
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import pilots as pc
from towntip.kernel.contracts import projects as c
from towntip.kernel.settings import ServiceSettings

NODE = "testnode"  # the actors of tests/projects/test_projects_calls.py are people of this node
BASE = "http://portal.test"
# Who logs in: the owner department's staff, staff of another department, the secretariat, the two company
# parties (ベータ交通 leads, ガンマ is its confirmed partner), a company that is no party (オメガ).
PEOPLE = (("kikaku", "staff"), ("kankyo", "staff"), ("jimu", "secretariat"), ("beta", None), ("gamma", None),
          ("omega", None))


class Portal:
    def __init__(self, app: Any, node: Node) -> None:
        self.app, self.node = app, node

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False)

    async def as_(self, handle: str) -> httpx.AsyncClient:
        client = self.client()
        r = await post(client, "/login", {"login": handle, "password": PW, "next": "/themes"})
        assert r.status_code == 303, r.text
        return client

    async def count(self, table: Any) -> int:
        async with self.node.svc.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table))).scalar_one()


@pytest.fixture
async def portal(nats_server, database, tmp_path) -> AsyncIterator[Portal]:
    url, schema = database
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=BASE))
    clock = Clock()
    projects = ProjectsService(ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url,
                                               data_dir=str(tmp_path / "pj"), database_url=url,
                                               database_schema=schema or "", public_url=BASE), clock=clock)
    async with started(ident, projects):
        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, [(handle, handle, role) for handle, role in PEOPLE])
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,projects",
                              public_url=BASE)
            async with app.router.lifespan_context(app):
                yield Portal(app, Node(nc, projects, clock))
        finally:
            await nc.close()


async def to_phase3(node: Node) -> tuple[str, dict[str, str]]:
    """A theme in phase 3 whose pilot candidate is ベータ交通's consortium with ガンマ (confirmed)."""
    theme = await open_theme(node, days=2)
    tid = theme["id"]
    orgs = await companies(node)
    b = await node.call(c.EP_PROPOSAL_SUBMIT, {"actor": actor(BETA), **proposal(tid, orgs["beta"], "乗合タクシー",
                                                                                 (orgs["gamma"]["id"],))})
    await node.call(c.EP_PROPOSAL_PARTNER, {"actor": actor(GAMMA), "proposal_id": b["id"],
                                            "org_id": orgs["gamma"]["id"], "decision": "confirm"})
    for who in (EV1, EV3):
        await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                                 "global_handle": who.global_handle})
    node.clock.offset = timedelta(days=3)
    for who in (EV1, EV3):
        await node.call(c.EP_REVIEW_DECLARE, {"actor": actor(who), "proposal_id": b["id"], "conflicted": False})
        await node.call(c.EP_REVIEW_SCORE, {"actor": actor(who), "proposal_id": b["id"],
                                            "scores": scores(theme, 4, 4, 4), "comment": "妥当"})
    await node.call(c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid})
    await node.call(c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid, "selected": [b["id"]],
                                          "reasons": "見守りと一体の運行体制"})
    await node.call(c.EP_THEME_ADVANCE, {"actor": actor(KIKAKU), "theme_id": tid, "to_phase": 3, "note": "実証設計へ"})
    dept = (await node.call(c.EP_ORG_LIST, {"kind": "department"}))["orgs"][0]["id"]
    return tid, {"dept": dept, **{k: v["id"] for k, v in orgs.items()}}


AGREEMENT = "実証実験に関する協定書\n第1条（目的）予約型乗合交通の実証実験に必要な事項を定める。"
PLAN = {"objective": "週2回以上の外出を検証する", "scope": "団地の75歳以上 約300人",
        "method": "乗合タクシー2台を平日運行",
        "period_start": "2027-04-01", "period_end": "2027-09-30", "budget_yen": "4,800,000", "risks": "運転手の確保",
        "data_handling": "氏名と住所は市が保有"}
KPI = {"name": "週あたり外出回数", "unit": "回/週", "baseline": "1.2", "target": "2.0", "direction": "increase",
       "method": "利用者アンケート", "data_source": "市の調査"}


async def design_the_pilot(p: Portal, tid: str, orgs: dict[str, str]) -> str:
    """Phase 3 through the pages: roles for the three parties, a milestone, a KPI, the plan, an agreement signed by
    all three. Returns the agreement's id."""
    kikaku = await p.as_("kikaku")
    page = f"/themes/{tid}/pilot"
    for org, title in ((orgs["dept"], "全体統括"), (orgs["beta"], "運行"), (orgs["gamma"], "見守り")):
        r = await post(kikaku, f"{page}/roles", {"org_id": org, "title": title, "responsibilities": f"{title}の責任"},
                       form_page=page)
        assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/milestones", {"title": "運行開始", "due_on": "2027-04-01"}, form_page=page)
    assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/kpis", KPI, form_page=page)
    assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/plan", {"version": "0", **PLAN}, form_page=page)
    assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/agreements", {"kind": "agreement", "title": "実証実験に関する協定書",
                                                  "body": AGREEMENT}, form_page=page)
    assert r.status_code == 303, r.text
    pilot = await p.node.call(pc.EP_PILOT_GET, {"theme_id": tid, "actor": actor(KIKAKU)})
    aid = pilot["agreements"][0]["id"]
    for handle, org in (("kikaku", orgs["dept"]), ("beta", orgs["beta"]), ("gamma", orgs["gamma"])):
        client = kikaku if handle == "kikaku" else await p.as_(handle)
        a_page = await client.get(f"/themes/{tid}/agreements/{aid}")
        sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', a_page.text).group(1)  # type: ignore[union-attr]
        r = await client.post(f"/themes/{tid}/agreements/{aid}/sign", data={
            "csrf": csrf_of(a_page), "org_id": org, "version": "1", "sha256": sha})
        assert r.status_code == 303, r.text
    return aid


async def test_the_pilot_workspace_is_for_its_parties_and_refusals_show_their_reason(portal: Portal) -> None:
    p = portal
    tid, orgs = await to_phase3(p.node)
    page = f"/themes/{tid}/pilot"
    kikaku, beta, omega, kankyo = [await p.as_(h) for h in ("kikaku", "beta", "omega", "kankyo")]

    # Who reads the workspace: the managers and the company parties; others "not found", visitors the login page.
    r = await kikaku.get(page)
    assert r.status_code == 200, r.text
    for words in ("実証設計", "企画政策課", "ベータ交通株式会社", "NPO法人ガンマ見守り", "役割分担", "add-role",
                  "成果定着フェーズへ進むために必要なこと"):
        assert words in r.text, words
    r = await (await p.as_("jimu")).get(page)  # the secretariat manages every theme
    assert r.status_code == 200 and 'id="add-role"' in r.text and 'id="advance-4"' in r.text
    r = await beta.get(page)
    assert r.status_code == 200 and "ベータ交通株式会社" in r.text and 'id="add-role"' not in r.text
    for outsider in (omega, kankyo):
        r = await outsider.get(page)
        assert r.status_code == 404 and "見つかりません" in r.text and "役割分担" not in r.text
    assert (await p.client().get(page)).headers["location"].startswith("/login")
    # The theme's page links the workspace for its parties only, and shows the gate next to the move control.
    r = await kikaku.get(f"/themes/{tid}")
    assert 'id="pilot-link"' in r.text and 'id="gate-missing"' in r.text
    for words in ("役割分担で「企画政策課」の役割を決める", "KPIを1つ以上設定する", "実証計画書を保存する"):
        assert words in r.text, words
    r = await kikaku.get(f"{page}?lang=en")
    assert "the pilot plan must be saved" in r.text and "Pilot design" in r.text
    assert (await kikaku.get(f"{page}?lang=ja")).status_code == 200  # back to Japanese (a cookie)
    assert 'id="pilot-link"' not in (await omega.get(f"/themes/{tid}")).text

    # A form without its CSRF token is refused before the service is asked; nothing is stored.
    r = await kikaku.post(f"{page}/roles", data={"org_id": orgs["dept"], "title": "統括", "responsibilities": "x"})
    assert r.status_code == 403 and await p.count(models.pilot_roles) == 0
    # A company party reads but does not change the roles; an outsider's post is "not found".
    r = await post(beta, f"{page}/roles", {"org_id": orgs["beta"], "title": "運行", "responsibilities": "x"},
                   form_page=page)
    assert r.status_code == 403 and await p.count(models.pilot_roles) == 0, r.text
    # A KPI whose target lies the wrong way from its baseline: 400 with the reason, nothing stored.
    r = await post(kikaku, f"{page}/kpis", {**KPI, "target": "1.0"}, form_page=page)
    assert r.status_code == 400 and "基準値（1.2）より大きく" in r.text and await p.count(models.pilot_kpis) == 0
    r = await post(kikaku, f"{page}/kpis", {**KPI, "baseline": "たくさん"}, form_page=page)
    assert r.status_code == 400 and "「基準値」には数値を" in r.text and await p.count(models.pilot_kpis) == 0
    # Not an id: "not found", as for an id that does not exist; a bad id in a form: 400, never a 500.
    assert (await kikaku.get("/themes/not-an-id/pilot")).status_code == 404
    assert (await kikaku.get(f"/themes/{tid}/agreements/not-an-id")).status_code == 404
    r = await post(kikaku, f"{page}/roles", {"org_id": "not-an-id", "title": "統括", "responsibilities": "x"},
                   form_page=page)
    assert r.status_code == 400 and await p.count(models.pilot_roles) == 0

    aid = await design_the_pilot(p, tid, orgs)
    r = await kikaku.get(page)
    for words in ("全体統括", "運行開始", "週あたり外出回数", "1.2 → 2 回/週", "4,800,000 円", "版 1",
                  "実証実験に関する協定書", "全者署名済み", "フェーズ4へ進む準備が整っています"):
        assert words in r.text, words
    # A stale edit of the plan (version 0 again, after version 1): 409 and what to do about it.
    r = await post(kikaku, f"{page}/plan", {"version": "0", **PLAN, "scope": "別の範囲"}, form_page=page)
    assert r.status_code == 409 and "他の人が先に新しい版を保存しました" in r.text, r.text
    assert "別の範囲" in r.text  # the edit is kept in the form, not lost

    # The agreement's page: version, sha256, who signed; a company cannot sign for another organisation.
    r = await beta.get(f"/themes/{tid}/agreements/{aid}")
    assert r.status_code == 200 and "全者署名済み" in r.text and "第1条（目的）" in r.text
    assert r.text.count("有効") >= 3
    sha = re.search(r'title="([0-9a-f]{64})"', r.text).group(1)  # type: ignore[union-attr]
    r = await post(beta, f"/themes/{tid}/agreements/{aid}/sign", {"org_id": orgs["gamma"], "version": "1",
                                                                  "sha256": sha},
                   form_page=f"/themes/{tid}/agreements/{aid}")
    assert r.status_code == 403 and "ガンマ" in r.text, r.text
    r = await post(beta, f"/themes/{tid}/agreements/{aid}/sign", {"org_id": orgs["beta"], "version": "1",
                                                                  "sha256": sha},
                   form_page=f"/themes/{tid}/agreements/{aid}")
    assert r.status_code == 409 and "すでに署名済み" in r.text and "他の人が先に" not in r.text, r.text
    assert (await omega.get(f"/themes/{tid}/agreements/{aid}")).status_code == 404
    # A new version voids the signatures (they stay, marked void) and the gate closes again.
    r = await post(kikaku, f"/themes/{tid}/agreements/{aid}/revise", {"version": "1", "title": "実証実験に関する協定書",
                                                                      "body": AGREEMENT + "\n第3条 追記"},
                   form_page=f"/themes/{tid}/agreements/{aid}")
    assert r.status_code == 303, r.text
    r = await kikaku.get(f"/themes/{tid}/agreements/{aid}")
    assert "署名待ち" in r.text and "無効（旧版）" in r.text and "第3条 追記" in r.text
    r = await post(kikaku, f"{page}/advance", {"note": "実証へ"}, form_page=page)
    assert r.status_code == 409 and gw.words(c.THEME_PHASE_NOT_READY.code, "ja") in r.text, r.text
    assert "協定・覚書を1つ以上、全参加者が最新の版に署名する" in r.text and "signed by every party" not in r.text


async def test_results_decision_and_the_public_case(portal: Portal) -> None:
    p = portal
    tid, orgs = await to_phase3(p.node)
    await design_the_pilot(p, tid, orgs)
    kikaku, beta, omega = [await p.as_(h) for h in ("kikaku", "beta", "omega")]
    r = await post(kikaku, f"/themes/{tid}/pilot/advance", {"note": "協定締結、実証開始"},
                   form_page=f"/themes/{tid}/pilot")
    assert r.status_code == 303 and r.headers["location"].startswith(f"/themes/{tid}/results"), r.text
    page = f"/themes/{tid}/results"
    r = await kikaku.get(page)
    assert r.status_code == 200 and "KPIの実績" in r.text and "report-form" in r.text
    assert (await omega.get(page)).status_code == 404
    assert (await p.client().get(page)).headers["location"].startswith("/login")
    kpi = re.search(r'<option value="([0-9a-f-]{36})">週あたり外出回数', r.text).group(1)  # type: ignore[union-attr]

    # A company party records a measurement: baseline 1.2, target 2.0, actual 1.8 → 75.0 %.
    r = await post(beta, f"{page}/actuals", {"kpi_id": kpi, "value": "1.8", "measured_on": "2027-09-30",
                                             "source": "アンケート"}, form_page=page)
    assert r.status_code == 303, r.text
    r = await beta.get(page)
    assert "75.0 %" in r.text and "1.8" in r.text and 'id="report-form"' not in r.text
    # The case cannot be published before the report and the decision.
    r = await post(kikaku, f"{page}/case", {"draft_revision": "0", "title": "団地の乗合タクシー実証",
                                            "summary": "外出回数が増えた", "approach": "乗合タクシーと見守り",
                                            "outcomes": "週1.8回", "transferability": "団地の多い自治体へ"},
                   form_page=page)
    assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/case/publish", {}, form_page=page)
    assert r.status_code == 409, r.text
    r = await post(kikaku, f"{page}/report", {"version": "0", "summary": "外出が増えた", "results": "週1.8回",
                                              "issues": "運転手不足", "lessons": "見守りとの連携が鍵"}, form_page=page)
    assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/budget", {"version": "0", "actual_cost_yen": "4,500,000", "effects": "補助の削減",
                                              "rationale": "外出の増加", "requested_budget_yen": "9000000"},
                   form_page=page)
    assert r.status_code == 303, r.text
    r = await post(beta, f"{page}/decision", {"decision": "adopt", "reasons": "x"}, form_page=page)
    assert r.status_code == 403, r.text
    r = await post(kikaku, f"{page}/decision", {"decision": "adopt", "reasons": "目標の75%を達成"}, form_page=page)
    assert r.status_code == 303, r.text
    r = await post(kikaku, f"{page}/decision", {"decision": "end", "reasons": "x"}, form_page=page)
    assert r.status_code == 409, r.text
    r = await post(kikaku, f"{page}/case/publish", {}, form_page=page)
    assert r.status_code == 303, r.text
    r = await kikaku.get(page)
    for words in ("本格導入", "4,500,000 円", "9,000,000 円", "このテーマは完了しました", "公開中の事例"):
        assert words in r.text, words

    # Anyone reads the case and the node's list of cases (by field).
    visitor = p.client()
    r = await visitor.get("/cases")
    assert r.status_code == 200 and "団地の乗合タクシー実証" in r.text
    assert "団地の乗合タクシー実証" not in (await visitor.get("/cases?field=npo-10")).text
    cid = re.search(r'href="/cases/([0-9a-f-]{36})"', r.text).group(1)  # type: ignore[union-attr]
    r = await visitor.get(f"/cases/{cid}")
    for words in ("団地の乗合タクシー実証", "企画政策課", "本格導入", "ベータ交通株式会社", "NPO法人ガンマ見守り",
                  "週あたり外出回数", "75.0 %", "団地の多い自治体へ"):
        assert words in r.text, words
    for secret in ("第1条", "4,500,000", "運転手の確保"):
        assert secret not in r.text, secret
    assert (await visitor.get(f"/themes/{tid}")).text.count(f"/cases/{cid}") == 1
    assert (await visitor.get("/cases/00000000-0000-4000-8000-000000000000")).status_code == 404
    assert (await visitor.get("/cases/not-an-id")).status_code == 404
    r = await visitor.get(f"/cases/{cid}?lang=en")
    assert 'lang="en"' in r.text and "Transferability" in r.text and "Adopt" in r.text and "75.0 %" in r.text
