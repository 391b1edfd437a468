"""共感 on a published theme in headless Chromium on a phone: a resident presses the button on the theme's page (a
form: no JavaScript needed), sees the count and withdraws it; the staff member who made the theme sees the count
without a button. Real identity and projects services on a real nats-server, the gateway on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from identity.app import IdentityService
from services.projects.app import ProjectsService
from tests.projects.test_projects_service import THEME
from tests.support.browser import (
    fill,
    log_in,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.bus import call
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[str, str]]:
    """The portal's base URL and the path of a theme staff published."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name),
                               public_url=base)
    async with started(IdentityService(settings("identity")), ProjectsService(settings("projects"))):
        nc = await nats.connect(nats_server.url)
        try:
            users = await add_people(nc, NODE, (("kikaku", "企画 太郎", "staff"), ("hanako", "山田 花子", None)))
            me = Actor(user_id=users["kikaku"].id, global_handle=f"kikaku@{NODE}", display_name="企画 太郎",
                       roles=("staff",)).model_dump(mode="json")
            dept = await call(nc, c.EP_ORG_CREATE, {"actor": me, "kind": "department", "name": "企画政策課"},
                              service=c.SERVICE, node=NODE)
            theme = await call(nc, c.EP_THEME_CREATE, {"actor": me, "owner_department_id": dept["id"], **THEME},
                               service=c.SERVICE, node=NODE)
            await call(nc, c.EP_THEME_PUBLISH, {"actor": me, "theme_id": theme["id"]}, service=c.SERVICE, node=NODE)
        finally:
            await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,projects", public_url=base)
        async with served(app, "127.0.0.1", port):
            yield base, f"/themes/{theme['id']}"


async def test_empathise_with_a_theme_on_a_phone(portal, phone_browser, tmp_path: Path) -> None:  # noqa: F811
    (base, theme), d = portal, phone_browser
    page = await log_in(d, base, "hanako", theme, via_logout=True)
    assert page["url"] == theme and "共感する 0" in page["text"] and page["overflow"] <= 0, page["text"]
    page = await fill(d, {}, submit="#likes button")
    assert page["url"] == theme and "共感を取り消す 1" in page["text"], page["text"]
    await run(d.save_screenshot, str(tmp_path / "theme-like.png"))
    page = await fill(d, {}, submit="#likes button")
    assert "共感する 0" in page["text"]
    await fill(d, {}, submit="#likes button")

    # Its maker sees the count, and no button (the service would refuse: like.own).
    page = await log_in(d, base, "kikaku", theme, via_logout=True)
    assert "共感 1" in page["text"] and "共感する" not in page["text"], page["text"]
