"""The staff's page of signage content shared between towns, in headless Chromium on a phone: another town's offer
adopted (its bytes fetched from that town's public site), this town's approved item offered, and its plays in the
other town. The identity and signage services run beside the gateway on a real nats-server; the other town (suginami)
is played by the test: its event stream on the same server, sourced as the hub would deliver it, and its public site
a small ASGI app with the bytes it offers."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats as nats_client
import pytest
from nats.js.api import StreamSource
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from identity.app import IdentityService
from services.signage import federation
from services.signage.app import SignageService
from tests.signage.helpers import photo
from tests.support.browser import (
    fill_and_submit,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call, wait_for
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from tests.support.smtp_helpers import Smtp
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import Envelope, event_token, new_id
from towntip.kernel.bus.streams import ensure_stream, evt_stream_config, fed_stream_config
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import signage_federation as f
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE, PEER = "tsurugashima", "suginami"
SHOTS = Path(os.environ.get("TOWNTIP_SCREENSHOTS", "/tmp/towntip-screens"))
PEER_ITEM = "33333333-3333-4333-8333-333333333333"
CLERK = Actor(user_id="user-clerk-001", global_handle=f"clerk@{NODE}", display_name="窓口", roles=("staff",))
CHIEF = Actor(user_id="user-chief-001", global_handle=f"chief@{NODE}", display_name="係長", roles=("staff",))


@pytest.fixture
async def portal(nats_server, tmp_path, smtp: Smtp) -> AsyncIterator[tuple[str, SignageService]]:
    port, peer_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    smtp.start()
    picture = photo(900, 600)

    async def media(request: Any) -> Response:
        found = request.path_params["item_id"] == PEER_ITEM
        return Response(picture, media_type="image/jpeg") if found else Response(status_code=404)

    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(
            service=service, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / service), **more
        )

    identity = IdentityService(
        settings("identity", public_url=base), smtp=SmtpSettings(host="127.0.0.1", port=smtp.port)
    )
    signage = SignageService(settings("signage"))
    nc = await nats_client.connect(nats_server.url)
    js = nc.jetstream()
    try:
        async with started(identity, signage):
            await ensure_stream(js, evt_stream_config(PEER, f.EVENTS))
            await ensure_stream(js, fed_stream_config(NODE, [StreamSource(
                name=subjects.evt_stream(PEER, f.EVENTS), filter_subject=subjects.evt_all(PEER, f.EVENTS))],
                own=f.EVENTS))
            async with signage.sessions() as s, s.begin():
                await federation.record_peers(s, {PEER: f"http://127.0.0.1:{peer_port}"}, datetime.now(UTC))
            offer = {"item_id": PEER_ITEM, "origin_node": PEER, "kind": "image", "title": "杉並の防災フェア",
                     "mime": "image/jpeg", "sha256": hashlib.sha256(picture).hexdigest(), "bytes": len(picture),
                     "duration_s": 10, "valid_from": datetime.now(UTC).isoformat()}
            await publish(js, "ContentOffered", offer)
            app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,signage", public_url=base)
            async with served(Starlette(routes=[Route(f.MEDIA_PATH, media)]), "127.0.0.1", peer_port), \
                    served(app, "127.0.0.1", port):
                yield base, signage
    finally:
        await nc.close()


async def publish(js: Any, type_: str, data: dict[str, Any]) -> None:
    env = Envelope(id=new_id(), type=type_, node=PEER, service=f.EVENTS, data=data)
    await js.publish(subjects.evt(PEER, f.EVENTS, event_token(type_)), env.to_bytes(),
                     headers={subjects.HDR_MSG_ID: new_id()})


async def test_staff_adopt_another_towns_offer_offer_their_own_and_see_its_plays_there(
    portal,
    phone_browser,  # noqa: F811
    nats_server,
) -> None:
    (base, _signage), d = portal, phone_browser
    nc = await nats_client.connect(nats_server.url)
    try:
        await add_people(nc, NODE, [("suzuki", "鈴木 職員", "staff"), ("hanako", "山田 花子", None)])
        upload_id = str(uuid.uuid4())
        part = base64.b64encode(photo(400, 300)).decode()
        await call(nc, c.EP_UPLOAD_PART, c.UploadPart(actor=CLERK, upload_id=upload_id, seq=0, data_b64=part)
                   .model_dump(mode="json"), service=c.SERVICE, node=NODE)
        mine = await call(nc, c.EP_CONTENT_CREATE, c.ContentCreate(
            actor=CLERK, upload_id=upload_id, parts=1, title="鶴ヶ島の市民まつり", valid_from=datetime.now(UTC))
            .model_dump(mode="json"), service=c.SERVICE, node=NODE, timeout=20)
        await call(nc, c.EP_CONTENT_APPROVE, {"actor": CHIEF.model_dump(mode="json"), "item_id": mine["id"]},
                   service=c.SERVICE, node=NODE)

        page = await log_in(d, base, "hanako", "/staff/signage/federation", via_logout=True)
        assert "他の自治体と共有" not in page["text"]  # a resident gets no staff page

        await log_in(d, base, "suzuki", "/staff/signage/federation", via_logout=True)

        async def offered() -> dict | None:
            got = await open_page(d, f"{base}/staff/signage/federation")
            return got if "杉並の防災フェア" in got["text"] else None

        page = await wait_for(offered, "the other town's offer on the page", 15)
        assert "suginami" in page["text"] and "画像" in page["text"] and page["overflow"] <= 0, page["text"]

        page = await fill_and_submit(d, {}, button="li.offer button.adopt")
        assert "採用しました。" in page["text"] and "採用済み" in page["text"], page["text"]
        assert not await run(lambda: d.find_elements("css selector", "li.offer button.adopt"))
        page = await open_page(d, f"{base}/staff/signage/content")
        assert "杉並の防災フェア" in page["text"] and "承認待ち" in page["text"], page["text"]

        await open_page(d, f"{base}/staff/signage/federation")
        page = await fill_and_submit(d, {}, button="#mine button.offer")
        assert "提供しました。" in page["text"] and "提供中" in page["text"], page["text"]

        await publish(nc.jetstream(), "PlaysReported", {
            "town": PEER, "item_origin_node": NODE, "item_id": mine["id"], "day": "2026-12-07", "plays": 42,
            "seconds": 420, "kind": "totals"})

        async def reported() -> dict | None:
            got = await open_page(d, f"{base}/staff/signage/federation")
            return got if "420" in got["text"] else None

        page = await wait_for(reported, "the other town's plays on the page", 15)
        assert "2026-12-07" in page["text"] and "42" in page["text"] and page["overflow"] <= 0
        path = SHOTS / "signage-federation.png"
        await run(lambda: (SHOTS.mkdir(parents=True, exist_ok=True), d.save_screenshot(str(path))))
    finally:
        await nc.close()
