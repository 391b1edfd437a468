"""A theme or case a person follows changed at its own node (issue 18, point 4): the notices service reads the peers'
projects facts from FED_<NODE>_PROJECTS, asks the projects service who follows the thing (federation.followers, bus
only), and tells each follower once, even when the fact is delivered again. The projects service runs as its own
federation tests run it (tests/projects/test_projects_federation.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.notices.activity_models import activity_notes
from services.notices.app import NoticesService
from tests.projects.test_projects_federation import CITIZEN, NODE, THEME_ID, A, Node, act, node, theme_event
from tests.support.bus import wait_for
from tests.support.nodes import started
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import federation as f
from towntip.kernel.settings import ServiceSettings

__all__ = ["node"]  # the projects service of node suginami with its peers' streams (a fixture)


async def test_followers_are_told_once_of_a_change(node: Node, nats_server: Any, tmp_path: Path) -> None:
    notices = NoticesService(
        ServiceSettings(
            service="notices",
            node_id=NODE,
            nats_url=nats_server.url,
            data_dir=str(tmp_path / "notices"),
            database_url=f"sqlite+aiosqlite:///{tmp_path}/notices.db",
        ),
        activity_options={"jobs_every": None},
    )
    await node.members({A: "https://tsuru.example.jp"})
    await node.publish(A, "ThemePublished", theme_event(1))
    await node.settle()
    await node.call(f.EP_FOLLOW, {"actor": act(CITIZEN), "kind": "theme", "origin_node": A, "id": THEME_ID})
    assert (await node.call(f.EP_FOLLOWERS, {"kind": "theme", "origin_node": A, "id": THEME_ID}))["handles"] == [
        CITIZEN.global_handle
    ]

    async with started(notices):
        changed = await node.publish(A, "ThemeChanged", theme_event(2, phase=2, title="移動手段の確保（改訂）"))
        await node.settle()

        async def told() -> list[Any]:
            async with notices.sessions() as s:
                return list(await s.execute(select(activity_notes)))

        rows = await wait_for(told, "the follower told")
        # The same fact again (same event id, past the duplicate window): the inbox knows it.
        await node.js.publish(
            subjects.evt(A, "projects", "theme_changed"),
            (
                await node.js.get_last_msg(
                    subjects.evt_stream(A, "projects"), subjects.evt(A, "projects", "theme_changed")
                )
            ).data,
            headers={subjects.HDR_MSG_ID: "again"},
        )
        peers = next(x for x in notices.activity.consumers if x.spec.durable == "notices-activity-peers")
        await wait_for(lambda: _now(peers.stats.duplicates >= 1), "the fact seen again as a duplicate")
        rows = await told()
    assert [(r.person, r.kind, r.subject, r.link) for r in rows] == [
        (CITIZEN.global_handle, "followed_change", "移動手段の確保（改訂）", f"/federation/themes/{A}/{THEME_ID}")
    ]
    assert changed and rows[0].source_key.endswith(changed)


async def _now(value: Any) -> Any:
    return value
