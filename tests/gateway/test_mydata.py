"""The archive of a person's data (gateway/portal/mydata.py, issue 20 point 7) when a service does not answer: the
archive still comes, with the parts that did, and the summary names the service that is missing; nobody signed in
gets no archive. Identity and sns run on a real nats-server; the gateway also expects bookings, which is down."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.app import IdentityService
from services.sns.app import SnsService
from tests.support.nodes import PW, add_people, gateway_app, started
from towntip.kernel.settings import ServiceSettings

NODE = "tsuru"
BASE = "https://tsuru.example.jp"


@pytest.fixture
async def app(nats_server, tmp_path: Path) -> AsyncIterator[Any]:
    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url=BASE)

    async with started(IdentityService(settings("identity")), SnsService(settings("sns"))):
        import nats

        nc = await nats.connect(nats_server.url)
        try:
            await add_people(nc, NODE, [("hanako", "山田 花子", None)])
        finally:
            await nc.drain()
        gw = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns,bookings", public_url=BASE)
        async with gw.router.lifespan_context(gw):
            yield gw


async def test_a_service_that_does_not_answer_is_named_in_the_summary(app: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as browser:
        r = await browser.get("/settings/export")
        assert r.status_code == 303 and "/login" in r.headers["location"]  # nobody signed in: no archive
        page = await browser.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = await browser.post("/login", data={"csrf": csrf, "login": "hanako", "password": PW, "next": "/me"})
        assert r.status_code == 303
        r = await browser.get("/settings/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(z.namelist()) == ["identity.json", "sns.json", "summary.txt"]
    summary = z.read("summary.txt").decode()
    assert "作成日時 / Made at: " in summary and "hanako@tsuru" in summary
    assert "含まれていないもの / Not included" in summary
    assert "施設予約 / Bookings (bookings): 時間内に応答がありませんでした" in summary, summary
