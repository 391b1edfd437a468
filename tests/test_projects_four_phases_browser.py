"""One co-creation theme through all four phases in headless Chromium on a phone-sized screen, as its people would
do it: the municipality's staff (of the owner department) register their department, write the theme and its
recruitment requirements and publish it (phase 1, 課題整理); two companies propose (one leading a consortium with a
third), two evaluators score, the secretariat publishes the result (phase 2, 対話形成: tests/projects_walk.py's
steps, shared with tests/test_projects_calls_browser.py); the owner department and the companies design the pilot —
roles, a milestone, a KPI, the plan, an agreement signed by the municipality and by both company parties (phase 3,
実証設計); then the actuals, the report, the budget rationale, the next-year decision and the case study published
(phase 4, 成果定着); a visitor reads the public case. The pages' texts and numbers are checked, not only statuses.

The gateway is served by uvicorn on a real port; identity and projects run beside it on a real nats-server; the
projects service's clock is moved past the call's deadline by the walk."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.browser import phone_browser  # noqa: F401 - fixture
from tests.projects_walk import JST, Walk, partner_formation, walk  # noqa: F401 - fixture
from tests.test_projects_browser import click_link, fill, log_in

pytestmark = pytest.mark.browser
TITLE = "高齢者の移動手段の確保"


async def issue_structuring(w: Walk, d) -> str:
    """Phase 1 in the browser: the owner department's staff member registers the department, writes the theme,
    sets its requirements (the deadline two days ahead) and publishes it. Returns the theme's id."""
    page = await log_in(d, w.base, "kikaku", "/orgs/new")
    page = await fill(d, {"name": "企画政策課"}, selects={"kind": "自治体の部局"})
    assert "企画政策課" in page["text"] and "kikaku@tsurugashima" in page["text"], page["text"]
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
    assert "公開中" in page["text"] and page["overflow"] <= 0, page["text"]
    return tid


async def test_one_theme_through_all_four_phases(walk: Walk, phone_browser) -> None:  # noqa: F811
    d = phone_browser
    tid = await issue_structuring(walk, d)
    orgs = await walk.companies()
    await partner_formation(walk, d, tid, orgs)
