"""The emergency message over the HTTP API (issue 19, point 6): POST /api/v1/signage/emergency with a staff bearer
token reaches the screens; a resident's token and no token are refused; the identity and signage services run
beside the gateway app on a real nats-server (signage on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import nats

from identity.app import IdentityService
from services.signage.app import SignageService
from tests.signage.helpers import NODE
from tests.support.api_node import BASE, api_node, problem
from towntip.kernel.contracts import signage as c
from towntip.kernel.settings import ServiceSettings

# How long a push may take here: a bound for a stuck test, not the 2 s target (measured by
# tests/edge/test_signage_player_browser.py on the glass and by bench/signage.py over 200 screens).
PATIENCE = 15


async def test_staff_send_and_clear_an_emergency_over_http(nats_server, tmp_path, database) -> None:
    def settings(service: str, **more: str) -> ServiceSettings:
        return ServiceSettings(
            service=service,
            node_id=NODE,
            nats_url=nats_server.url,
            data_dir=str(tmp_path / service),
            public_url=BASE,
            **more,
        )

    url, schema = database
    signage = settings("signage", database_url=url, database_schema=schema or "")
    services = [IdentityService(settings("identity")), SignageService(signage)]
    async with api_node(
        nats_server.url,
        tmp_path,
        services,
        node=NODE,
        people={"hanako": "山田 花子", "clerk": "窓口 職員"},
        staff=("clerk",),
    ) as api:
        tv = await nats.connect(nats_server.url, inbox_prefix=c.screen_inbox_prefix("hall-1f"))
        heard: asyncio.Queue[c.Emergency] = asyncio.Queue()

        async def on_push(msg: Any) -> None:
            await heard.put(c.Emergency.model_validate_json(msg.data))

        await tv.subscribe(c.push_emergency(NODE), cb=on_push)
        await tv.flush()
        body = {"title": "避難所開設", "body": "中央公民館を避難所として開設しました。", "screens": ["hall-1f"]}
        try:
            async with (
                api.client() as anyone,
                api.client("hanako") as hanako,
                api.client("clerk") as clerk,
                api.client("admin") as admin,
            ):
                problem(await anyone.post("/api/v1/signage/emergency", json=body), 401, "request.unauthenticated")
                problem(await hanako.post("/api/v1/signage/emergency", json=body), 403, "request.role_missing")
                problem(await clerk.post("/api/v1/signage/emergency", json=body), 404, c.SCREEN_NOT_FOUND.code)
                r = await admin.post("/api/v1/signage/screens", json={"name": "hall-1f", "place": "市役所 1F"})
                assert r.status_code == 200, r.text
                r = await clerk.post("/api/v1/signage/emergency", json=body)
                assert r.status_code == 201 and r.json()["screens"] == ["hall-1f"], r.text
                pushed = await asyncio.wait_for(heard.get(), PATIENCE)
                assert pushed.id == r.json()["id"] and pushed.title == "避難所開設"
                r = await clerk.post(f"/api/v1/signage/emergency/{pushed.id}/clear", json={})
                assert r.status_code == 200 and r.json()["cleared"], r.text
                assert (await asyncio.wait_for(heard.get(), PATIENCE)).cleared
        finally:
            await tv.close()
