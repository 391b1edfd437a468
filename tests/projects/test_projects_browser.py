"""Co-creation (ORG phase 1) in headless Chromium on a phone-sized screen: municipal staff record a hearing, make a
theme of it, set its recruitment requirements and publish it; a company registers and finds the theme; a visitor
sends the contact form and reads what to check if the auto-reply does not come. The gateway is served by uvicorn on
a real port; the identity and projects services and a local SMTP server run beside it on a real nats-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest

from identity.app import IdentityService
from services.projects.app import ProjectsService
from tests.support.browser import (
    click_link,
    fill,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


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
    async with started(ident, projects):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("kikaku", "企画 太郎", "staff"), ("acme", "アクメ 佐藤", None)))
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,projects", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, smtp


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
    page = await fill(d,
                      {"current_state": "郊外の団地で路線バスが減便された", "issues": "通院の足がない\n買い物が難しい",
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
    assert (page["url"] == theme_url and "実現可能性" in page["text"]
            and "2099-03-31 17:00" in page["text"]), page["text"][-600:]
    page = await fill(d, {}, submit="form#publish button")
    assert "取り消すことはできません" in page["text"] and page["overflow"] <= 0  # asked first
    page = await fill(d, {}, submit="form#confirm button")
    assert "公開中" in page["text"] and page["overflow"] <= 0, page["text"]

    # A company: registers itself, finds the theme among those in its field.
    page = await log_in(d, base, "acme", "/orgs/new")
    assert "自治体の部局" not in page["text"]  # only staff register departments
    page = await fill(d, {"name": "株式会社アクメ", "industry": "交通・運輸", "expertise": "デマンド交通の配車"},
                      checks=("input[name=fields][value='npo-3']",), selects={"size": "中小（10〜99人）"})
    assert "株式会社アクメ" in page["text"] and "acme@tsurugashima (管理者)" in page["text"], page["text"]
    page = await open_page(d, base + "/themes")
    page = await fill(d, {}, selects={"field": "まちづくり"}, submit="main form button")
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
