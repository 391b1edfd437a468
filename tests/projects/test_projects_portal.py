"""The co-creation pages over HTTP (the gateway app in-process, httpx), with the real identity and projects services
on a real nats-server and a local SMTP server: who may see and change what, CSRF on every form, the contact form's
throttle and its page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import func, select

from gateway import words as gw
from gateway.portal.projects import CONTACT_LIMIT
from identity.app import IdentityService
from services.projects.app import ProjectsService
from services.projects.models import inquiries, themes
from tests.support.nodes import add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.contracts import projects as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings

NODE = "tsurugashima"
BASE = "http://portal.test"
PW = "correct horse battery"


class Portal:
    def __init__(self, app: Any, projects: ProjectsService, smtp: Smtp) -> None:
        self.app, self.projects, self.smtp = app, projects, smtp

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False)

    async def count(self, table: Any) -> int:
        async with self.projects.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table))).scalar_one()


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[Portal]:
    smtp.start()
    mail = SmtpSettings(host="127.0.0.1", port=smtp.port)
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=BASE), smtp=mail)
    projects = ProjectsService(ServiceSettings(service="projects", node_id=NODE, nats_url=nats_server.url,
                                               data_dir=str(tmp_path / "pj"), public_url=BASE), smtp=mail)
    async with started(ident, projects):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, [(handle, handle, role) for handle, role in (
            ("kikaku", "staff"), ("kankyo", "staff"), ("jimu", "secretariat"), ("acme", None))])
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,projects", public_url=BASE)
        async with app.router.lifespan_context(app):
            yield Portal(app, projects, smtp)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def post(client: httpx.AsyncClient, path: str, data: dict[str, Any], *, form_page: str | None = None
               ) -> httpx.Response:
    page = await client.get(form_page or path)
    return await client.post(path, data={"csrf": csrf_of(page), **data})


async def logged_in(portal: Portal, handle: str) -> httpx.AsyncClient:
    client = portal.client()
    r = await post(client, "/login", {"login": handle, "password": PW, "next": "/themes"})
    assert r.status_code == 303 and r.headers["location"] == "/themes", r.text
    return client


THEME = {"title": "高齢者の移動手段の確保", "background": "路線バスの減便", "target": "75歳以上の方",
         "desired_outcome": "週2回以上の外出", "company_points": "配車システム", "fields": ["npo-3"]}


async def staff_theme(client: httpx.AsyncClient) -> str:
    r = await post(client, "/orgs/new", {"kind": "department", "name": "企画政策課"})
    assert r.status_code == 303, r.text
    page = await client.get("/themes/new")
    dept = re.search(r'<option value="([0-9a-f-]{36})"', page.text).group(1)  # type: ignore[union-attr]
    r = await client.post("/themes/new", data={"csrf": csrf_of(page), "owner_department_id": dept, **THEME})
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


async def test_drafts_are_hidden_and_only_the_owner_department_edits(portal: Portal) -> None:
    kikaku = await logged_in(portal, "kikaku")
    tid = await staff_theme(kikaku)
    page = await kikaku.get(f"/themes/{tid}")
    assert page.status_code == 200 and "下書き" in page.text and 'action="/themes/' in page.text

    visitor = portal.client()
    assert (await visitor.get(f"/themes/{tid}")).status_code == 404
    assert THEME["title"] not in (await visitor.get("/themes")).text
    acme = await logged_in(portal, "acme")
    assert (await acme.get(f"/themes/{tid}")).status_code == 404
    assert (await acme.get(f"/themes/{tid}/edit")).status_code == 403  # not staff at all
    assert (await acme.get(f"/themes/{tid}/history")).status_code == 403
    assert (await acme.get("/hearings")).status_code == 403
    assert (await visitor.get("/hearings")).headers["location"].startswith("/login")

    # Staff of another department: they may read the draft, not change it, by page or by a crafted post.
    kankyo = await logged_in(portal, "kankyo")
    assert (await kankyo.get(f"/themes/{tid}")).status_code == 200
    assert (await kankyo.get(f"/themes/{tid}/edit")).status_code == 403
    page = await kankyo.get(f"/themes/{tid}")
    r = await kankyo.post(f"/themes/{tid}/edit", data={"csrf": csrf_of(page), "version": "1", **THEME,
                                                       "title": "乗っ取り"})
    assert r.status_code == 403 and gw.words(c.THEME_MANAGERS_ONLY.code, "ja") in r.text and "only staff" not in r.text
    r = await kankyo.post(f"/themes/{tid}/publish", data={"csrf": csrf_of(page), "confirmed": "yes"})
    assert r.status_code == 403
    assert (await kankyo.get(f"/themes/{tid}/publish")).status_code == 403  # nor is asked to confirm it
    # A post without the CSRF token is refused before anything is asked of the service.
    r = await kikaku.post(f"/themes/{tid}/publish", data={})
    assert r.status_code == 403 and "フォーム" in r.text
    async with portal.projects.sessions() as s:
        row = (await s.execute(select(themes))).one()
    assert (row.title, row.status, row.version) == (THEME["title"], "draft", 1)

    # Publishing is asked first (it cannot be withdrawn): a post without the confirmation goes to the question.
    r = await post(kikaku, f"/themes/{tid}/publish", {}, form_page=f"/themes/{tid}")
    assert r.status_code == 303 and r.headers["location"] == f"/themes/{tid}/publish"
    ask = await kikaku.get(f"/themes/{tid}/publish")
    assert THEME["title"] in ask.text and "取り消すことはできません" in ask.text
    async with portal.projects.sessions() as s:
        assert (await s.execute(select(themes.c.status))).scalar_one() == "draft"
    r = await post(kikaku, f"/themes/{tid}/publish", {"confirmed": "yes"}, form_page=f"/themes/{tid}/publish")
    assert r.status_code == 303
    assert THEME["title"] in (await visitor.get("/themes?field=npo-3")).text
    assert THEME["title"] not in (await visitor.get("/themes?field=npo-4")).text
    # A phase move the gate refuses shows the reason on the theme's page.
    r = await post(kikaku, f"/themes/{tid}/phase", {"to_phase": "2", "note": "次へ"}, form_page=f"/themes/{tid}")
    assert r.status_code == 409 and "requirements" in r.text


async def test_the_contact_form_needs_its_token_is_throttled_and_says_what_to_check(portal: Portal) -> None:
    visitor = portal.client()
    form = {"kind": "municipality", "name": "山田 太郎", "organisation": "鶴ヶ島市 企画課",
            "email": "yamada@example.jp", "topic": "テーマ設計の相談", "message": "1部局から始められますか"}
    # Without the token, or posted from another site: refused, nothing stored.
    assert (await visitor.post("/contact", data=form)).status_code == 403
    page = await visitor.get("/contact")
    assert page.status_code == 200 and "相談・お問い合わせ" in page.text
    r = await visitor.post("/contact", data={"csrf": csrf_of(page), **form},
                           headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert await portal.count(inquiries) == 0

    r = await visitor.post("/contact", data={"csrf": csrf_of(page), **form, "email": "not an address"})
    assert r.status_code == 400 and "「メールアドレス」" in r.text and await portal.count(inquiries) == 0
    r = await visitor.post("/contact", data={"csrf": csrf_of(page), **form})
    assert r.status_code == 200, r.text
    ref = re.search(r'id="reference">(Q-[A-Z0-9]+)<', r.text).group(1)  # type: ignore[union-attr]
    for words in ("迷惑メール", "メールアドレスに誤り", "ドメイン指定受信", "セキュリティ設定", "10分以上"):
        assert words in r.text, words
    for _ in range(200):
        got = [m for m in portal.smtp.handler.parsed() if m["To"] == "yamada@example.jp"]
        if got:
            break
        await asyncio.sleep(0.05)
    assert got and ref in got[0]["Subject"]

    # The secretariat sees it; others do not.
    jimu = await logged_in(portal, "jimu")
    inbox = await jimu.get("/secretariat/inquiries")
    assert inbox.status_code == 200 and "テーマ設計の相談" in inbox.text and ref in inbox.text
    kikaku = await logged_in(portal, "kikaku")
    assert (await kikaku.get("/secretariat/inquiries")).status_code == 403
    iid = re.search(r'/secretariat/inquiries/([0-9a-f-]{36})/status', inbox.text).group(1)  # type: ignore[union-attr]
    r = await jimu.post(f"/secretariat/inquiries/{iid}/status", data={"csrf": csrf_of(inbox), "status": "answered"})
    assert r.status_code == 303
    assert "対応済み" in (await jimu.get("/secretariat/inquiries?status=answered")).text

    # Flooding from one address: after CONTACT_LIMIT posts in the window (2 so far), refused with 429.
    assert CONTACT_LIMIT == 5
    for _ in range(3):
        assert (await visitor.post("/contact", data={"csrf": csrf_of(page), **form})).status_code == 200
    r = await visitor.post("/contact", data={"csrf": csrf_of(page), **form})
    assert r.status_code == 429 and "送信が多すぎます" in r.text
    assert await portal.count(inquiries) == 4
