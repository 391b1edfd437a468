"""Steps shared by the co-creation browser walks (tests/projects/test_projects_calls_browser.py, the phase 2 walk, and
tests/projects/test_projects_four_phases_browser.py, all four phases): the node (identity and projects on a real
nats-server, the gateway served by uvicorn on a real port, the projects service on a clock the test moves), the people,
the companies, and the phase 2 walk itself (the call, a briefing, two proposals, two evaluators, the result, the move
to phase 3), done in the browser as people would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.projects.app import ProjectsService
from tests.projects.test_projects_calls import Clock
from tests.support.browser import click_link, facts, fill, log_in, open_page, run, wait_left
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as c
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

NODE = "tsurugashima"
PEOPLE = (("kikaku", "企画 太郎", "staff"), ("jimu", "事務局 一郎", "secretariat"), ("acme", "アクメ 佐藤", None),
          ("beta", "ベータ 田中", None), ("gamma", "ガンマ 高橋", None), ("hyoka_one", "評価 一", None),
          ("hyoka_two", "評価 二", None), ("shimin", "市民 次郎", None))
COMPANIES = (("acme", "株式会社アクメ", "デマンド交通の配車"),
             ("beta", "ベータ交通株式会社", "乗合タクシーの車両と運行"),
             ("gamma", "NPO法人ガンマ見守り", "高齢者の見守り"))
PARTNERS_LINK = "対話形成（説明会・公募・選定）"
# The walks log people in and out more often than the gateway lets one address do by default (10 in 5 minutes).
LOGIN_LIMIT = 50


class Walk:
    def __init__(self, base: str, nc: nats.NATS, clock: Clock, users: dict[str, ic.User]) -> None:
        self.base, self.nc, self.clock, self.users = base, nc, clock, users

    def actor(self, handle: str) -> dict[str, Any]:
        u = self.users[handle]
        return {"user_id": u.id, "global_handle": u.global_handle, "display_name": u.display_name,
                "roles": list(u.roles)}

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)

    async def companies(self) -> dict[str, dict[str, Any]]:
        """The three companies (registered over NATS: their pages were walked in
        tests/projects/test_projects_browser.py)."""
        orgs = {}
        for handle, name, expertise in COMPANIES:
            orgs[handle] = await self.call(c.EP_ORG_CREATE, {"actor": self.actor(handle), "kind": "company",
                                                             "name": name, "fields": ["npo-3"],
                                                             "expertise": expertise})
        return orgs


@pytest.fixture
async def walk(nats_server, tmp_path) -> AsyncIterator[Walk]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clock = Clock()
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base))
    projects = ProjectsService(ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url,
                                               data_dir=str(tmp_path / "pj"), public_url=base), clock=clock)
    async with started(ident, projects):
        nc = await nats.connect(nats_server.url)
        try:
            users = await add_people(nc, NODE, PEOPLE)
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,projects",
                              public_url=base, login_limit=LOGIN_LIMIT)
            async with served(app, "127.0.0.1", port):
                yield Walk(base, nc, clock, users)
        finally:
            await nc.close()


async def click(driver: Any, css: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    def go() -> dict[str, Any]:
        button = driver.find_element(By.CSS_SELECTOR, css)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        return wait_left(driver, button)

    return await run(go)


async def score(driver: Any, proposal_id: str, values: dict[str, str], comment: str) -> dict[str, Any]:
    """Choose a score per criterion in one proposal's form on the evaluator's page, write the comment, save."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def go() -> dict[str, Any]:
        box = driver.find_element(By.ID, f"p-{proposal_id}")
        for criterion_id, value in values.items():
            Select(box.find_element(By.CSS_SELECTOR, f"select[name='score_{criterion_id}']")).select_by_value(value)
        box.find_element(By.NAME, "comment").send_keys(comment)
        button = box.find_element(By.CSS_SELECTOR, "form.score button")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        return wait_left(driver, button)

    return await run(go)


async def declare(driver: Any, proposal_id: str, conflicted: bool, reason: str = "") -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    def go() -> dict[str, Any]:
        box = driver.find_element(By.ID, f"p-{proposal_id}")
        box.find_element(By.CSS_SELECTOR, f"input[name=conflicted][value={'yes' if conflicted else 'no'}]").click()
        if reason:
            box.find_element(By.NAME, "reason").send_keys(reason)
        button = box.find_element(By.CSS_SELECTOR, "form.declare button")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        return wait_left(driver, button)

    return await run(go)


async def partner_formation(walk: Walk, d: Any, tid: str, orgs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Phase 2 (対話形成) in the browser, for a published theme in phase 1 with its requirements (the deadline two
    days ahead on the service's clock, criteria 実現可能性 60 and 費用対効果 40): the owner department moves it to
    phase 2, opens the call, schedules a briefing; company A registers and proposes alone; company B proposes as
    the lead of a consortium with C, which confirms; two evaluators declare and score after the deadline; the
    secretariat closes and publishes B's proposal as the pilot candidate; a visitor reads the result; the owner
    moves the theme to phase 3. Returns the proposals' ids ({"acme": …, "beta": …})."""
    base = walk.base
    crit = [x["id"] for x in (await walk.call(c.EP_THEME_GET, {"theme_id": tid}))["requirements"]["criteria"]]

    # The owner department: phase 2, the call, a briefing; the companies that fit.
    page = await log_in(d, base, "kikaku", f"/themes/{tid}")
    page = await fill(d, {"note": "募集要件と評価基準を公開したので対話形成へ"}, submit="form#advance button")
    assert "2. 対話形成" in page["text"] and PARTNERS_LINK in page["text"], page["text"]
    page = await click(d, "form#open-call button")
    assert "公募中" in page["text"] and page["overflow"] <= 0
    page = await click_link(d, PARTNERS_LINK)
    assert page["url"] == f"/themes/{tid}/partners" and "説明会の予定はまだありません" in page["text"]
    starts = (walk.clock() + timedelta(days=1)).astimezone(JST).replace(second=0, microsecond=0)
    page = await fill(d, {"title": "第1回 説明会", "venue": "市役所 3階 会議室", "online_url": "https://meet.example.jp/x",
                          "capacity": "2"},
                      raw={"starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
                           "ends_at": (starts + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")},
                      submit="form#new-briefing button")
    assert "保存しました" in page["text"] and "第1回 説明会" in page["text"] and "残席 2" in page["text"], page["text"]
    page = await click_link(d, "テーマに適合する企業・団体")
    ranked = [name for name in ("ベータ交通株式会社", "株式会社アクメ", "NPO法人ガンマ見守り") if name in page["text"]]
    assert ranked == ["ベータ交通株式会社", "株式会社アクメ", "NPO法人ガンマ見守り"], page["text"]
    assert page["text"].index("ベータ交通株式会社") < page["text"].index("株式会社アクメ") and page["overflow"] <= 0

    # Company A: the themes that fit it, the briefing, a single-company proposal.
    page = await log_in(d, base, "acme", f"/orgs/{orgs['acme']['id']}")
    page = await click_link(d, "適合する共創テーマ")
    assert "高齢者の移動手段の確保" in page["text"], page["text"]
    page = await click_link(d, "高齢者の移動手段の確保")
    assert "参加URLは申込後に表示されます" in page["text"] and "meet.example.jp" not in page["text"]
    page = await click(d, "form.register button")
    assert "申込済み" in page["text"] and "https://meet.example.jp/x" in page["text"] and "残席 1" in page["text"]
    page = await click_link(d, "提案を提出する")
    page = await fill(d, {"title": "AI配車による乗合交通", "summary": "AIで予約を束ねて配車する（社外秘）",
                          "plan": "1. 需要調査 2. 車両2台で3か月運行", "budget_yen": "4800000",
                          "att_label_1": "会社案内", "att_url_1": "https://acme.example.jp/about.pdf"},
                      submit="form#proposal-form button")
    assert page["url"].startswith("/proposals/") and "提出済み" in page["text"] and "4,800,000 円" in page["text"]
    assert page["overflow"] <= 0, page
    acme_pid = page["url"].rsplit("/", 1)[1]

    # Company B: a consortium with company C as partner; then an edit.
    page = await log_in(d, base, "beta", f"/themes/{tid}/proposals/new")
    page = await fill(d, {"title": "乗合タクシーと見守りの一体運行", "summary": "タクシー車両で運行し、見守りと連携",
                          "plan": "1. 運行 2. 見守り連携 3. 効果測定", "budget_yen": "6000000",
                          "att_label_1": "体制", "att_text_1": "運行管理者2名、見守り員3名"},
                      checks=(f"input[name=partner_org_ids][value='{orgs['gamma']['id']}']",),
                      submit="form#proposal-form button")
    assert "NPO法人ガンマ見守り — 確認待ち" in page["text"], page["text"]
    beta_pid = page["url"].rsplit("/", 1)[1]
    page = await click(d, "#edit-proposal")
    page = await fill(d, {"budget_yen": "5500000"}, submit="form#proposal-form button")
    assert "5,500,000 円" in page["text"] and "版 2" in page["text"]
    # Confidential: B's member gets "not found" for A's proposal.
    page = await open_page(d, f"{base}/proposals/{acme_pid}")
    assert "見つかりません" in page["text"] and "AI配車" not in page["text"]

    # Company C confirms its participation.
    page = await log_in(d, base, "gamma", f"/proposals/{beta_pid}")
    assert "乗合タクシーと見守りの一体運行" in page["text"]
    page = await click(d, "form.partner-answer button[value=confirm]")
    assert "NPO法人ガンマ見守り — 参加確認済み" in page["text"], page["text"]

    # The secretariat appoints two evaluators.
    page = await log_in(d, base, "jimu", f"/themes/{tid}/selection")
    for handle in ("hyoka_one", "hyoka_two"):
        page = await fill(d, {"global_handle": f"{handle}@{NODE}"}, submit="form#appoint button")
    assert f"hyoka_one@{NODE}" in page["text"] and f"hyoka_two@{NODE}" in page["text"] and page["overflow"] <= 0

    # The deadline passes.
    walk.clock.offset += timedelta(days=3)

    page = await log_in(d, base, "hyoka_one", f"/themes/{tid}/evaluate")
    assert "利益相反" in page["text"] and "AI配車による乗合交通" in page["text"], page["text"]
    for pid in (acme_pid, beta_pid):
        page = await declare(d, pid, False)
    page = await score(d, acme_pid, {crit[0]: "5", crit[1]: "4"}, "配車の実績が豊富")
    page = await score(d, beta_pid, {crit[0]: "4", crit[1]: "4"}, "見守りとの連携が具体的")
    assert page["text"].count("採点済み") == 2 and page["overflow"] <= 0, page["text"]

    page = await log_in(d, base, "hyoka_two", f"/themes/{tid}/evaluate")
    assert "配車の実績が豊富" not in page["text"]  # another evaluator's comment is never shown
    page = await declare(d, acme_pid, True, "アクメ社に親族が勤務")
    assert "利益相反あり（採点対象外）" in page["text"]
    page = await declare(d, beta_pid, False)
    page = await score(d, beta_pid, {crit[0]: "5", crit[1]: "3"}, "地域への波及が大きい")
    assert "採点済み" in page["text"]

    # The secretariat: progress, the close, the result with reasons.
    page = await log_in(d, base, "jimu", f"/themes/{tid}/selection")
    assert "利益相反" in page["text"] and "採点済" in page["text"] and "配車の実績" not in page["text"]
    page = await click(d, "form#close button")
    assert "順位は確定しました" in page["text"], page["text"]
    # AI配車: 5·0.6 + 4·0.4 = 4.6 (one evaluator); 乗合タクシー: (4.0 + 4.2) / 2 = 4.1
    assert "4.600" in page["text"] and "4.100" in page["text"]
    page = await fill(d, {"reasons": "見守りと一体の運行体制が実証に最も適しているため。"},
                      checks=(f"input[name=selected][value='{beta_pid}']",), submit="form#publish-result button")
    assert page["url"] == f"/themes/{tid}/result" and "実証候補" in page["text"]

    # Anyone reads the result; no proposal's text is in it.
    await run(d.delete_all_cookies)
    page = await open_page(d, f"{base}/themes/{tid}/result")
    assert "乗合タクシーと見守りの一体運行" in page["text"] and "見守りと一体の運行体制" in page["text"]
    assert "4.600" in page["text"] and "4.100" in page["text"] and "評価項目ごとの平均点" in page["text"]
    for secret in ("社外秘", "需要調査", "5,500,000", "hyoka", "配車の実績"):
        assert secret not in page["text"], secret
    assert page["overflow"] <= 0
    page = await open_page(d, f"{base}/proposals/{beta_pid}")
    assert page["url"] == "/login"

    # The owner department moves the theme to phase 3 (実証設計).
    page = await log_in(d, base, "kikaku", f"/themes/{tid}")
    page = await fill(d, {"note": "選定結果を公表、実証候補が決まったため"}, submit="form#advance button")
    assert "3. 実証設計" in page["text"] and "保存しました" in page["text"], page["text"]
    assert (await run(facts, d))["overflow"] <= 0
    return {"acme": acme_pid, "beta": beta_pid}


async def fill_form(driver: Any, form_css: str, values: dict[str, str] | None = None, *,
                    selects: dict[str, str] | None = None, raw: dict[str, str] | None = None,
                    checks: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fill one form of a page that has several with the same field names (the workspace's add and edit forms):
    open the folded section (<details>) it is in, as a person taps its heading, type into its fields, choose
    options by visible text, set date inputs' values directly, tick what `checks` selects inside it, submit it,
    and wait for the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def go() -> dict[str, Any]:
        form = driver.find_element(By.CSS_SELECTOR, form_css)
        box = driver.execute_script("return arguments[0].closest('details')", form)
        if box is not None and not box.get_attribute("open"):
            summary = box.find_element(By.TAG_NAME, "summary")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
            summary.click()
        for name, value in (values or {}).items():
            field = form.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        for name, text in (selects or {}).items():
            Select(form.find_element(By.NAME, name)).select_by_visible_text(text)
        for name, value in (raw or {}).items():
            driver.execute_script("arguments[0].value = arguments[1]", form.find_element(By.NAME, name), value)
        for css in checks:
            form.find_element(By.CSS_SELECTOR, css).click()
        button = form.find_element(By.CSS_SELECTOR, "button[type=submit]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        button.click()
        return wait_left(driver, button)

    return await run(go)
