"""Proof of play as staff download it (issue 19 point 5): the plays page's CSV per item and per screen, counted from
plays a screen sent over JetStream, on SQLite and PostgreSQL, through the node's gateway with a staff session. A title
that starts like a spreadsheet formula stays text; a resident gets no CSV; a bad date is refused in Japanese."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from identity.app import IdentityService
from services.signage.app import SignageService
from tests.signage.helpers import CHIEF, NODE, NOW, Node, photo, upload
from tests.support.bus import wait_for
from tests.support.nodes import PW, add_people, gateway_app, started
from towntip.kernel.contracts import signage as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings

BASE = "https://tsuru.example.jp"
INVALID = "入力内容に誤りがあります"  # gateway/words/forms.py: form.invalid_input
RANGE = "since=2026-12-01&until=2026-12-07"  # NOW (7 December) inside, whatever day the test runs


@pytest.fixture
async def town(nats_server: Any, database: tuple[str, str | None], tmp_path: Any) -> AsyncIterator[tuple]:
    url, schema = database
    identity = IdentityService(
        ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / "id"),
                        public_url=BASE),
        smtp=SmtpSettings(enabled=False),
    )
    signage = SignageService(
        ServiceSettings(service="signage", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                        database_url=url, database_schema=schema or ""),
        clock=lambda: NOW,
    )
    async with started(identity, signage):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,signage", public_url=BASE)
        nc = await nats.connect(nats_server.url)
        try:
            async with app.router.lifespan_context(app):
                yield Node(nc, signage, nats_server.url), app
        finally:
            await nc.close()


async def logged_in(app: Any, handle: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False)
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf, page.text[-500:]
    r = await client.post("/login", data={"csrf": csrf.group(1), "login": handle, "password": PW, "next": "/me"})
    assert r.status_code == 303, r.text[-500:]
    return client


def rows(r: httpx.Response) -> list[list[str]]:
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), (r.status_code, r.text[-300:])
    assert r.text.startswith("\ufeff")  # Excel reads the Japanese titles as UTF-8
    return list(csv.reader(io.StringIO(r.text.removeprefix("\ufeff"))))


async def test_staff_download_plays_per_item_and_per_screen(town: tuple) -> None:
    node, app = town
    await add_people(node.nc, NODE, [("suzuki", "鈴木 職員", "staff"), ("hanako", "山田 花子", None)])
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CHIEF, name="hall-1f", place="市役所 1F"))
    poster = await upload(node, photo(800, 600), title="秋の市民まつり")
    trick = await upload(node, photo(800, 600, gps=False), title='=HYPERLINK("http://evil.example/")')
    tv = await node.screen("hall-1f")
    try:
        for item in (poster, poster, trick):
            await tv.play(item["id"])

        async def counted() -> bool:
            got = c.PlaysSummary.model_validate(await node.call(
                c.EP_PLAYS_SUMMARY, c.PlaysQuery(actor=CHIEF, since=NOW.replace(day=1), until=NOW.replace(day=8))))
            return sum(r.plays for r in got.rows) == 3

        assert await wait_for(counted, "the three plays counted", 10)
    finally:
        await tv.nc.close()

    staff = await logged_in(app, "suzuki")
    try:
        by_item = rows(await staff.get(f"/staff/signage/plays?format=csv&by=item&{RANGE}"))
        assert by_item[0] == ["item", "label", "plays", "seconds", "since", "until"]
        got = {r[1]: (r[0], r[2], r[3]) for r in by_item[1:]}
        assert got == {
            "秋の市民まつり": (poster["id"], "2", "20"),
            "'=HYPERLINK(\"http://evil.example/\")": (trick["id"], "1", "10"),  # text, not a formula
        }
        r = await staff.get(f"/staff/signage/plays?format=csv&by=screen&{RANGE}")
        assert 'filename="signage-plays-screen.csv"' in r.headers["content-disposition"]
        assert [row[:4] for row in rows(r)[1:]] == [["hall-1f", "市役所 1F", "3", "30"]]

        for bad_url in ("/staff/signage/plays?format=csv&since=yesterday", "/staff/signage/screens/hall-1f?at=noon"):
            bad = await staff.get(bad_url)  # a date typed wrong: the page says so, in Japanese
            assert bad.status_code == 400 and "text/html" in bad.headers["content-type"], (bad_url, bad.text[-500:])
            assert INVALID in bad.text, bad.text[-500:]
    finally:
        await staff.aclose()

    resident = await logged_in(app, "hanako")
    try:
        r = await resident.get(f"/staff/signage/plays?format=csv&{RANGE}")
        assert r.status_code in (303, 403) and "text/csv" not in r.headers.get("content-type", "")
    finally:
        await resident.aclose()
