"""Co-creation (ORG phase 1) in headless Chromium on a phone-sized screen: municipal staff record a hearing, make a
theme of it, set its recruitment requirements and publish it; a company registers and finds the theme; a visitor
sends the contact form and reads what to check if the auto-reply does not come. The gateway is served by uvicorn on
a real port; the identity and projects services and a local SMTP server run beside it on a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from gateway.app import create_app
from identity.app import IdentityService
from services.projects.app import ProjectsService
from tests.support.browser import phone_browser  # noqa: F401 - fixture
from tests.support.http_server import serve
from tests.support.smtp_helpers import Smtp
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import GatewaySettings, ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
PW = "correct horse battery"


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[tuple[str, Smtp]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()
    mail = SmtpSettings(host="127.0.0.1", port=smtp.port)
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base), smtp=mail)
    projects = ProjectsService(ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url,
                                               data_dir=str(tmp_path / "pj"), public_url=base), smtp=mail)
    await ident.start()
    await projects.start()
    nc = await nats.connect(nats_server.url)
    for handle, name, role in (("kikaku", "企画 太郎", "staff"), ("acme", "アクメ 佐藤", None)):
        await rpc.call(nc, subjects.svc(NODE, ic.SERVICE, ic.EP_USER_ADD), ic.UserAddIn(
            handle=handle, email=f"{handle}@example.jp", password=PW, display_name=name), timeout=15)
        if role:
            await rpc.call(nc, subjects.svc(NODE, ic.SERVICE, ic.EP_USER_GRANT), ic.RoleIn(handle=handle, role=role))
    await nc.close()
    app = create_app(GatewaySettings(node_id=NODE, nats_url=nats_server.url, services="identity,projects",
                                     data_dir=str(tmp_path / "gw"), public_url=base, request_timeout=15))
    server, task = await serve(app, "127.0.0.1", port)
    try:
        yield base, smtp
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await projects.stop()
        await ident.stop()


def facts(driver: Any) -> dict[str, Any]:
    return driver.execute_script(
        """return {lang: document.documentElement.lang, text: document.body.innerText, url: location.pathname,
                   overflow: document.documentElement.scrollWidth - window.innerWidth};""")


async def run(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def open_page(driver: Any, url: str) -> dict[str, Any]:
    await run(driver.get, url)
    return await run(facts, driver)


def wait_left(driver: Any, element: Any) -> dict[str, Any]:
    """Wait until the page `element` was on has been replaced and the next one has loaded. While the old document
    goes away, Chromium may answer "node does not belong to the document" instead of a stale element: both mean
    the page has gone."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_: Any) -> bool:
        try:
            element.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    WebDriverWait(driver, 15).until(gone)
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return facts(driver)


async def fill(driver: Any, values: dict[str, str], *, checks: tuple[str, ...] = (),
               selects: dict[str, str] | None = None, raw: dict[str, str] | None = None,
               submit: str = "main form button[type=submit]") -> dict[str, Any]:
    """Type into fields, tick checkboxes (CSS selectors), choose options by visible text, set the value of date
    inputs directly (typing into them depends on the browser's locale), submit, and wait for the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def go() -> dict[str, Any]:
        for name, value in values.items():
            field = driver.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)
        for css in checks:
            driver.find_element(By.CSS_SELECTOR, css).click()
        for name, text in (selects or {}).items():
            Select(driver.find_element(By.NAME, name)).select_by_visible_text(text)
        for name, value in (raw or {}).items():
            driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.NAME, name), value)
        button = driver.find_element(By.CSS_SELECTOR, submit)
        button.click()
        return wait_left(driver, button)

    return await run(go)


async def click_link(driver: Any, text: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    def go() -> dict[str, Any]:
        link = driver.find_element(By.PARTIAL_LINK_TEXT, text)
        link.click()
        return wait_left(driver, link)

    return await run(go)


async def log_in(driver: Any, base: str, handle: str, to: str) -> dict[str, Any]:
    await run(driver.delete_all_cookies)
    await open_page(driver, f"{base}/login?next={to}")
    return await fill(driver, {"login": handle, "password": PW})


async def test_staff_publish_a_theme_a_company_finds_it_a_visitor_writes_in(portal, phone_browser) -> None:  # noqa: F811
    base, smtp = portal
    d = phone_browser

    # Municipal staff: their department, a hearing, a theme made of it.
    page = await log_in(d, base, "kikaku", "/orgs/new")
    assert page["url"] == "/orgs/new" and "自治体の部局" in page["text"], page["text"]
    page = await fill(d, {"name": "企画政策課"}, selects={"kind": "自治体の部局"})
    assert "企画政策課" in page["text"] and "kikaku@tsurugashima" in page["text"] and page["overflow"] <= 0

    page = await open_page(d, base + "/hearings")
    assert "部局横断ヒアリング" in page["text"] and "まだ記録がありません" in page["text"]
    page = await fill(d, {"current_state": "郊外の団地で路線バスが減便された", "issues": "通院の足がない\n買い物が難しい",
                          "attendees": "企画政策課、交通政策担当"}, raw={"held_on": "2025-06-02"})
    assert "保存しました" in page["text"] and "通院の足がない" in page["text"] and page["overflow"] <= 0, page["text"]

    page = await click_link(d, "テーマを作成")
    assert page["url"] == "/themes/new"
    page = await fill(d, {"title": "高齢者の移動手段の確保", "background": "路線バスの減便で外出が難しくなった",
                          "target": "団地に住む75歳以上の方", "desired_outcome": "週2回以上の外出",
                          "company_points": "配車システム、車両と運行"},
                      checks=("input[name=fields][value='npo-3']",))
    assert page["url"].startswith("/themes/") and "下書き" in page["text"] and "1. 課題整理" in page["text"]
    assert page["overflow"] <= 0, page
    theme_url = page["url"]

    page = await click_link(d, "募集要件を設定")
    page = await fill(d, {"conditions": "市内で実証に参加できる法人", "scope": "6か月の実証",
                          "crit_name_1": "実現可能性", "crit_weight_1": "60", "crit_name_2": "費用対効果",
                          "crit_weight_2": "40"}, raw={"deadline": "2099-03-31T17:00"})
    assert page["url"] == theme_url and "実現可能性" in page["text"] and "2099-03-31 17:00" in page["text"], page["text"][-600:]
    page = await fill(d, {}, submit="form#publish button")
    assert "公開中" in page["text"] and page["overflow"] <= 0, page["text"]

    # A company: registers itself, finds the theme among those in its field.
    page = await log_in(d, base, "acme", "/orgs/new")
    assert "自治体の部局" not in page["text"]  # only staff register departments
    page = await fill(d, {"name": "株式会社アクメ", "industry": "交通・運輸", "expertise": "デマンド交通の配車"},
                      checks=("input[name=fields][value='npo-3']",), selects={"size": "中小（10〜99人）"})
    assert "株式会社アクメ" in page["text"] and "acme@tsurugashima (管理者)" in page["text"], page["text"]
    page = await open_page(d, base + "/themes")
    page = await fill(d, {}, selects={"field": "まちづくりの推進を図る活動"}, submit="main form button")
    assert "高齢者の移動手段の確保" in page["text"] and "企画政策課" in page["text"] and page["overflow"] <= 0
    page = await click_link(d, "高齢者の移動手段の確保")
    assert "実現可能性" in page["text"] and "編集" not in page["text"] and "次のフェーズへ" not in page["text"]

    # A visitor: the contact form, and what to check when the reply does not come.
    await run(d.delete_all_cookies)
    page = await open_page(d, base + "/contact")
    assert "相談・お問い合わせ" in page["text"] and page["overflow"] <= 0
    page = await fill(d, {"name": "山田 太郎", "organisation": "鶴ヶ島市", "email": "yamada@example.jp",
                          "topic": "テーマ設計の相談", "message": "1部局から始められますか"},
                      checks=("input[name=kind][value=municipality]",))
    assert "お問い合わせを受け付けました" in page["text"] and "受付番号" in page["text"], page["text"]
    for words in ("迷惑メールフォルダ", "メールアドレスに誤り", "ドメイン指定受信", "セキュリティ設定",
                  "別のメールアドレス"):
        assert words in page["text"], words
    assert page["overflow"] <= 0
    for _ in range(200):
        if any(m["To"] == "yamada@example.jp" for m in smtp.handler.parsed()):
            break
        await asyncio.sleep(0.05)
    assert any(m["To"] == "yamada@example.jp" for m in smtp.handler.parsed())
