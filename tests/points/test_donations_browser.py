"""Donations in headless Chromium on a phone-sized screen: staff register and certify a project and set the issuer;
a person pledges; staff confirm the payment; the person sees マイ寄附 with the points and downloads the receipt; the
public transparency page shows the amount and the donors. Identity, points and the gateway (uvicorn on a real port)
run against a real nats-server."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import nats
import pypdf
import pytest

from identity.app import IdentityService
from services.points.app import PointsService
from tests.support import browser
from tests.support.browser import (
    click_and_wait,
    fill_and_submit,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=base))
    points = PointsService(ServiceSettings(service="points", node_id=NODE, nats_url=nats_server.url,
                                           data_dir=str(tmp_path / "pt"), card_key="11" * 32))
    async with started(ident, points):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("kikaku", "企画 一郎", "staff"), ("hanako", "山田 花子", None)))
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def log_in(d: Any, base: str, handle: str, next_path: str) -> dict[str, Any]:
    page = await browser.log_in(d, base, handle, next_path)
    assert page["url"] == next_path.split("?")[0], page
    return page


async def log_out(d: Any) -> None:

    page = await browser.log_out(d)
    assert "ログアウトしました" in page["text"]


async def click(d: Any, css: str) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    return await run(lambda: click_and_wait(d, d.find_element(By.CSS_SELECTOR, css)))


FETCH = """const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.arrayBuffer().then(b => {
  let s = ''; const u = new Uint8Array(b); for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
  done([r.status, r.headers.get('content-type'), r.headers.get('content-disposition') || '', btoa(s)]);
}));"""


async def test_staff_certify_a_person_pledges_staff_confirm_and_the_receipt(portal, phone_browser) -> None:  # noqa: F811
    base, d = portal, phone_browser

    # Staff register a project, certify it, and name the issuer of receipts.
    page = await log_in(d, base, "kikaku", "/staff/donations")
    assert "プロジェクトの登録と認定" in page["text"] and page["overflow"] <= 0
    page = await fill_and_submit(d, {"code": "nanohana", "title": "菜の花プロジェクト", "organisation": "NPO法人わかば",
                                     "description": "休耕地に菜の花を植えます", "goal_yen": "100000"},
                                 button="form#project-form button")
    assert (page["url"] == "/staff/donations" and "保存しました" in page["text"]
            and "未認定" in page["text"]), page["text"]
    public = await open_page(d, base + "/donations")
    assert "菜の花プロジェクト" not in public["text"]  # not certified yet: not shown
    await open_page(d, base + "/staff/donations")
    page = await click(d, "#certify-nanohana")
    assert "認定を取り消す" in page["text"], page["text"]
    page = await fill_and_submit(d, {"issuer_name": "鶴ヶ島市"}, button="form#rules-form button")
    assert "保存しました" in page["text"]
    await log_out(d)

    # A person pledges 3,000 yen at the counter and is given a reference.
    page = await log_in(d, base, "hanako", "/donations/projects/nanohana")
    assert "菜の花プロジェクト" in page["text"] and "寄附を申し込む" in page["text"] and page["overflow"] <= 0
    page = await fill_and_submit(d, {"amount_yen": "3000"}, button="form#pledge button")
    assert page["url"] == "/donations/mine" and "寄附の申し込みを受け付けました" in page["text"], page["text"]
    reference = re.search(r"D-[2-9A-HJ-NP-Z]{6}", page["text"]).group(0)  # type: ignore[union-attr]
    assert "入金確認待ち" in page["text"] and "窓口" in page["text"] and page["overflow"] <= 0
    await log_out(d)

    # Staff confirm the payment.
    page = await log_in(d, base, "kikaku", "/staff/donations/pledges")
    assert reference in page["text"] and "3,000" in page["text"] and page["overflow"] <= 0, page["text"]
    page = await click(d, f"#pledge-{reference} button.confirm")
    # Asked first, with what is being confirmed: money moves and points are awarded.
    assert reference in page["text"] and "3,000" in page["text"] and "ポイントが付与" in page["text"], page["text"]
    assert page["overflow"] <= 0
    page = await click(d, "form#confirm button")
    assert f"寄附を確定しました: {reference}" in page["text"] and "確認待ちの寄附はありません" in page["text"]
    await log_out(d)

    # マイ寄附: confirmed, 30 points (10 per 1,000 yen), and the receipt as a PDF.
    page = await log_in(d, base, "hanako", "/donations/mine")
    assert "確定" in page["text"] and "30 pt" in page["text"] and "3,000 円" in page["text"], page["text"]
    assert page["overflow"] <= 0
    href = await run(lambda: d.execute_script("return document.querySelector('a.receipt').href"))
    status, ctype, disposition, body = await run(lambda: d.execute_async_script(FETCH, href))
    assert status == 200 and ctype == "application/pdf" and disposition.startswith("attachment")
    pdf = base64.b64decode(body)
    text = pypdf.PdfReader(io.BytesIO(pdf), strict=True).pages[0].extract_text()
    for expected in ("寄附金受領証明書", "山田 花子 様", "金 3,000 円", "菜の花プロジェクト", "鶴ヶ島市", reference,
                     f"{NODE}-"):
        assert expected in text, (expected, text)
    await log_out(d)

    # The public transparency page: the amount raised and the donors, without logging in.
    page = await open_page(d, base + "/donations/projects/nanohana")
    assert "3,000 円" in page["text"] and "1 人" in page["text"] and "100,000 円" in page["text"], page["text"]
    assert "ログインしてください" in page["text"] and page["overflow"] <= 0
    listing = await open_page(d, base + "/donations")
    assert "菜の花プロジェクト" in listing["text"] and "3,000 円" in listing["text"]
    receipt = await open_page(d, f"{base}/donations/receipts/{reference}.pdf")
    assert receipt["url"] == "/login"  # a receipt is only for the donor (and staff)
