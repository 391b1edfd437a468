"""A notice to the followers of a theme (issue 18 point 2, target `theme`): the notices service asks the projects
service who follows it (`projects.audience.theme`, bus only) when staff preview it and when it is sent; a follower
gets it, a resident who does not follow the theme does not. The projects service runs as its federation tests run it
(tests/projects/test_projects_federation.py); both services on SQLite, or both on PostgreSQL (each its own schema)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import nats

from services.notices.app import NoticesService
from tests.conftest import PG_URL
from tests.projects.test_projects_federation import CITIZEN, NODE, THEME_ID, A, Node, act, node, theme_event
from tests.support.bus import call, wait_for
from tests.support.nodes import started
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

__all__ = ["node"]  # the projects service of node suginami with its peers' streams (a fixture)

CLERK = Actor(user_id="user-clerk-001", global_handle=f"clerk@{NODE}", display_name="広報 職員", roles=("staff",))
OTHER = Actor(user_id="user-jiro-0001", global_handle=f"jiro@{NODE}", display_name="佐藤 次郎")


async def test_a_notice_to_a_themes_followers_reaches_them_alone(
    node: Node, nats_server: Any, database: tuple[str, str | None], tmp_path: Path
) -> None:
    url, schema = database
    own_schema = f"{schema}_n" if schema else ""  # beside the projects service's schema, dropped below
    notices = NoticesService(ServiceSettings(
        service="notices", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / "notices"),
        database_url=url if schema else f"sqlite+aiosqlite:///{tmp_path}/notices.db", database_schema=own_schema,
    ), send_every=0.2)
    await node.members({A: "https://tsuru.example.jp"})
    await node.publish(A, "ThemePublished", theme_event(1))
    await node.settle()
    await node.call(f.EP_FOLLOW, {"actor": act(CITIZEN), "kind": "theme", "origin_node": A, "id": THEME_ID})
    target = {"kind": "theme", "value": f"{A}/{THEME_ID}"}
    nc = await nats.connect(nats_server.url)
    try:
        async with started(notices):
            async def ask(endpoint: str, payload: dict[str, Any]) -> Any:
                return await call(nc, endpoint, payload, service=c.SERVICE, node=NODE)

            preview = await ask(c.EP_NOTICE_PREVIEW, {"actor": act(CLERK), "target": target})
            assert preview["count"] == 1
            made = await ask(c.EP_NOTICE_CREATE, {"actor": act(CLERK), "title": "意見交換会のご案内",
                                                  "body": "テーマの説明会を開きます。", "target": target})

            async def sent() -> dict[str, Any] | None:
                got = await ask(c.EP_NOTICE_GET, {"actor": act(CLERK), "notice_id": made["id"]})
                return got if got["state"] == "sent" else None

            assert (await wait_for(sent, "the notice to the theme's followers sent"))["delivered"] == 1
            mine = await ask(c.EP_INBOX_LIST, {"actor": act(CITIZEN)})
            assert [it["title"] for it in mine["items"]] == ["意見交換会のご案内"]
            assert (await ask(c.EP_INBOX_LIST, {"actor": act(OTHER)}))["items"] == []
            # Who follows stays with projects: the notice's own answer counts them, never names them.
            detail = await ask(c.EP_NOTICE_GET, {"actor": act(CLERK), "notice_id": made["id"]})
            assert CITIZEN.global_handle not in str(detail)
    finally:
        await nc.close()
        if own_schema:
            conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"))
            await conn.execute(f'DROP SCHEMA IF EXISTS "{own_schema}" CASCADE')
            await conn.close()
