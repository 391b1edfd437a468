"""Phases 3 (実証設計) and 4 (成果定着) of co-creation over a real nats-server, on SQLite and PostgreSQL: the pilot's
roles, schedule, KPIs, versioned plan and agreements signed by both sides, the gate to phase 4; the KPI actuals and
their achievement, the report, the budget rationale, the next-year decision and the published case study with its
CasePublished event. Every refusal changes nothing (a snapshot of every table before and after).

A theme reaches phase 3 the way tests/projects/test_projects_calls.py brings it there: two proposals, two evaluators,
the close and the published result with ベータ交通 (lead) and NPO法人ガンマ見守り (confirmed partner) as the pilot's
company parties; the department 企画政策課 is the municipality side.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select

from services.projects import models
from services.projects.pilots import achievement, dec_text, percent, sha256
from tests.projects.test_projects_calls import (
    ACME,
    BETA,
    EV1,
    EV2,
    GAMMA,
    JIMU,
    KANKYO,
    KIKAKU,
    NODE,
    OMEGA,
    OTHER,
    Node,
    _two_proposals,
    actor,
    running,
    scores,
)
from towntip.kernel import errors
from towntip.kernel.contracts import pilots as p
from towntip.kernel.contracts import projects as c

PILOT_TABLES = (
    models.themes, models.pilot_roles, models.pilot_milestones, models.pilot_kpis, models.kpi_measurements,
    models.pilot_plans, models.agreements, models.agreement_versions, models.agreement_signatures,
    models.pilot_reports, models.budget_rationales, models.pilot_decisions, models.cases, models.case_versions,
    models.audit_log,
)


class PilotNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self.svc.sessions() as s:
            for table in PILOT_TABLES:
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
            out["outbox"] = sorted(r[0] for r in await s.execute(select(models.bus.outbox.c.event_id)))
        return out


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[PilotNode]:
    async with running(nats_server, database, tmp_path, PilotNode) as n:
        yield n


async def to_phase3(node: Node) -> tuple[str, dict[str, str]]:
    """A theme in phase 3 with ベータ交通's consortium (partner ガンマ confirmed) selected; アクメ's proposal (partner
    オメガ never confirmed) was not. Returns the theme id and the organisations' ids by short name."""
    theme, orgs, a, b = await _two_proposals(node)
    tid = theme["id"]
    for who in (EV1, EV2):
        await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                                 "global_handle": who.global_handle})
    node.clock.offset = timedelta(days=31)
    for who in (EV1, EV2):
        for prop, values in ((a, (4, 4, 4)), (b, (5, 4, 3))):
            await node.call(c.EP_REVIEW_DECLARE, {"actor": actor(who), "proposal_id": prop["id"],
                                                  "conflicted": False})
            await node.call(c.EP_REVIEW_SCORE, {"actor": actor(who), "proposal_id": prop["id"],
                                                "scores": scores(theme, *values), "comment": "妥当"})
    await node.call(c.EP_EVALUATION_CLOSE, {"actor": actor(JIMU), "theme_id": tid})
    await node.call(c.EP_RESULT_PUBLISH, {"actor": actor(JIMU), "theme_id": tid, "selected": [b["id"]],
                                          "reasons": "見守りと一体の運行体制"})
    await node.call(c.EP_THEME_ADVANCE, {"actor": actor(KIKAKU), "theme_id": tid, "to_phase": 3,
                                         "note": "実証設計へ"})
    dept = (await node.call(c.EP_ORG_LIST, {"kind": "department"}))["orgs"][0]["id"]
    return tid, {"dept": dept, **{k: v["id"] for k, v in orgs.items()}}


AGREEMENT = ("実証実験に関する協定書\n第1条（目的）本協定は、予約型乗合交通の実証実験の実施に関し必要な事項を定める。\n"
             "第2条（費用）実証に要する費用は各自の負担とする。")
PLAN = {"objective": "団地の高齢者が週2回以上外出できるか検証する", "scope": "鶴ヶ島団地の75歳以上 約300人",
        "method": "予約型乗合タクシー2台を平日運行し、利用と外出頻度を測る", "period_start": "2027-04-01",
        "period_end": "2027-09-30", "budget_yen": 4_800_000, "risks": "運転手の確保", "data_handling":
        "利用者の氏名と住所は市が保有し、事業者には予約番号のみ渡す"}
KPI_TRIPS = {"name": "週あたり外出回数", "unit": "回/週", "baseline": "1.2", "target": "2.0",
             "direction": "increase", "method": "利用者アンケート（月1回）", "data_source": "市の調査"}
KPI_TAXI = {"name": "タクシー補助の支出", "unit": "千円/月", "baseline": 900, "target": 600,
            "direction": "decrease", "method": "補助金の支出額", "data_source": "財政課"}


# ---- arithmetic -----------------------------------------------------------------------------------------------


def test_achievement_is_exact_and_direction_aware() -> None:
    d = Decimal
    assert achievement(d(10), d(20), d(15)) == Fraction(1, 2) and percent(Fraction(1, 2)) == "50.0"
    assert achievement(d(30), d(20), d(25)) == Fraction(1, 2)  # decreasing: 25 is half way from 30 to 20
    assert achievement(d(30), d(20), d(35)) == Fraction(-1, 2) and percent(Fraction(-1, 2)) == "-50.0"
    assert achievement(d("1.2"), d("2.0"), d("2.2")) == Fraction(5, 4) and percent(Fraction(5, 4)) == "125.0"
    assert achievement(d(0), d(3), d(2)) == Fraction(2, 3) and percent(Fraction(2, 3)) == "66.7"
    assert percent(Fraction(1, 3)) == "33.3" and percent(Fraction(1, 2000)) == "0.1"  # 0.05 % rounds half up
    assert percent(Fraction(-1, 2000)) == "-0.1" and percent(Fraction(0)) == "0.0"
    # Floats would say 0.1 + 0.2 != 0.3; decimals from text do not drift.
    assert achievement(d("0.1"), d("0.3"), d("0.2")) == Fraction(1, 2)
    assert achievement(d(10), d(20), None) is None and percent(None) is None
    assert [dec_text(d(x)) for x in ("20.500", "100", "0.000", "-0", "1E+3", "0.000001")] == [
        "20.5", "100", "0", "0", "1000", "0.000001"]


# ---- phase 3 ------------------------------------------------------------------------------------------------------


async def test_pilot_design_sign_off_by_both_sides_and_the_gate_to_phase_four(node: PilotNode) -> None:
    tid, org = await to_phase3(node)
    base = {"theme_id": tid}

    # Who reads the workspace: the managers and the company parties; for everyone else it does not exist.
    got = await node.call(p.EP_PILOT_GET, {**base, "actor": actor(KIKAKU)})
    assert [(x["org_name"], x["side"], x["has_role"]) for x in got["parties"]] == [
        ("企画政策課", "municipality", False), ("NPO法人ガンマ見守り", "company", False),
        ("ベータ交通株式会社", "company", False)]
    assert got["relation"] == ["manager"] and got["may_manage"] and got["my_parties"] == [org["dept"]]
    assert got["missing_for_phase4"] == [
        "the split of roles must give '企画政策課' a role", "the split of roles must give 'NPO法人ガンマ見守り' a role",
        "the split of roles must give 'ベータ交通株式会社' a role", "at least one milestone in the schedule is needed",
        "at least one KPI is needed", "the pilot plan must be saved",
        "at least one agreement must be signed by every party in its current version"]
    assert (await node.call(p.EP_PILOT_GET, {**base, "actor": actor(JIMU)}))["relation"] == ["manager"]
    beta = await node.call(p.EP_PILOT_GET, {**base, "actor": actor(BETA)})
    assert beta["relation"] == ["party"] and not beta["may_manage"] and beta["my_parties"] == [org["beta"]]
    for who in (ACME, OMEGA, OTHER, KANKYO, EV1, None):  # not selected, never confirmed, outsiders, other staff
        await node.refused(errors.NotFound, p.EP_PILOT_GET, {**base, "actor": actor(who)}, "no pilot")

    # The gate names everything that is missing; nothing moves.
    move = {"actor": actor(KIKAKU), "theme_id": tid, "to_phase": 4, "note": "実証開始"}
    reason = await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, move)
    for words in ("'企画政策課' a role", "'NPO法人ガンマ見守り' a role", "'ベータ交通株式会社' a role", "milestone",
                  "KPI", "plan", "agreement"):
        assert words in reason, (words, reason)

    # Roles: only the managers, only for parties.
    role = {"actor": actor(KIKAKU), **base, "org_id": org["dept"], "title": "全体調整・住民周知",
            "responsibilities": "庁内調整、自治会への説明、利用者の募集", "contact_handle": KIKAKU.global_handle}
    await node.refused(errors.Forbidden, p.EP_ROLE_PUT, {**role, "actor": actor(BETA)}, "secretariat")
    await node.refused(errors.NotFound, p.EP_ROLE_PUT, {**role, "actor": actor(KANKYO)}, "no pilot")
    await node.refused(errors.Unprocessable, p.EP_ROLE_PUT, {**role, "org_id": org["omega"]}, "not a party")
    await node.refused(errors.BadRequest, p.EP_ROLE_PUT, {**role, "contact_handle": "Kikaku"}, "contact_handle")
    await node.refused(errors.BadRequest, p.EP_ROLE_PUT, {**role, "responsibilities": " "}, "responsibilities")
    got = await node.call(p.EP_ROLE_PUT, role)
    dept_role = got["roles"][0]["id"]
    await node.call(p.EP_ROLE_PUT, {**role, "org_id": org["beta"], "title": "運行", "contact_handle": None,
                                    "responsibilities": "車両2台と運転手、予約受付"})
    got = await node.call(p.EP_ROLE_PUT, {**role, "role_id": dept_role, "title": "全体調整"})
    assert [(r["org_name"], r["title"]) for r in got["roles"]] == [("企画政策課", "全体調整"),
                                                                   ("ベータ交通株式会社", "運行")]
    gamma_role = {**role, "actor": actor(JIMU), "org_id": org["gamma"], "title": "見守り",
                  "responsibilities": "利用者の見守りと声かけ", "contact_handle": GAMMA.global_handle}
    got = await node.call(p.EP_ROLE_PUT, gamma_role)
    extra = await node.call(p.EP_ROLE_PUT, {**gamma_role, "title": "予備"})
    extra_id = next(r["id"] for r in extra["roles"] if r["title"] == "予備")
    got = await node.call(p.EP_ROLE_REMOVE, {"actor": actor(KIKAKU), **base, "role_id": extra_id})
    assert all(x["has_role"] for x in got["parties"]) and len(got["roles"]) == 3
    await node.refused(errors.NotFound, p.EP_ROLE_REMOVE, {"actor": actor(KIKAKU), **base, "role_id": extra_id})

    # The schedule; a company party records a milestone's completion, an outsider cannot.
    ms = {"actor": actor(KIKAKU), **base, "title": "住民説明会", "due_on": "2027-03-15", "description": "自治会館"}
    await node.refused(errors.Forbidden, p.EP_MILESTONE_PUT, {**ms, "actor": actor(GAMMA)})
    await node.refused(errors.BadRequest, p.EP_MILESTONE_PUT, {**ms, "due_on": "2027-02-30"}, "due_on")
    got = await node.call(p.EP_MILESTONE_PUT, ms)
    got = await node.call(p.EP_MILESTONE_PUT, {**ms, "title": "運行開始", "due_on": "2027-04-01", "description": ""})
    assert [m["title"] for m in got["milestones"]] == ["住民説明会", "運行開始"]
    first = got["milestones"][0]["id"]
    done = await node.call(p.EP_MILESTONE_STATUS, {"actor": actor(GAMMA), **base, "milestone_id": first,
                                                   "status": "done"})
    assert done["milestones"][0]["status"] == "done" and done["milestones"][0]["done_by"] == GAMMA.global_handle
    await node.refused(errors.NotFound, p.EP_MILESTONE_STATUS, {"actor": actor(OMEGA), **base,
                                                                "milestone_id": first, "status": "planned"})

    # KPIs: the target in the KPI's direction from the baseline; exact decimals; one name once.
    kpi = {"actor": actor(KIKAKU), **base, **KPI_TRIPS}
    for payload, words in (({**kpi, "target": "1.0"}, "above its baseline"),
                           ({**kpi, "target": "1.2"}, "above its baseline"),
                           ({**kpi, **KPI_TAXI, "target": 950}, "below its baseline"),
                           ({**kpi, "baseline": "NaN"}, "baseline"),
                           ({**kpi, "baseline": "1.0000001"}, "baseline"),
                           ({**kpi, "direction": "up"}, "direction"),
                           ({**kpi, "unit": ""}, "unit")):
        await node.refused(errors.BadRequest, p.EP_KPI_PUT, payload, words)
    await node.refused(errors.Forbidden, p.EP_KPI_PUT, {**kpi, "actor": actor(BETA)})
    got = await node.call(p.EP_KPI_PUT, kpi)
    (trips,) = got["kpis"]
    assert (trips["baseline"], trips["target"], trips["actual"], trips["achievement_pct"]) == ("1.2", "2", None, None)
    await node.refused(errors.Conflict, p.EP_KPI_PUT, {**kpi, "unit": "回"}, "already has a KPI")
    got = await node.call(p.EP_KPI_PUT, {**kpi, **KPI_TAXI})
    assert [(k["name"], k["direction"]) for k in got["kpis"]] == [("週あたり外出回数", "increase"),
                                                                   ("タクシー補助の支出", "decrease")]
    # Phase 4's parts wait for phase 4.
    for ep, payload in ((p.EP_ACTUAL_ADD, {"actor": actor(BETA), **base, "kpi_id": trips["id"], "value": "1.4",
                                           "measured_on": "2027-01-31"}),
                        (p.EP_REPORT_PUT, {"actor": actor(KIKAKU), **base, "version": 0, "summary": "x",
                                           "results": "x"}),
                        (p.EP_DECISION_MAKE, {"actor": actor(KIKAKU), **base, "decision": "adopt", "reasons": "x"}),
                        (p.EP_CASE_PUT, {"actor": actor(KIKAKU), **base, "draft_revision": 0, "title": "x",
                                         "summary": "x", "approach": "x", "outcomes": "x", "transferability": "x"})):
        await node.refused(errors.Conflict, ep, payload, "phase 4")

    # The plan: versioned, compare-and-set on the version the editor saw; every version readable.
    plan = {"actor": actor(KIKAKU), **base, **PLAN, "version": 0}
    await node.refused(errors.BadRequest, p.EP_PLAN_PUT, {**plan, "period_end": "2027-03-31"}, "period")
    await node.refused(errors.BadRequest, p.EP_PLAN_PUT, {**plan, "budget_yen": -1}, "budget_yen")
    await node.refused(errors.BadRequest, p.EP_PLAN_PUT, {**plan, "budget_yen": 10.5}, "budget_yen")
    await node.refused(errors.BadRequest, p.EP_PLAN_PUT, {**plan, "budget_yen": True}, "not true or false")
    await node.refused(errors.Forbidden, p.EP_PLAN_PUT, {**plan, "actor": actor(BETA)})
    await node.refused(errors.Conflict, p.EP_PLAN_PUT, {**plan, "version": 1}, "at version 0")
    assert (await node.call(p.EP_PLAN_PUT, plan))["plan"]["version"] == 1
    assert (await node.call(p.EP_PLAN_PUT, {**plan, "version": 1}))["plan"]["version"] == 1  # the same again
    got = await node.call(p.EP_PLAN_PUT, {**plan, "version": 1, "budget_yen": 5_200_000})
    assert got["plan"]["version"] == 2 and got["plan"]["budget_yen"] == 5_200_000
    assert [(v["version"], v["budget_yen"]) for v in got["plan_versions"]] == [(1, 4_800_000), (2, 5_200_000)]
    await node.refused(errors.Conflict, p.EP_PLAN_PUT, {**plan, "version": 1, "risks": "古い版から"}, "at version 2")

    # Agreements: drafted by the managers; each revision a new version with its sha256.
    new = {"actor": actor(KIKAKU), **base, "kind": "agreement", "title": "実証実験協定書", "body": AGREEMENT}
    await node.refused(errors.Forbidden, p.EP_AGREEMENT_CREATE, {**new, "actor": actor(BETA)})
    await node.refused(errors.BadRequest, p.EP_AGREEMENT_CREATE, {**new, "kind": "contract"}, "kind")
    ag = await node.call(p.EP_AGREEMENT_CREATE, new)
    aid = ag["id"]
    assert ag["version"] == 1 and ag["sha256"] == sha256(AGREEMENT) and not ag["signed"]
    assert [x["org_name"] for x in ag["pending"]] == ["企画政策課", "NPO法人ガンマ見守り", "ベータ交通株式会社"]
    nda = await node.call(p.EP_AGREEMENT_CREATE, {**new, "kind": "nda", "title": "秘密保持契約",
                                                  "body": "利用者の個人情報を実証の目的以外に使わない。"})
    sign = {**base, "agreement_id": aid, "version": 1, "sha256": sha256(AGREEMENT)}
    s1 = await node.call(p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(BETA), "org_id": org["beta"]})
    assert [(x["org_name"], x["current"]) for x in s1["signatures"]] == [("ベータ交通株式会社", True)]
    assert s1["my_parties"] == []
    # Signing twice, for another organisation, for the municipality without managing, a non-party: refused.
    await node.refused(errors.Conflict, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(BETA), "org_id": org["beta"]},
                       "already signed")
    await node.refused(errors.Forbidden, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(GAMMA),
                                                               "org_id": org["beta"]}, "member of")
    await node.refused(errors.Forbidden, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(BETA),
                                                               "org_id": org["dept"]}, "municipality side")
    await node.refused(errors.Unprocessable, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(KIKAKU),
                                                                   "org_id": org["omega"]}, "not a party")
    await node.refused(errors.NotFound, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(OMEGA),
                                                              "org_id": org["omega"]}, "no pilot")
    await node.refused(errors.Conflict, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(GAMMA), "org_id": org["gamma"],
                                                              "sha256": sha256(AGREEMENT + "。")}, "sha256")
    await node.refused(errors.BadRequest, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(GAMMA),
                                                                "org_id": org["gamma"], "sha256": "abc"}, "sha256")
    await node.call(p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(GAMMA), "org_id": org["gamma"]})

    # A revision voids the signatures given (they stay in the history); signing the superseded version: 409.
    revised = AGREEMENT + "\n第3条（個人情報）利用者の個人情報は市が管理する。"
    rev = {"actor": actor(KIKAKU), **base, "agreement_id": aid, "version": 1, "title": "実証実験協定書",
           "body": revised}
    await node.refused(errors.Forbidden, p.EP_AGREEMENT_REVISE, {**rev, "actor": actor(BETA)})
    ag = await node.call(p.EP_AGREEMENT_REVISE, rev)
    assert ag["version"] == 2 and ag["sha256"] == sha256(revised) and not ag["signed"]
    assert [(v["number"], v["sha256"]) for v in ag["versions"]] == [(1, sha256(AGREEMENT)), (2, sha256(revised))]
    assert [v["body"] for v in ag["versions"]] == [AGREEMENT, revised]
    # The workspace carries only the current text (a reply stays small); the agreement itself every version's.
    (listed,) = [x for x in (await node.call(p.EP_PILOT_GET, {**base, "actor": actor(GAMMA)}))["agreements"]
                 if x["id"] == aid]
    assert [v["body"] for v in listed["versions"]] == [None, revised] and listed["body"] == revised
    assert [v["body"] for v in (await node.call(p.EP_AGREEMENT_GET, {**base, "agreement_id": aid,
                                                                     "actor": actor(GAMMA)}))["versions"]] == [
        AGREEMENT, revised]
    assert [(x["org_name"], x["version"], x["current"]) for x in ag["signatures"]] == [
        ("ベータ交通株式会社", 1, False), ("NPO法人ガンマ見守り", 1, False)]
    assert len(ag["pending"]) == 3
    await node.refused(errors.Conflict, p.EP_AGREEMENT_REVISE, {**rev, "body": "古い版の改訂"}, "at version 2")
    await node.refused(errors.Conflict, p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(BETA), "org_id": org["beta"]},
                       "not the agreement's current version")
    sign2 = {**sign, "version": 2, "sha256": sha256(revised)}
    await node.refused(errors.Conflict, p.EP_AGREEMENT_SIGN, {**sign2, "actor": actor(BETA), "org_id": org["beta"],
                                                              "sha256": sha256(AGREEMENT)}, "sha256")
    for who, party in ((BETA, "beta"), (GAMMA, "gamma")):
        await node.call(p.EP_AGREEMENT_SIGN, {**sign2, "actor": actor(who), "org_id": org[party]})

    # Almost everything: the gate still waits for the last signature, and says only that.
    reason = await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, move)
    assert reason == ("phase 4 (成果定着) is not open yet: at least one agreement must be signed by every party in "
                      "its current version")
    # An NDA signed by one side only does not count.
    await node.call(p.EP_AGREEMENT_SIGN, {**base, "agreement_id": nda["id"], "version": 1,
                                          "sha256": nda["sha256"], "actor": actor(JIMU), "org_id": org["dept"]})
    await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, move, "agreement")
    ag = await node.call(p.EP_AGREEMENT_SIGN, {**sign2, "actor": actor(KIKAKU), "org_id": org["dept"]})
    assert ag["signed"] and ag["pending"] == [] and ag["signed_at"]
    assert (await node.call(p.EP_AGREEMENT_GET, {**base, "agreement_id": aid, "actor": actor(GAMMA)}))["signed"]
    await node.refused(errors.NotFound, p.EP_AGREEMENT_GET, {**base, "agreement_id": aid, "actor": actor(ACME)})
    assert (await node.call(p.EP_PILOT_GET, {**base, "actor": actor(JIMU)}))["missing_for_phase4"] == []

    # Phase 4: the design is frozen; the actuals are measured against it.
    assert (await node.call(c.EP_THEME_ADVANCE, move))["phase"] == 4
    got = await node.call(p.EP_PILOT_GET, {**base, "actor": actor(BETA)})
    assert got["phase"] == 4 and got["kpis_frozen"] and got["missing_for_phase4"] == []
    for ep, payload in ((p.EP_KPI_PUT, {**kpi, "kpi_id": trips["id"], "target": "3"}),
                        (p.EP_KPI_REMOVE, {"actor": actor(KIKAKU), **base, "kpi_id": trips["id"]}),
                        (p.EP_ROLE_PUT, role), (p.EP_MILESTONE_PUT, ms), (p.EP_PLAN_PUT, {**plan, "version": 2}),
                        (p.EP_AGREEMENT_CREATE, new), (p.EP_AGREEMENT_REVISE, {**rev, "version": 2, "body": "x"}),
                        (p.EP_AGREEMENT_SIGN, {**base, "agreement_id": nda["id"], "version": 1,
                                               "sha256": nda["sha256"], "actor": actor(BETA),
                                               "org_id": org["beta"]})):
        await node.refused(errors.Conflict, ep, payload, "phase 3")
    # A milestone's completion is still recorded while the pilot runs.
    got = await node.call(p.EP_MILESTONE_STATUS, {"actor": actor(BETA), **base,
                                                  "milestone_id": got["milestones"][1]["id"], "status": "done"})
    assert [m["status"] for m in got["milestones"]] == ["done", "done"]

    # History: the phase 3 actions on the theme's history; contents only for the theme's managers; never the text.
    history = await node.call(c.EP_THEME_HISTORY, {"theme_id": tid, "actor": actor(KIKAKU)})
    actions = [(e["subject_kind"], e["action"]) for e in history["entries"]]
    assert actions[-4:] == [("agreement", "agreement_signed"), ("agreement", "agreement_concluded"),
                            ("theme", "phase_advanced"), ("pilot", "milestone_done")]
    assert ("agreement", "agreement_revised") in actions and ("kpi", "kpi_added") in actions
    assert ("pilot", "plan_saved") in actions and ("pilot", "role_removed") in actions
    dumped = json.dumps(history, ensure_ascii=False)
    assert "第1条" not in dumped and sha256(revised) in dumped
    revised_entry = next(e for e in history["entries"] if e["action"] == "agreement_revised")
    assert revised_entry["after"]["voided_signatures"] == ["NPO法人ガンマ見守り", "ベータ交通株式会社"]
    other = await node.call(c.EP_THEME_HISTORY, {"theme_id": tid, "actor": actor(KANKYO)})
    assert [e["action"] for e in other["entries"]] == [e["action"] for e in history["entries"]]
    assert all(e["after"] is None for e in other["entries"] if e["subject_kind"] != "theme")
    assert "5200000" not in json.dumps(other)

    # Events: the agreement concluded (counts only), the phase; never the text, the plan or the budget.
    events = await node.events()
    agreed = [e for t, e in events if t == "pilot_agreed"]
    assert agreed == [{"theme_id": tid, "origin_node": NODE, "agreement_id": aid, "kind": "agreement",
                       "version": 2, "parties": 3, "at": agreed[0]["at"]}]
    text = json.dumps([e for t, e in events if t not in ("organisation_registered",)], ensure_ascii=False)
    for secret in ("第1条", "5200000", "個人情報", "全体調整"):
        assert secret not in text, secret


async def test_a_pilot_before_phase_three_does_not_exist(node: PilotNode) -> None:
    theme, orgs, _a, _b = await _two_proposals(node)
    tid = theme["id"]
    await node.refused(errors.NotFound, p.EP_PILOT_GET, {"theme_id": tid, "actor": actor(KIKAKU)}, "no pilot")
    await node.refused(errors.NotFound, p.EP_ROLE_PUT, {
        "actor": actor(KIKAKU), "theme_id": tid, "org_id": orgs["beta"]["id"], "title": "運行",
        "responsibilities": "車両"}, "no pilot")
    await node.refused(errors.NotFound, p.EP_PILOT_GET, {"theme_id": "00000000-0000-4000-8000-000000000000",
                                                         "actor": actor(JIMU)}, "no pilot")


# ---- phase 4 ------------------------------------------------------------------------------------------------------


async def to_phase4(node: Node) -> tuple[str, dict[str, str], dict[str, str]]:
    """The theme of to_phase3 with its pilot designed and agreed, moved to phase 4. Returns the theme id, the
    organisations' ids and the KPIs' ids by name."""
    tid, org = await to_phase3(node)
    base = {"actor": actor(KIKAKU), "theme_id": tid}
    for party, title in (("dept", "全体調整"), ("beta", "運行"), ("gamma", "見守り")):
        await node.call(p.EP_ROLE_PUT, {**base, "org_id": org[party], "title": title, "responsibilities": title})
    await node.call(p.EP_MILESTONE_PUT, {**base, "title": "運行開始", "due_on": "2027-04-01"})
    for kpi in (KPI_TRIPS, KPI_TAXI, {**KPI_TRIPS, "name": "登録者数", "unit": "人", "baseline": 0, "target": 300}):
        got = await node.call(p.EP_KPI_PUT, {**base, **kpi})
    await node.call(p.EP_PLAN_PUT, {**base, **PLAN, "version": 0})
    ag = await node.call(p.EP_AGREEMENT_CREATE, {**base, "kind": "memorandum", "title": "覚書", "body": AGREEMENT})
    for who, party in ((KIKAKU, "dept"), (BETA, "beta"), (GAMMA, "gamma")):
        await node.call(p.EP_AGREEMENT_SIGN, {"actor": actor(who), "theme_id": tid, "agreement_id": ag["id"],
                                              "org_id": org[party], "version": 1, "sha256": ag["sha256"]})
    await node.call(c.EP_THEME_ADVANCE, {**base, "to_phase": 4, "note": "実証開始"})
    return tid, org, {k["name"]: k["id"] for k in got["kpis"]}


REPORT = {"summary": "6か月で延べ2,400人が利用し、外出回数が増えた", "results": "週あたり外出回数 1.2→1.8 回",
          "issues": "雨の日の予約集中", "lessons": "見守りと一体にすると利用が定着する"}
BUDGET = {"actual_cost_yen": 5_050_000, "effects": "タクシー補助の支出が月15万円減った",
          "rationale": "補助の削減分で運行費の6割を賄える", "requested_budget_yen": 9_600_000}
CASE = {"title": "団地の予約型乗合交通で高齢者の外出を支える",
        "summary": "郊外団地で乗合タクシーと見守りを組み合わせた実証",
        "approach": "市が利用者を募り、交通事業者が運行、NPOが見守りを担った", "outcomes": "外出回数が1.5倍に",
        "lessons": "予約の締切を前日夕方にすると配車が安定する",
        "transferability": "路線バスが減便された団地ならどこでも"}


async def test_results_decision_and_the_published_case(node: PilotNode) -> None:
    tid, org, kpi = await to_phase4(node)
    base = {"theme_id": tid}
    trips, taxi = kpi["週あたり外出回数"], kpi["タクシー補助の支出"]

    # Actuals: the managers and the company parties record them; the latest by date counts.
    add = {**base, "kpi_id": trips, "value": "1.5", "measured_on": "2027-05-31", "source": "アンケート"}
    await node.call(p.EP_ACTUAL_ADD, {**add, "actor": actor(KIKAKU)})
    await node.call(p.EP_ACTUAL_ADD, {**add, "actor": actor(BETA), "value": "1.80", "measured_on": "2027-06-30",
                                      "note": "6月分"})
    await node.call(p.EP_ACTUAL_ADD, {**add, "actor": actor(GAMMA), "kpi_id": taxi, "value": 750,
                                      "measured_on": "2027-06-30", "source": "財政課"})
    got = await node.call(p.EP_ACTUAL_ADD, {**add, "actor": actor(JIMU), "kpi_id": taxi, "value": 800,
                                            "measured_on": "2027-04-30"})  # recorded later, measured earlier
    by = {k["name"]: k for k in got["kpis"]}
    # 1.2 → 2.0, actual 1.8: 0.6 of 0.8 = 3/4; 900 → 600 (decrease), actual 750: 150 of 300 = 1/2.
    assert (by["週あたり外出回数"]["actual"], by["週あたり外出回数"]["achievement"],
            by["週あたり外出回数"]["achievement_pct"]) == ("1.8", "3/4", "75.0")
    assert [m["value"] for m in by["週あたり外出回数"]["measurements"]] == ["1.5", "1.8"]
    assert (by["タクシー補助の支出"]["actual"], by["タクシー補助の支出"]["achievement_pct"]) == ("750", "50.0")
    assert [m["measured_on"] for m in by["タクシー補助の支出"]["measurements"]] == ["2027-04-30", "2027-06-30"]
    assert by["登録者数"]["actual"] is None and by["登録者数"]["achievement_pct"] is None
    for who in (OMEGA, OTHER, KANKYO):
        await node.refused(errors.NotFound, p.EP_ACTUAL_ADD, {**add, "actor": actor(who)}, "no pilot")
    await node.refused(errors.NotFound, p.EP_ACTUAL_ADD, {**add, "actor": actor(BETA),
                                                          "kpi_id": "00000000-0000-4000-8000-000000000000"}, "no KPI")
    for bad, words in (({"value": "たくさん"}, "value"), ({"value": "Infinity"}, "value"), ({"value": True}, "value"),
                       ({"measured_on": "2027-13-01"}, "measured_on"), ({"unit": "回"}, "unit")):
        await node.refused(errors.BadRequest, p.EP_ACTUAL_ADD, {**add, "actor": actor(BETA), **bad}, words)

    # The case may be drafted now, but not published before the report and the decision.
    draft = {"actor": actor(KIKAKU), **base, **CASE, "draft_revision": 0}
    await node.refused(errors.Forbidden, p.EP_CASE_PUT, {**draft, "actor": actor(BETA)})
    case = await node.call(p.EP_CASE_PUT, draft)
    cid = case["id"]
    assert case["published"] is None and case["draft"]["fields"] == ["npo-1", "npo-3"]  # the theme's fields
    assert case["missing_for_publication"] == ["the report must be saved", "the next-year decision must be made"]
    reason = await node.refused(errors.Conflict, p.EP_CASE_PUBLISH, {"actor": actor(KIKAKU), **base})
    assert "report must be saved" in reason and "decision must be made" in reason
    for who in (None, OTHER, BETA, KANKYO):
        await node.refused(errors.NotFound, p.EP_CASE_GET, {"case_id": cid, "actor": actor(who)}, "no published")
    assert (await node.call(p.EP_CASE_LIST, {}))["cases"] == []
    await node.refused(errors.Conflict, p.EP_DECISION_MAKE, {"actor": actor(KIKAKU), **base, "decision": "adopt",
                                                             "reasons": "効果あり"}, "report and the budget")

    # The report and the budget rationale: the managers', versioned like the plan.
    report = {"actor": actor(KIKAKU), **base, **REPORT, "version": 0}
    await node.refused(errors.Forbidden, p.EP_REPORT_PUT, {**report, "actor": actor(BETA)})
    await node.refused(errors.BadRequest, p.EP_REPORT_PUT, {**report, "summary": ""}, "summary")
    await node.call(p.EP_REPORT_PUT, report)
    got = await node.call(p.EP_REPORT_PUT, {**report, "version": 1, "issues": "雨の日の予約集中、運転手の確保"})
    assert got["report"]["version"] == 2 and len(got["report_versions"]) == 2
    await node.refused(errors.Conflict, p.EP_REPORT_PUT, {**report, "version": 1}, "at version 2")
    budget = {"actor": actor(JIMU), **base, **BUDGET, "version": 0}
    await node.refused(errors.BadRequest, p.EP_BUDGET_PUT, {**budget, "requested_budget_yen": -5}, "requested")
    assert (await node.call(p.EP_BUDGET_PUT, budget))["budget"]["requested_budget_yen"] == 9_600_000
    await node.refused(errors.Conflict, p.EP_CASE_PUBLISH, {"actor": actor(KIKAKU), **base}, "decision must be made")

    # The decision: a manager's, once, final; the theme is complete and its record closed.
    decide = {"actor": actor(KIKAKU), **base, "decision": "expand",
              "reasons": "外出回数と補助の削減に効果。他の団地へ広げる"}
    await node.refused(errors.Forbidden, p.EP_DECISION_MAKE, {**decide, "actor": actor(BETA)})
    await node.refused(errors.BadRequest, p.EP_DECISION_MAKE, {**decide, "decision": "maybe"}, "decision")
    await node.refused(errors.BadRequest, p.EP_DECISION_MAKE, {**decide, "reasons": ""}, "reasons")
    got = await node.call(p.EP_DECISION_MAKE, decide)
    assert got["complete"] and got["decision"]["label"] == "拡大・横展開"
    await node.refused(errors.Conflict, p.EP_DECISION_MAKE, {**decide, "decision": "end"}, "already made")
    await node.refused(errors.Conflict, p.EP_ACTUAL_ADD, {**add, "actor": actor(BETA)}, "complete")
    await node.refused(errors.Conflict, p.EP_REPORT_PUT, {**report, "version": 2, "lessons": "後から"}, "complete")
    await node.refused(errors.Conflict, p.EP_BUDGET_PUT, {**budget, "version": 1, "effects": "後から"}, "complete")
    await node.refused(errors.Conflict, p.EP_MILESTONE_STATUS, {
        "actor": actor(BETA), **base, "milestone_id": got["milestones"][0]["id"], "status": "done"}, "decision")

    # Publication: public from now on, with the KPI table and the partners as they are now.
    await node.refused(errors.Forbidden, p.EP_CASE_PUBLISH, {"actor": actor(GAMMA), **base})
    case = await node.call(p.EP_CASE_PUBLISH, {"actor": actor(JIMU), **base, "note": "公開"})
    pub = case["published"]
    assert pub["version"] == 1 and case["versions"] == [1] and case["draft"]["unpublished_changes"] is False
    kpis = [{"name": "週あたり外出回数", "unit": "回/週", "baseline": "1.2", "target": "2", "actual": "1.8",
             "direction": "increase", "achievement_pct": "75.0"},
            {"name": "タクシー補助の支出", "unit": "千円/月", "baseline": "900", "target": "600", "actual": "750",
             "direction": "decrease", "achievement_pct": "50.0"},
            {"name": "登録者数", "unit": "人", "baseline": "0", "target": "300", "actual": None,
             "direction": "increase", "achievement_pct": None}]
    assert pub["kpis"] == kpis and pub["partners"] == ["NPO法人ガンマ見守り", "ベータ交通株式会社"]
    assert pub["decision"] == "expand" and pub["owner_department_name"] == "企画政策課"
    await node.refused(errors.Conflict, p.EP_CASE_PUBLISH, {"actor": actor(JIMU), **base}, "nothing changed")
    public = await node.call(p.EP_CASE_GET, {"case_id": cid})
    assert public["published"] == pub and public["draft"] is None and not public["may_manage"]
    assert (await node.call(p.EP_CASE_FOR_THEME, {"theme_id": tid}))["id"] == cid
    dumped = json.dumps(public, ensure_ascii=False)
    for secret in ("第1条", "5050000", "9600000", "雨の日", "予約番号"):  # agreements, budget, report, plan
        assert secret not in dumped, secret
    assert [x["id"] for x in (await node.call(p.EP_CASE_LIST, {"field": "npo-3"}))["cases"]] == [cid]
    assert (await node.call(p.EP_CASE_LIST, {"field": "npo-10"}))["cases"] == []
    assert (await node.call(p.EP_CASE_LIST, {"decision": "end"}))["cases"] == []

    # Edits, compare-and-set on the draft's revision; the public keeps version 1 until the next publication.
    await node.refused(errors.Conflict, p.EP_CASE_PUT, {**draft, "title": "古い版から"}, "revision 1")
    await node.refused(errors.BadRequest, p.EP_CASE_PUT, {**draft, "draft_revision": 1, "fields": ["x-1"]}, "fields")
    edited = await node.call(p.EP_CASE_PUT, {**draft, "draft_revision": 1, "title": "団地の乗合交通と見守り",
                                             "fields": ["npo-1"]})
    assert edited["draft"]["unpublished_changes"] and edited["published"]["title"] == CASE["title"]
    assert (await node.call(p.EP_CASE_GET, {"case_id": cid}))["published"]["title"] == CASE["title"]
    again = await node.call(p.EP_CASE_PUBLISH, {"actor": actor(KIKAKU), **base})
    assert again["published"]["version"] == 2 and again["versions"] == [1, 2]
    first = await node.call(p.EP_CASE_GET, {"case_id": cid, "version": 1})
    assert first["published"]["title"] == CASE["title"] and first["published"]["fields"] == ["npo-1", "npo-3"]
    assert (await node.call(p.EP_CASE_LIST, {"field": "npo-3"}))["cases"] == []
    await node.refused(errors.NotFound, p.EP_CASE_GET, {"case_id": cid, "version": 3}, "version 3")

    # The events: CasePublished then CaseChanged with exactly the agreed fields; ThemeCompleted.
    events = await node.events()
    cased = [(t, e) for t, e in events if t in ("case_published", "case_changed")]
    assert [(t, e["version"]) for t, e in cased] == [("case_published", 1), ("case_changed", 2)]
    fields = {"id", "theme_id", "origin_node", "owner_department_name", "title", "summary", "approach", "outcomes",
              "lessons", "transferability", "fields", "kpis", "partners", "decision", "version", "published_at"}
    for _, e in cased:
        assert set(e) == fields
        assert e["id"] == cid and e["theme_id"] == tid and e["origin_node"] == NODE and e["kpis"] == kpis
        assert p.CasePublished.model_validate(e).partners == ["NPO法人ガンマ見守り", "ベータ交通株式会社"]
    assert cased[1][1]["title"] == "団地の乗合交通と見守り" and cased[1][1]["fields"] == ["npo-1"]
    (completed,) = [e for t, e in events if t == "theme_completed"]
    assert completed["decision"] == "expand" and completed["theme_id"] == tid
    text = json.dumps([e for t, e in events if not t.startswith("organisation_")], ensure_ascii=False)
    for secret in ("5050000", "9600000", "雨の日", "第1条"):
        assert secret not in text, secret

    # The theme's history shows phase 4 too.
    history = await node.call(c.EP_THEME_HISTORY, {"theme_id": tid, "actor": actor(JIMU)})
    actions = [e["action"] for e in history["entries"]]
    assert actions[-7:] == ["report_saved", "report_saved", "budget_saved", "decision_made", "case_published",
                            "case_edited", "case_republished"]
    assert actions.count("actual_recorded") == 4 and "case_drafted" in actions


async def test_concurrent_signatures_and_saves_land_once(node: PilotNode) -> None:
    """All parties sign at once (one of them twice): each signature lands once, the agreement is concluded once
    (one PilotAgreed); four editors save the first plan at once: one version 1, three told to reload."""
    tid, org = await to_phase3(node)
    ag = await node.call(p.EP_AGREEMENT_CREATE, {"actor": actor(KIKAKU), "theme_id": tid, "kind": "agreement",
                                                 "title": "協定書", "body": AGREEMENT})
    sign = {"theme_id": tid, "agreement_id": ag["id"], "version": 1, "sha256": ag["sha256"]}

    async def attempt(endpoint: str, payload: dict[str, Any]) -> str:
        try:
            await node.call(endpoint, payload)
            return "ok"
        except errors.Conflict as exc:
            return exc.reason

    outcomes = await asyncio.gather(*(attempt(p.EP_AGREEMENT_SIGN, {**sign, "actor": actor(who), "org_id": org[k]})
                                      for who, k in ((KIKAKU, "dept"), (BETA, "beta"), (GAMMA, "gamma"),
                                                     (BETA, "beta"), (JIMU, "dept"))))
    assert outcomes.count("ok") == 3, outcomes
    assert all("already signed" in o for o in outcomes if o != "ok"), outcomes
    got = await node.call(p.EP_AGREEMENT_GET, {"theme_id": tid, "agreement_id": ag["id"], "actor": actor(GAMMA)})
    assert got["signed"] and len(got["signatures"]) == 3
    assert await node.count(models.audit_log, models.audit_log.c.action == "agreement_concluded") == 1
    assert [t for t, _ in await node.events()].count("pilot_agreed") == 1

    plans = await asyncio.gather(*(attempt(p.EP_PLAN_PUT, {"actor": actor(who), "theme_id": tid, **PLAN,
                                                           "version": 0, "risks": f"リスク {i}"})
                                   for i, who in enumerate((KIKAKU, JIMU, KIKAKU, JIMU))))
    assert plans.count("ok") == 1 and all("at version 1" in o for o in plans if o != "ok"), plans
    assert await node.count(models.pilot_plans) == 1

    # A pilot holds at most MAX_AGREEMENTS agreements (the workspace carries each one's current text).
    new = {"actor": actor(KIKAKU), "theme_id": tid, "kind": "nda", "title": "秘密保持契約", "body": "秘密を守る。"}
    for _ in range(p.MAX_AGREEMENTS - 1):
        await node.call(p.EP_AGREEMENT_CREATE, new)
    await node.refused(errors.Conflict, p.EP_AGREEMENT_CREATE, new, "at most 15")


async def test_the_gate_to_phase_four_names_each_missing_item(node: PilotNode) -> None:
    """Each part of the design, added one by one, leaves the gate's list; taking one away brings it back."""
    tid, org = await to_phase3(node)
    base = {"actor": actor(JIMU), "theme_id": tid}
    move = {**base, "to_phase": 4, "note": "実証開始"}
    roles = {k: f"the split of roles must give {n!r} a role" for k, n in (
        ("dept", "企画政策課"), ("gamma", "NPO法人ガンマ見守り"), ("beta", "ベータ交通株式会社"))}
    milestone, kpi = "at least one milestone in the schedule is needed", "at least one KPI is needed"
    plan, agreement = ("the pilot plan must be saved",
                       "at least one agreement must be signed by every party in its current version")
    missing = [*roles.values(), milestone, kpi, plan, agreement]

    async def gate_says(expected: list[str]) -> None:
        reason = await node.refused(errors.Conflict, c.EP_THEME_ADVANCE, move)
        assert reason == "phase 4 (成果定着) is not open yet: " + "; ".join(expected), reason
        assert (await node.call(p.EP_PILOT_GET, {"theme_id": tid, "actor": actor(KIKAKU)}))[
            "missing_for_phase4"] == expected

    await gate_says(missing)
    role_ids = {}
    for party in ("beta", "dept", "gamma"):
        got = await node.call(p.EP_ROLE_PUT, {**base, "org_id": org[party], "title": "役割", "responsibilities": "x"})
        role_ids[party] = next(r["id"] for r in got["roles"] if r["org_id"] == org[party])
        missing.remove(roles[party])
        await gate_says(missing)
    await node.call(p.EP_ROLE_REMOVE, {**base, "role_id": role_ids["gamma"]})
    await gate_says([roles["gamma"], *missing])
    await node.call(p.EP_ROLE_PUT, {**base, "org_id": org["gamma"], "title": "見守り", "responsibilities": "x"})
    for item, endpoint, payload in (
            (milestone, p.EP_MILESTONE_PUT, {"title": "運行開始", "due_on": "2027-04-01"}),
            (kpi, p.EP_KPI_PUT, KPI_TRIPS), (plan, p.EP_PLAN_PUT, {**PLAN, "version": 0})):
        await node.call(endpoint, {**base, **payload})
        missing.remove(item)
        await gate_says(missing)
    ag = await node.call(p.EP_AGREEMENT_CREATE, {**base, "kind": "memorandum", "title": "覚書", "body": AGREEMENT})
    for who, party in ((KIKAKU, "dept"), (BETA, "beta")):
        await node.call(p.EP_AGREEMENT_SIGN, {"actor": actor(who), "theme_id": tid, "agreement_id": ag["id"],
                                              "org_id": org[party], "version": 1, "sha256": ag["sha256"]})
        await gate_says([agreement])
    await node.call(p.EP_AGREEMENT_SIGN, {"actor": actor(GAMMA), "theme_id": tid, "agreement_id": ag["id"],
                                          "org_id": org["gamma"], "version": 1, "sha256": ag["sha256"]})
    # A company member may not move the phase even with the gate open; a manager may.
    await node.refused(errors.Forbidden, c.EP_THEME_ADVANCE, {**move, "actor": actor(BETA)})
    assert (await node.call(c.EP_THEME_ADVANCE, move))["phase"] == 4
