"""Openings (募集) on a community's page and a theme's page over HTTP (the gateway app in-process, httpx), with the
real identity, sns and projects services on a real nats-server: each page lists its open openings to anyone, and
offers 「募集を出す」 (/openings/new?community=… or ?theme=…) only to those who may post for it: the community's
leader, the theme's managers (its owner department's staff), not another department's staff nor a resident. A draft
theme shows neither."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from identity.app import IdentityService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.projects.test_projects_portal import PW, csrf_of, post, staff_theme
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.settings import ServiceSettings

NODE = "tsurugashima"
BASE = "http://portal.test"
NEW = "募集を出す"
OPENING = {"task": "当日の受付をお願いします", "district": "藤金", "starts_at": "2030-08-01T09:00", "capacity": "2",
           "categories": "npo-3"}


@pytest.fixture
async def app(nats_server, tmp_path) -> AsyncIterator[Any]:
    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=BASE)
    async with started(IdentityService(settings("identity")), SnsService(settings("sns")),
                       ProjectsService(settings("projects"))):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, [("hanako", "山田 花子", None), ("taro", "鈴木 太郎", None),
                                    ("kikaku", "企画 職員", "staff"), ("kankyo", "環境 職員", "staff")])
        await nc.close()
        gateway = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns,projects",
                              public_url=BASE)
        async with gateway.router.lifespan_context(gateway):
            yield gateway


async def logged_in(app: Any, handle: str | None) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False)
    if handle is not None:
        r = await post(client, "/login", {"login": handle, "password": PW, "next": "/communities"})
        assert r.status_code == 303, r.text
    return client


async def test_a_communitys_page_shows_its_openings_and_its_leader_the_link(app) -> None:
    hanako, taro, visitor = await logged_in(app, "hanako"), await logged_in(app, "taro"), await logged_in(app, None)
    r = await post(hanako, "/communities", {"name": "藤金まつり実行委員会", "categories": "npo-3"})
    assert r.status_code == 303, r.text
    cid = r.headers["location"].rsplit("/", 1)[1]
    link = f'href="/openings/new?community={cid}"'
    page = await hanako.get(f"/communities/{cid}")
    assert page.status_code == 200 and link in page.text and NEW in page.text
    assert "受付中の募集はありません。" in page.text  # her link, under no opening yet
    for other in (taro, visitor):  # not its leader: no link, and no empty section
        page = await other.get(f"/communities/{cid}")
        assert page.status_code == 200 and "/openings/new" not in page.text and NEW not in page.text

    # The link's form has the community chosen; posted, the opening shows on the community's page to anyone.
    form = await hanako.get(f"/openings/new?community={cid}")
    assert f'value="community:{cid}" selected' in form.text, form.text
    r = await hanako.post("/openings/new", data={"csrf": csrf_of(form), "host": f"community:{cid}",
                                                 "title": "夏祭りの受付", **OPENING})
    assert r.status_code == 303, r.text
    opening = r.headers["location"].split("?")[0]
    for who in (hanako, taro, visitor):
        page = await who.get(f"/communities/{cid}")
        assert "夏祭りの受付" in page.text and f'href="{opening}"' in page.text and "受付中" in page.text
    assert NEW not in (await taro.get(f"/communities/{cid}")).text


async def test_a_themes_page_shows_its_openings_and_its_managers_the_link(app) -> None:
    kikaku, kankyo, taro = await logged_in(app, "kikaku"), await logged_in(app, "kankyo"), await logged_in(app, "taro")
    visitor = await logged_in(app, None)
    tid = await staff_theme(kikaku)
    link = f'href="/openings/new?theme={tid}"'
    page = await kikaku.get(f"/themes/{tid}")
    assert page.status_code == 200 and "/openings/new" not in page.text, "a draft: no opening names it in public"
    r = await post(kikaku, f"/themes/{tid}/publish", {"confirmed": "yes"}, form_page=f"/themes/{tid}/publish")
    assert r.status_code == 303, r.text

    page = await kikaku.get(f"/themes/{tid}")
    assert page.status_code == 200 and link in page.text and NEW in page.text
    for other in (kankyo, taro, visitor):  # another department's staff, a resident, anyone: no link
        page = await other.get(f"/themes/{tid}")
        assert page.status_code == 200 and "/openings/new" not in page.text and NEW not in page.text

    form = await kikaku.get(f"/openings/new?theme={tid}")
    assert f'value="theme:{tid}" selected' in form.text, form.text
    r = await kikaku.post("/openings/new", data={"csrf": csrf_of(form), "host": f"theme:{tid}", "theme": tid,
                                                 "title": "移動支援の聞き取り", **OPENING})
    assert r.status_code == 303, r.text
    opening = r.headers["location"].split("?")[0]
    for who in (kikaku, taro, visitor):
        page = await who.get(f"/themes/{tid}")
        assert "移動支援の聞き取り" in page.text and f'href="{opening}"' in page.text
