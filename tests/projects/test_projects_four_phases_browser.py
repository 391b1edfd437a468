"""One co-creation theme through all four phases in headless Chromium on a phone-sized screen, as its people would
do it: the municipality's staff (of the owner department) register their department, write the theme and its
recruitment requirements and publish it (phase 1, 課題整理); two companies propose (one leading a consortium with a
third), two evaluators score, the secretariat publishes the result (phase 2, 対話形成: tests/support/projects_walk.py's
steps, shared with tests/projects/test_projects_calls_browser.py); the owner department and the companies design the
pilot — roles, a milestone, a KPI, the plan, an agreement signed by the municipality and by both company parties (phase
3, 実証設計); then the actuals, the report, the budget rationale, the next-year decision and the case study published
(phase 4, 成果定着); a visitor reads the public case. The pages' texts and numbers are checked, not only statuses.

The gateway is served by uvicorn on a real port; identity and projects run beside it on a real nats-server; the
projects service's clock is moved past the call's deadline by the walk."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.browser import (
    click_link,
    facts,
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.projects_walk import JST, Walk, click, fill_form, partner_formation, walk  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(360)]  # a long walk; under a loaded machine it takes minutes
TITLE = "高齢者の移動手段の確保"


async def issue_structuring(w: Walk, d) -> str:
    """Phase 1 in the browser: the owner department's staff member registers the department, writes the theme,
    sets its requirements (the deadline two days ahead) and publishes it. Returns the theme's id."""
    page = await log_in(d, w.base, "kikaku", "/orgs/new")
    page = await fill(d, {"name": "企画政策課"}, selects={"kind": "自治体の部局"})
    assert "企画政策課" in page["text"] and "kikaku@tsurugashima" in page["text"], page["text"]
    page = await click_link(d, "参加する")  # the tab bar's group page, then the section
    page = await click_link(d, "共創テーマ")
    page = await click_link(d, "テーマを作成")
    page = await fill(d, {"title": TITLE, "background": "路線バスの減便で外出が難しくなった",
                          "target": "団地に住む75歳以上の方", "desired_outcome": "週2回以上の外出",
                          "company_points": "配車システム、車両と運行、見守りとの連携"},
                      checks=("input[name=fields][value='npo-3']",))
    assert page["url"].startswith("/themes/") and "下書き" in page["text"] and "1. 課題整理" in page["text"]
    tid = page["url"].rsplit("/", 1)[1]
    deadline = (w.clock() + timedelta(days=2)).astimezone(JST).strftime("%Y-%m-%dT%H:%M")
    page = await click_link(d, "募集要件を設定")
    page = await fill(d, {"conditions": "市内で実証できる法人または共同事業体", "scope": "6か月の実証",
                          "crit_name_1": "実現可能性", "crit_weight_1": "60", "crit_name_2": "費用対効果",
                          "crit_weight_2": "40"}, raw={"deadline": deadline})
    assert page["url"] == f"/themes/{tid}" and "実現可能性" in page["text"], page["text"]
    page = await fill(d, {}, submit="form#publish button")
    assert "取り消すことはできません" in page["text"]  # asked first: publication cannot be withdrawn
    page = await fill(d, {}, submit="form#confirm button")
    assert "公開中" in page["text"] and page["overflow"] <= 0, page["text"]
    return tid


async def test_one_theme_through_all_four_phases(walk: Walk, phone_browser) -> None:  # noqa: F811
    d = phone_browser
    tid = await issue_structuring(walk, d)
    orgs = await walk.companies()
    await partner_formation(walk, d, tid, orgs)
    await pilot_design(walk, d, tid)
    await results(walk, d, tid)


AGREEMENT = ("第1条（目的）本協定は、予約型乗合交通の実証実験の実施に関し必要な事項を定める。\n"
             "第2条（費用）実証に要する費用は各自の負担とする。")


async def pilot_design(w: Walk, d, tid: str) -> None:
    """Phase 3 (実証設計) in the browser: the owner department's staff member writes the split of roles for the
    three parties, a milestone, a KPI, the plan and an agreement, and signs it for the department; each company
    party signs it for itself (and one marks the milestone done); the gate opens and the theme moves to phase 4."""
    page = await log_in(d, w.base, "kikaku", f"/themes/{tid}")
    assert ("成果定着フェーズへ進むために必要なこと" in page["text"]
            and "実証計画書を保存する" in page["text"]), page["text"]
    page = await click_link(d, "実証設計（役割")
    assert page["url"] == f"/themes/{tid}/pilot" and "役割未設定" in page["text"], page["text"]
    for party, title, duty in (("企画政策課", "全体統括", "関係課との調整、住民への周知"),
                               ("ベータ交通株式会社", "運行", "車両2台と運転手の手配、配車"),
                               ("NPO法人ガンマ見守り", "見守り", "利用者への声かけと安否の連絡")):
        page = await fill_form(d, "form#add-role", {"title": title, "responsibilities": duty},
                               selects={"org_id": party})
        assert "保存しました" in page["text"] and duty in page["text"], page["text"]
    assert "役割未設定" not in page["text"]
    page = await fill_form(d, "form#add-milestone", {"title": "運行開始", "description": "平日9時〜17時"},
                           raw={"due_on": "2027-04-01"})
    assert "運行開始" in page["text"] and "2027-04-01" in page["text"]
    page = await fill_form(d, "#add-kpi form", {"name": "週あたり外出回数", "unit": "回/週", "baseline": "1.2",
                                                "target": "2.0", "method": "利用者アンケート（月1回）"})
    assert "1.2 → 2 回/週" in page["text"], page["text"]
    page = await fill_form(d, "form#plan-form", {
        "objective": "団地の高齢者が週2回以上外出できるか検証する", "scope": "団地の75歳以上 約300人",
        "method": "予約型乗合タクシー2台を平日運行", "budget_yen": "4800000", "risks": "運転手の確保",
        "data_handling": "氏名と住所は市が保有し、事業者には予約番号のみ"},
        raw={"period_start": "2027-04-01", "period_end": "2027-09-30"})
    assert "版 1" in page["text"] and "4,800,000 円" in page["text"] and "2027-04-01 – 2027-09-30" in page["text"]
    page = await fill_form(d, "form#new-agreement", {"title": "実証実験に関する協定書", "body": AGREEMENT},
                           selects={"kind": "協定書"})
    assert "実証実験に関する協定書" in page["text"] and "署名待ち" in page["text"], page["text"]
    assert page["overflow"] <= 0, page
    page = await click_link(d, "実証実験に関する協定書")
    assert "第2条（費用）" in page["text"] and "版 1" in page["text"] and "SHA-256" in page["text"]
    pending = page["text"].split("未署名の参加者:", 1)[1].split("\n", 1)[0]
    assert all(x in pending for x in ("企画政策課", "ベータ交通株式会社", "NPO法人ガンマ見守り")), page["text"]
    page = await click(d, "form.sign button")
    assert "保存しました" in page["text"] and "署名待ち" in page["text"] and "企画 太郎" in page["text"]
    agreement = page["url"]
    assert page["overflow"] <= 0, page

    # The company parties: each signs for itself; one marks the milestone done.
    page = await log_in(d, w.base, "beta", f"/themes/{tid}/pilot")
    assert "運行" in page["text"] and "週あたり外出回数" in page["text"] and "役割を追加" not in page["text"]
    page = await click(d, "form.milestone-status button[value=done]")
    assert "完了" in page["text"] and "完了にする" not in page["text"], page["text"]
    page = await open_page(d, w.base + agreement)
    assert "署名する：ベータ交通株式会社" in page["text"] and "署名する：NPO" not in page["text"], page["text"]
    page = await click(d, "form.sign button")
    assert "ベータ 田中" in page["text"] and "署名待ち" in page["text"]
    page = await log_in(d, w.base, "gamma", agreement)
    page = await click(d, "form.sign button")
    assert "全者署名済み" in page["text"] and page["text"].count("有効") == 3, page["text"]

    # The owner department: the gate is open; the move to phase 4.
    page = await log_in(d, w.base, "kikaku", f"/themes/{tid}")
    assert "フェーズ4へ進む準備が整っています" in page["text"], page["text"]
    page = await fill(d, {"note": "協定を締結し、実証を開始したため"}, submit="form#advance button")
    assert "保存しました" in page["text"] and "成果定着（実績" in page["text"], page["text"]
    assert page["overflow"] <= 0


async def results(w: Walk, d, tid: str) -> None:
    """Phase 4 (成果定着) in the browser: the actual against the KPI (baseline 1.2, target 2.0, actual 1.8: 75.0 %),
    the report, the budget rationale, the decision (本格導入), the case study drafted and published; a visitor reads
    it from the list of cases."""
    page = await click_link(d, "成果定着（実績")
    assert page["url"] == f"/themes/{tid}/results" and "KPIの実績" in page["text"], page["text"]
    page = await fill_form(d, "form#add-actual", {"value": "1.8", "note": "9月のアンケート", "source": "市の調査"},
                           selects={"kpi_id": "週あたり外出回数（回/週）"}, raw={"measured_on": "2027-09-30"})
    assert "75.0 %" in page["text"] and "1.8" in page["text"], page["text"]
    page = await fill_form(d, "form#report-form", {"summary": "外出の回数が増えた", "results": "週1.2回から1.8回へ",
                                                   "issues": "運転手の確保が難しい",
                                                   "lessons": "見守りと一体の運行が鍵"})
    assert "外出の回数が増えた" in page["text"] and "版 1" in page["text"]
    page = await fill_form(d, "form#budget-form", {"actual_cost_yen": "4500000", "effects": "通院の送迎の負担が減った",
                                                   "rationale": "外出回数の増加と補助の削減",
                                                   "requested_budget_yen": "9000000"})
    assert "4,500,000 円" in page["text"] and "9,000,000 円" in page["text"], page["text"]
    page = await fill_form(d, "form#decision-form", {"reasons": "目標の75%を達成し、利用者の満足度も高い"},
                           checks=("input[name=decision][value=adopt]",))
    assert "本格導入" in page["text"] and "このテーマは完了しました" in page["text"], page["text"]
    assert "実績を記録" not in page["text"]
    page = await fill_form(d, "form#case-form", {
        "title": "団地の高齢者の外出を支える乗合タクシー", "summary": "予約型の乗合タクシーと見守りを一体で運行した",
        "approach": "交通事業者とNPOが役割を分担", "outcomes": "週あたり外出回数が1.2回から1.8回に",
        "lessons": "運転手の確保を早めに",
        "transferability": "団地の多い自治体で、交通と見守りの事業者が組めば実施できる"})
    assert "保存しました" in page["text"], page["text"]
    page = await click(d, "form#publish-case button")
    assert "公開中の事例" in page["text"] and "団地の高齢者の外出を支える乗合タクシー" in page["text"], page["text"]
    assert page["overflow"] <= 0

    # A visitor: the node's cases, the case.
    await run(d.delete_all_cookies)
    page = await open_page(d, w.base + "/")
    page = await click_link(d, "参加する")
    page = await click_link(d, "事例")
    assert page["url"] == "/cases" and "団地の高齢者の外出を支える乗合タクシー" in page["text"], page["text"]
    page = await click_link(d, "団地の高齢者の外出を支える乗合タクシー")
    for words in ("企画政策課", "本格導入", "交通事業者とNPOが役割を分担", "団地の多い自治体で", "ベータ交通株式会社",
                  "NPO法人ガンマ見守り", "週あたり外出回数", "1.2", "75.0 %"):
        assert words in page["text"], words
    for secret in ("第1条", "4,500,000", "運転手の確保が難しい", "氏名と住所"):
        assert secret not in page["text"], secret
    assert (await run(facts, d))["overflow"] <= 0
