"""Courses in headless Chromium on a phone-sized screen: staff create a course and a certification and record
completions (the person looked up at the identity service); the person sees マイ単位 and the certificate (page,
printable page, PDF, signed token); a visitor verifies it, by its page and by pasting the token; after staff revoke
it, both say revoked. Real identity and points services and the gateway on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.points.app import PointsService
from tests.support.browser import (
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
    wait_left,
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
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base),
                            smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    points = PointsService(ServiceSettings(service="points", node_id=NODE, nats_url=nats_server.url,
                                           data_dir=str(tmp_path / "pt"), card_key="11" * 32))
    async with started(ident, points):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("shokuin", "職員 一郎", "staff"), ("hanako", "鶴ヶ島 花子", None),
                                   ("jiro", "川越 次郎", None)))
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


def _submit(driver: Any, form_action: str, values: dict[str, str], checks: tuple[str, ...] = (),
            selects: dict[str, str] | None = None, js_values: dict[str, str] | None = None) -> dict[str, Any]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    form = driver.find_element(By.CSS_SELECTOR, f"main form[action='{form_action}']")
    for name, value in values.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    for name, value in (selects or {}).items():
        Select(form.find_element(By.NAME, name)).select_by_value(value)
    for name, value in (js_values or {}).items():  # date inputs: typing depends on the browser's locale
        driver.execute_script("arguments[0].value = arguments[1]", form.find_element(By.NAME, name), value)
    for css in checks:
        box = form.find_element(By.CSS_SELECTOR, css)
        driver.execute_script("arguments[0].checked = true", box)
    button = form.find_element(By.CSS_SELECTOR, "button[type=submit]")

    button.click()
    return wait_left(driver, button, timeout=30)


async def submit(driver: Any, action: str, values: dict[str, str], **kw: Any) -> dict[str, Any]:
    return await run(lambda: _submit(driver, action, values, **kw))


def fetch(driver: Any, path: str) -> dict[str, Any]:
    """A same-origin GET from the page (with its cookies): status, content type and the body's start."""
    return driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           fetch(arguments[0]).then(async r => { const b = new Uint8Array(await r.arrayBuffer());
             done({status: r.status, type: r.headers.get('content-type'),
                   head: String.fromCharCode(...b.slice(0, 8)), text: new TextDecoder().decode(b)}); });""", path)


async def test_staff_define_and_record_the_person_sees_credits_a_visitor_verifies(portal, phone_browser) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    base, d = portal, phone_browser

    # Staff: two courses and a certification (3 credits from either).
    page = await log_in(d, base, "shokuin", "/staff/courses")
    assert page["url"] == "/staff/courses" and "講座管理" in page["text"], page["text"]
    page = await submit(d, "/staff/courses", {"code": "machi-101", "title": "まちづくり入門",
                                              "description": "地域活動の基礎", "credits": "2"},
                        selects={"field": "npo-1"}, js_values={"starts_on": "2026-04-01", "ends_on": "2026-06-30"})
    assert page["url"] == "/staff/courses/machi-101" and "保存しました" in page["text"], page["text"]
    await open_page(d, base + "/staff/courses")
    page = await submit(d, "/staff/courses", {"code": "kankyo-201", "title": "環境保全の実践", "credits": "1"},
                        selects={"field": "npo-8"})
    assert page["url"] == "/staff/courses/kankyo-201"
    await open_page(d, base + "/staff/courses")
    page = await submit(d, "/staff/courses", {"code": "Bad Code", "title": "x", "credits": "1"})
    # refused in words naming the field (never the contract's English), the form kept
    assert "「コード」の形式が正しくありません" in page["text"] and page["url"] == "/staff/courses", page["text"]
    await open_page(d, base + "/staff/courses")
    page = await submit(d, "/staff/certifications", {"code": "leader", "title": "まちづくりリーダー",
                                                     "credits_required": "3"})
    assert "保存しました" in page["text"] and "まちづくりリーダー" in page["text"], page["text"]
    assert page["overflow"] <= 0

    # Completions: looked up by global ID (and by e-mail); a repeat is not credited twice.
    await open_page(d, base + "/staff/courses/machi-101")
    page = await submit(d, "/staff/courses/machi-101/complete", {"person": "hanako@tsurugashima"})
    assert "記録して単位を付与しました" in page["text"] and "鶴ヶ島 花子" in page["text"], page["text"]
    page = await submit(d, "/staff/courses/machi-101/complete", {"person": "hanako@tsurugashima"})
    assert "すでに修了しています" in page["text"]
    page = await submit(d, "/staff/courses/machi-101/complete", {"person": "jiro@example.jp"})
    assert "記録して単位を付与しました" in page["text"] and "川越 次郎" in page["text"]
    page = await submit(d, "/staff/courses/machi-101/complete", {"person": "nobody@example.jp"})
    assert "該当する人がいません" in page["text"]
    await open_page(d, base + "/staff/courses/kankyo-201")
    page = await submit(d, "/staff/courses/kankyo-201/complete", {"person": "hanako@tsurugashima"})
    assert "修了資格を付与しました" in page["text"] and "まちづくりリーダー" in page["text"], page["text"]

    # The person: マイ単位 with the certificate, its pages and downloads.
    page = await log_in(d, base, "hanako", "/credits")
    assert page["url"] == "/credits" and "マイ単位" in page["text"], page["text"]
    assert await run(lambda: d.find_element(By.ID, "credits").text) == "3"
    assert "まちづくりリーダー" in page["text"] and "3 / 3" in page["text"] and page["overflow"] <= 0
    cert_id = await run(lambda: d.find_element(By.CSS_SELECTOR, "#certificates li").get_attribute("data-id"))
    page = await open_page(d, f"{base}/certificates/{cert_id}/print")
    assert "修了証" in page["text"] and "鶴ヶ島 花子 殿" in page["text"] and cert_id in page["text"]
    token = await run(lambda: d.find_element(By.CSS_SELECTOR, ".token").text.strip())
    assert token.count(".") == 2
    pdf = await run(fetch, d, f"/certificates/{cert_id}/pdf")
    assert pdf["status"] == 200 and pdf["type"] == "application/pdf" and pdf["head"] == "%PDF-1.4"
    jws = await run(fetch, d, f"/certificates/{cert_id}/token")
    assert jws["status"] == 200 and jws["text"] == token

    # A visitor: the public page, and the pasted token; a changed token fails.
    await run(d.delete_all_cookies)
    page = await open_page(d, f"{base}/certificates/{cert_id}")
    assert "有効な修了証です" in page["text"] and "鶴ヶ島 花子" in page["text"] and "まちづくりリーダー" in page["text"]
    assert page["overflow"] <= 0
    assert "%PDF" not in (await run(fetch, d, f"/certificates/{cert_id}/pdf"))["head"]  # not for visitors: login
    jwks = await run(fetch, d, "/certificates/jwks.json")
    assert jwks["status"] == 200 and '"crv":"Ed25519"' in jwks["text"].replace(" ", "")
    await open_page(d, base + "/certificates/verify")
    page = await submit(d, "/certificates/verify", {"token": token})
    assert "有効な修了証です" in page["text"] and "鶴ヶ島 花子" in page["text"], page["text"]
    head, body, sig = token.split(".")
    tampered = f"{head}.{body[:-3]}{'AAA' if body[-3:] != 'AAA' else 'BBB'}.{sig}"
    page = await submit(d, "/certificates/verify", {"token": tampered})
    assert "検証できません" in page["text"] and "有効な修了証です" not in page["text"]

    # Staff revoke it with a reason; the visitor now sees it revoked, both ways.
    page = await log_in(d, base, "shokuin", "/staff/certificates")
    assert cert_id in page["text"]
    page = await submit(d, f"/staff/certificates/{cert_id}/revoke", {"reason": "受講記録の誤り"})
    assert "修了証を取り消しました" in page["text"] and "受講記録の誤り" in page["text"]
    await run(d.delete_all_cookies)
    page = await open_page(d, f"{base}/certificates/{cert_id}")
    assert "取り消されています" in page["text"] and "受講記録の誤り" not in page["text"]
    await open_page(d, base + "/certificates/verify")
    page = await submit(d, "/certificates/verify", {"token": token})
    assert "取り消されています" in page["text"]

    # The public course list, in English too.
    page = await open_page(d, base + "/courses?lang=en")
    assert "Certified courses" in page["text"] and "まちづくり入門" in page["text"] and page["overflow"] <= 0
