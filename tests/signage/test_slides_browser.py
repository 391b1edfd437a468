"""The staff's page of data slides in headless Chromium on a phone: a slide of a facility's bookings without its
facility is refused in Japanese, nothing added; a slide of the upcoming events is added, shows the points service's
event at once, and waits for a second staff member's approval on the content page. Identity, points and signage run
beside the gateway on a real nats-server (the bookings service does not: the facility list is simply empty)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import nats as nats_client
import pytest

from identity.app import IdentityService
from services.points.app import PointsService
from services.signage import slides
from services.signage.app import SignageService
from tests.support.browser import fill, fill_and_submit, log_in, open_page, phone_browser, run  # noqa: F401
from tests.support.bus import call, wait_for
from tests.support.http_server import served
from tests.support.nodes import CARD_KEY, add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.clock import JST, utcnow
from towntip.kernel.contracts import points as pc
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))


@pytest.fixture
async def portal(nats_server: Any, tmp_path: Path, smtp: Smtp) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()

    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), **more
        )

    identity = IdentityService(
        settings("identity", public_url=base), smtp=SmtpSettings(host="127.0.0.1", port=smtp.port)
    )
    points = PointsService(settings("points", card_key=CARD_KEY))
    async with started(identity, points, SignageService(settings("signage"))):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points,signage", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base


async def test_staff_add_a_data_slide_on_a_phone(portal: str, phone_browser: Any, nats_server: Any) -> None:  # noqa: F811
    base, d = portal, phone_browser
    soon = datetime.combine(utcnow().astimezone(JST).date() + timedelta(days=2), time(14), JST)
    nc = await nats_client.connect(nats_server.url)
    try:
        await add_people(nc, NODE, [("suzuki", "鈴木 職員", "staff"), ("tanaka", "田中 係長", "staff")])
        event = {"code": "bosai", "name": "防災講座", "starts_at": soon.isoformat(), "venue_name": "中央公民館",
                 "capacity": 30}
        await call(nc, pc.EP_EVENT_PUT, event, service="points", node=NODE)
    finally:
        await nc.close()

    page = await log_in(d, base, "suzuki", "/staff/signage/slides", via_logout=True)
    assert "データスライド" in page["text"] and page["overflow"] <= 0, page["text"]

    # Today's bookings without a facility: refused with the code's words, nothing added.
    page = await fill(d, {}, checks=("input[name=source][value=bookings]",), submit="#add-slide button[type=submit]")
    assert "施設の予約のスライドには施設を選んでください" in page["text"], page["text"]
    assert "データスライドはまだありません。" in page["text"]

    page = await fill(d, {}, checks=("input[name=source][value=events]",), submit="#add-slide button[type=submit]")
    assert "追加しました。" in page["text"], page["text"]
    line = f"{slides.when(soon)} 防災講座 — 中央公民館 — 残り30席"

    async def current() -> dict[str, Any] | None:
        got = await open_page(d, f"{base}/staff/signage/slides")
        return got if line in got["text"] else None

    page = await wait_for(current, "the slide showing the event", 15)
    assert "承認待ち" in page["text"] and "これからのイベント" in page["text"] and page["overflow"] <= 0
    await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True),
                       d.execute_script("document.getElementById('slides').scrollIntoView()"),
                       d.save_screenshot(str(SHOTS / "signage-data-slides-staff.png"))))

    # The one who added it cannot approve it; a colleague can, on the content page.
    page = await open_page(d, f"{base}/staff/signage/content")
    assert "これからのイベント" in page["text"]
    assert not await run(lambda: d.find_elements("css selector", "li.item button.approve"))
    page = await log_in(d, base, "tanaka", "/staff/signage/content", via_logout=True)
    page = await fill_and_submit(d, {}, button="li.item button.approve")
    assert "承認しました。" in page["text"], page["text"]
    page = await open_page(d, f"{base}/staff/signage/slides")
    assert "承認済み" in page["text"] and line in page["text"]
