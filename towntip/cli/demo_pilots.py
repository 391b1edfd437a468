"""The demo town's themes past the call: one in phase 3 (実証設計) and one in phase 4 (成果定着, its case published),
taken there through the projects service's own endpoints as the department's staff, the secretariat, the companies
and the evaluators would (towntip/cli/demo_town.py runs it for `towntip demo seed`).

A call only closes when its deadline has passed on the service's clock, and a deadline must lie ahead when it is
set: the demo's calls for these two themes therefore close CALL_SECONDS after they open, and the seed waits that
long once (the companies' proposals are in by then). Every step looks first at what is there (the theme's phase,
the evaluation's state, the pilot's rows), so a second run, or a run after one that stopped half way, adds nothing
twice. The texts and figures are sample values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from towntip.kernel.clock import JST
from towntip.kernel.contracts import pilots as plc
from towntip.kernel.contracts import projects as pc

Say = Callable[[str], None]
Call = Callable[[str, str, Any], Awaitable[Any]]

CALL_SECONDS = 4  # how long the demo's short calls stay open (every proposal of the seed is in well before)
EVALUATORS = ("demo_taiso", "demo_kosodate")  # residents the secretariat appoints (members of no company)
SCORES = (5, 4, 4)  # each evaluator's score per criterion (the criteria of demo_town.CRITERIA)

# By theme title: the company that proposes, its proposal, and the pilot as the two sides set it up; `outcome` for
# the theme carried to phase 4 (the actuals, the report, the budget rationale, the decision and the case).
PILOTS: dict[str, dict[str, Any]] = {
    "公民館の鍵の受け渡しをスマートロックでなくす": {
        "company": ("demo_smartlock", "つるがしまスマート施設株式会社（デモ）", "情報通信業",
                    "スマートロックと予約システムの連携、公共施設の無人受付", ["npo-14", "npo-3"]),
        "proposal": {
            "title": "予約と連動するスマートロックで夜間の貸出を無人化",
            "summary": "予約が確定すると利用時間だけ有効な暗証番号を発行し、窓口に鍵を取りに来る手間をなくします。",
            "plan": "1. 南公民館の2室に設置 2. 3か月の試行 3. 利用者アンケートと職員の作業時間を測定",
            "budget_yen": 1_800_000,
        },
        "roles": ("設置場所の調整と利用者への周知", "機器の設置・保守と暗証番号の発行"),
        "milestone": ("南公民館の2室に設置完了", 30),
        "kpi": {"name": "鍵の受け渡しにかかる職員の時間", "unit": "時間/月", "baseline": "40", "target": "10",
                "direction": "decrease", "method": "職員の作業記録", "data_source": "南公民館"},
        "plan": {
            "objective": "夜間と休日の鍵の受け渡しをなくし、職員の負担と利用者の待ち時間を減らす",
            "scope": "南公民館 講座室と和室の2室",
            "method": "予約確定時に利用時間だけ有効な暗証番号を発行する。開錠の記録は30日で消す。",
            "period_days": (45, 135),
            "budget_yen": 1_800_000,
            "risks": "停電時の開錠（非常用の鍵を窓口に保管）",
            "data_handling": "事業者に渡すのは予約番号と時間だけで、氏名や連絡先は渡さない",
        },
        "agreement": ("実証実験に関する協定書",
                      "第1条（目的）本協定は、公民館のスマートロックの実証実験に必要な事項を定める。\n"
                      "第2条（費用）機器と設置の費用は事業者の負担とする。\n"
                      "第3条（個人情報）市は事業者に利用者の氏名と連絡先を渡さない。"),
    },
    "家庭の使用済み天ぷら油を回収してまちで使う": {
        "company": ("demo_ecooil", "武蔵エコ油脂株式会社（デモ）", "製造業",
                    "廃食用油の回収と精製、バイオ燃料とキャンドルの原料への再生", ["npo-7", "pib-21"]),
        "proposal": {
            "title": "公民館とスーパーの回収箱で廃食用油を集め、燃料とキャンドルに",
            "summary": "市内10か所に回収箱を置き、集めた油を精製して市の車両の燃料とキャンドルナイトの原料にします。",
            "plan": "1. 回収箱10か所 2. 月2回の回収 3. 回収量と燃料化の量を公開",
            "budget_yen": 2_400_000,
        },
        "roles": ("回収場所の確保と市民への呼びかけ", "回収箱の設置、回収、精製と品質管理"),
        "milestone": ("回収箱10か所の設置完了", -150),
        "kpi": {"name": "廃食用油の回収量", "unit": "L/月", "baseline": "0", "target": "800",
                "direction": "increase", "method": "回収時の計量", "data_source": "武蔵エコ油脂の計量記録"},
        "plan": {
            "objective": "家庭の廃食用油を燃やすごみから資源に変え、地域の燃料とキャンドルに使う",
            "scope": "市内の公民館6か所とスーパー4店",
            "method": "回収箱を置き、月2回回収して計量する。精製した油は市の車両とキャンドルナイトで使う。",
            "period_days": (-180, -30),
            "budget_yen": 2_400_000,
            "risks": "回収箱への異物の混入（注意書きと月2回の点検）",
            "data_handling": "個人情報は扱わない（回収箱は無記名）",
        },
        "agreement": ("廃食用油の回収に関する協定書",
                      "第1条（目的）本協定は、家庭の廃食用油の回収と再生の実証に必要な事項を定める。\n"
                      "第2条（役割）市は回収場所を確保し、事業者は回収と精製を行う。"),
        "outcome": {
            "actual": ("620", -35, "6か月目の回収量"),
            "report": {"summary": "6か月で延べ3,100Lを回収し、市の車両2台の燃料とキャンドル1,000本になった",
                       "results": "回収量 0→620 L/月（目標800の77.5%）", "issues": "冬場の回収量の落ち込み",
                       "lessons": "スーパーの回収箱が公民館の3倍集まった"},
            "budget": {"actual_cost_yen": 2_250_000, "effects": "燃やすごみが年約37トン減る見込み",
                       "rationale": "燃料費の削減分で回収費の半分を賄える", "requested_budget_yen": 3_600_000},
            "decision": ("expand", "回収量と市民の反応がよく、回収箱を20か所に広げる"),
            "case": {"title": "回収箱で家庭の天ぷら油をまちの燃料とキャンドルに",
                     "summary": "公民館とスーパーに回収箱を置き、家庭の廃食用油を燃料とキャンドルの原料に再生した実証",
                     "approach": "市が回収場所を確保して呼びかけ、事業者が回収・精製を担った",
                     "outcomes": "6か月で3,100L、月620Lまで増えた",
                     "lessons": "買い物のついでに出せる場所がいちばん集まる",
                     "transferability": "回収業者と協定を結べば、どの市町村でも公民館とスーパーから始められる"},
        },
    },
}


class Pilots:
    """Carries the demo's themes of phases 3 and 4 forward; `actors` are demo_town's people by handle."""

    def __init__(self, call: Call, say: Say, actors: dict[str, dict[str, Any]]) -> None:
        self.call, self.say, self.actors = call, say, actors
        self.staff, self.secretariat = actors["demo_kyodo"], actors["demo_jimukyoku"]

    async def ask(self, endpoint: str, payload: Any) -> Any:
        return await self.call(pc.SERVICE, endpoint, payload)

    async def theme(self, theme_id: str) -> dict[str, Any]:
        return dict(await self.ask(pc.EP_THEME_GET, {"theme_id": theme_id, "actor": self.staff}))

    # -- phase 2: a short call and the company's proposal ------------------------------------------------------

    async def company(self, spec: dict[str, Any]) -> str:
        handle, name, industry, expertise, fields = spec["company"]
        orgs = (await self.ask(pc.EP_ORG_LIST, {"kind": "company"}))["orgs"]
        found = next((o for o in orgs if o["name"] == name), None)
        if found is None:
            found = await self.ask(pc.EP_ORG_CREATE, {
                "actor": self.actors[handle], "kind": "company", "name": name, "size": "small",
                "industry": industry, "expertise": expertise, "fields": fields})
            self.say(f"company\t{name}")
        return str(found["id"])

    async def open_call(self, theme: dict[str, Any], criteria: list[dict[str, Any]]) -> dict[str, Any]:
        """Phase 2 with a call open for CALL_SECONDS (requirements put again while the call is not yet open)."""
        action = {"actor": self.staff, "theme_id": theme["id"]}
        req = theme.get("requirements")
        if req and req.get("call_opened_at"):
            return theme
        await self.ask(pc.EP_THEME_REQUIREMENTS, {
            **action, "conditions": "市内で実施できること。個人情報は市の基準に沿って扱うこと。",
            "scope": "3〜6か月の実証の計画と体制の提案",
            "deadline": (datetime.now(UTC) + timedelta(seconds=CALL_SECONDS)).isoformat(), "criteria": criteria})
        if theme["phase"] == 1:
            await self.ask(pc.EP_THEME_ADVANCE, {**action, "to_phase": 2, "note": "要件が整い、パートナーを公募します"})
        return dict(await self.ask(pc.EP_THEME_CALL_OPEN, action))

    async def propose(self, theme: dict[str, Any], spec: dict[str, Any]) -> None:
        """The company's proposal, while its call is open (found by the company's own list when there)."""
        org_id = await self.company(spec)
        member = self.actors[spec["company"][0]]
        mine = (await self.ask(pc.EP_PROPOSAL_LIST, {"actor": member, "theme_id": theme["id"], "mine": True}))
        if mine["proposals"]:
            return
        await self.ask(pc.EP_PROPOSAL_SUBMIT, {"actor": member, "theme_id": theme["id"], "lead_org_id": org_id,
                                               **spec["proposal"]})
        self.say(f"proposal\t{spec['proposal']['title']}")

    # -- phase 2 → 3: the fair selection --------------------------------------------------------------------------

    async def select(self, theme: dict[str, Any]) -> bool:
        """Evaluators appointed, their declarations and scores, the close, the published result, phase 3. False
        when the call closed with no proposal (a run stopped between opening and proposing): nothing to select."""
        tid = theme["id"]
        jimu = {"actor": self.secretariat, "theme_id": tid}
        status = await self.ask(pc.EP_EVALUATION_STATUS, jimu)
        if not status["proposals"] and not status["closed_at"]:
            self.say(f"theme\t{theme['title']}\tits call closed without a proposal: left in phase 2")
            return False
        if status["closed_at"] is None:
            for handle in EVALUATORS:
                if self.actors[handle]["global_handle"] not in status["evaluators"]:
                    await self.ask(pc.EP_EVALUATOR_APPOINT, {**jimu, "global_handle":
                                                             self.actors[handle]["global_handle"]})
            for handle in EVALUATORS:
                who = self.actors[handle]
                mine = await self.ask(pc.EP_REVIEW_MINE, {"theme_id": tid, "actor": who})
                ids = [cr["id"] for cr in mine["criteria"]]
                for review in mine["reviews"]:
                    if not review["declared"]:
                        await self.ask(pc.EP_REVIEW_DECLARE, {"actor": who, "proposal_id": review["proposal_id"],
                                                              "conflicted": False})
                    if review["scores"] is None:
                        await self.ask(pc.EP_REVIEW_SCORE, {
                            "actor": who, "proposal_id": review["proposal_id"],
                            "scores": dict(zip(ids, SCORES, strict=False)),
                            "comment": "地域への効果がはっきりしていて、続けられる体制です"})
            status = await self.ask(pc.EP_EVALUATION_CLOSE, {**jimu, "note": "全員の採点がそろいました"})
        if status["published_at"] is None:
            best = status["ranking"][0]["proposal_id"]
            await self.ask(pc.EP_RESULT_PUBLISH, {**jimu, "selected": [best],
                                                  "reasons": "地域への効果と続けられる仕組みの評価が高かったため"})
            self.say(f"result\t{theme['title']}")
        await self.ask(pc.EP_THEME_ADVANCE, {"actor": self.staff, "theme_id": tid, "to_phase": 3,
                                             "note": "実証候補が決まり、実証の設計に進みます"})
        return True

    # -- phase 3: the pilot designed and agreed ------------------------------------------------------------------

    async def design(self, theme: dict[str, Any], spec: dict[str, Any], *, move_on: bool) -> None:
        tid = theme["id"]
        base = {"actor": self.staff, "theme_id": tid}
        pilot = await self.call(pc.SERVICE, plc.EP_PILOT_GET, base)
        today = datetime.now(JST).date()
        for party, title in zip(pilot["parties"], spec["roles"], strict=False):
            if not party["has_role"]:
                await self.pilot(plc.EP_ROLE_PUT, {**base, "org_id": party["org_id"], "title": title,
                                                   "responsibilities": title})
        if not pilot["milestones"]:
            name, days = spec["milestone"]
            await self.pilot(plc.EP_MILESTONE_PUT, {**base, "title": name,
                                                    "due_on": (today + timedelta(days=days)).isoformat()})
        if not pilot["kpis"]:
            await self.pilot(plc.EP_KPI_PUT, {**base, **spec["kpi"]})
        if pilot["plan"] is None:
            plan = dict(spec["plan"])
            start, end = plan.pop("period_days")
            await self.pilot(plc.EP_PLAN_PUT, {**base, **plan, "version": 0,
                                               "period_start": (today + timedelta(days=start)).isoformat(),
                                               "period_end": (today + timedelta(days=end)).isoformat()})
        if not pilot["agreements"]:
            title, body = spec["agreement"]
            await self.pilot(plc.EP_AGREEMENT_CREATE, {**base, "kind": "agreement", "title": title, "body": body})
        pilot = await self.call(pc.SERVICE, plc.EP_PILOT_GET, base)
        signers = {pilot["owner_department_id"]: self.staff}
        signers.update({party["org_id"]: self.actors[spec["company"][0]] for party in pilot["parties"]
                        if party["side"] != "municipality"})
        for ag in pilot["agreements"]:
            for party in ag["pending"]:
                await self.pilot(plc.EP_AGREEMENT_SIGN, {
                    "actor": signers[party["org_id"]], "theme_id": tid, "agreement_id": ag["id"],
                    "org_id": party["org_id"], "version": ag["version"], "sha256": ag["sha256"]})
                self.say(f"signed\t{ag['title']}\t{party['org_name']}")
        if move_on:
            await self.ask(pc.EP_THEME_ADVANCE, {**base, "to_phase": 4, "note": "協定を結び、実証を始めました"})

    async def pilot(self, endpoint: str, payload: Any) -> Any:
        return await self.call(pc.SERVICE, endpoint, payload)

    # -- phase 4: results, the decision, the case spread -----------------------------------------------------------

    async def conclude(self, theme: dict[str, Any], spec: dict[str, Any]) -> None:
        tid = theme["id"]
        base = {"actor": self.staff, "theme_id": tid}
        outcome = spec["outcome"]
        pilot = await self.pilot(plc.EP_PILOT_GET, base)
        today = datetime.now(JST).date()
        if pilot["decision"] is None:
            company = self.actors[spec["company"][0]]
            for ms in pilot["milestones"]:
                if ms["status"] != "done":
                    await self.pilot(plc.EP_MILESTONE_STATUS, {"actor": company, "theme_id": tid,
                                                               "milestone_id": ms["id"], "status": "done"})
            if not any(k["measurements"] for k in pilot["kpis"]):
                value, days, note = outcome["actual"]
                await self.pilot(plc.EP_ACTUAL_ADD, {
                    "actor": company, "theme_id": tid, "kpi_id": pilot["kpis"][0]["id"], "value": value,
                    "measured_on": (today + timedelta(days=days)).isoformat(), "note": note,
                    "source": spec["kpi"]["data_source"]})
            if pilot["report"] is None:
                await self.pilot(plc.EP_REPORT_PUT, {**base, **outcome["report"], "version": 0})
            if pilot["budget"] is None:
                await self.pilot(plc.EP_BUDGET_PUT, {**base, **outcome["budget"], "version": 0})
            decision, reasons = outcome["decision"]
            await self.pilot(plc.EP_DECISION_MAKE, {**base, "decision": decision, "reasons": reasons})
            pilot = await self.pilot(plc.EP_PILOT_GET, base)
        if pilot["case_id"] is None:
            await self.pilot(plc.EP_CASE_PUT, {**base, **outcome["case"], "draft_revision": 0})
        if not pilot["case_published_version"]:
            await self.pilot(plc.EP_CASE_PUBLISH, {**base, "note": "他の自治体にも広げられるよう公開します"})
            self.say(f"case\t{outcome['case']['title']}")

    # -- the whole way ------------------------------------------------------------------------------------------

    async def carry(self, themes: list[tuple[dict[str, Any], int]], criteria: list[dict[str, Any]]) -> None:
        """Each (theme, target phase 3 or 4) carried there: the calls opened together, one wait for their
        deadlines, then the selection, the pilot and (for phase 4) its results and case."""
        waiting: list[datetime] = []
        themes = [(await self.theme(theme["id"]), target) for theme, target in themes]
        for i, (theme, _) in enumerate(themes):
            if theme["phase"] <= 2:
                req = theme.get("requirements") or {}
                if not req.get("call_opened_at"):
                    theme = await self.open_call(theme, criteria)
                    themes[i] = (theme, themes[i][1])
                deadline = datetime.fromisoformat(theme["requirements"]["deadline"])
                if deadline > datetime.now(UTC):
                    await self.propose(theme, PILOTS[theme["title"]])
                    waiting.append(deadline)
        if waiting:
            await asyncio.sleep(max(0.0, (max(waiting) - datetime.now(UTC)).total_seconds()) + 0.5)
        for theme, target in themes:
            spec = PILOTS[theme["title"]]
            if theme["phase"] <= 2 and not await self.select(theme):
                continue
            theme = await self.theme(theme["id"])
            if theme["phase"] == 3:
                await self.design(theme, spec, move_on=target >= 4)
                theme = await self.theme(theme["id"])
            if theme["phase"] == 4 and target >= 4:
                await self.conclude(theme, spec)
