"""Screens: registered by staff, synced and heard over their own subjects, their plays counted once."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from services.signage.models import plays
from tests.signage.helpers import CLERK, HANAKO, NODE, Node
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import signage as c

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


async def test_a_registered_screen_syncs_reports_and_is_seen_by_staff(node: Node) -> None:
    reg = c.ScreenRegister(actor=CLERK, name="hall-1f", place="市役所 1F", groups=("市役所", "市役所", "1F"))
    screen = await node.call(c.EP_SCREEN_REGISTER, reg)
    assert screen["groups"] == ["1F", "市役所"] and screen["online"] is False

    tv = await node.screen("hall-1f")
    try:
        first = await tv.sync()
        assert first.screen.place == "市役所 1F" and first.playlists == () and first.emergency is None
        again = await tv.sync(have=first.version)
        assert again.unchanged and again.version == first.version

        status = c.ScreenStatus(version=first.version, cache_bytes=1234, player_version="0.1.0", screenshot_png_b64=PNG)
        await tv.nc.publish(c.status_subject(NODE, "hall-1f"), status.model_dump_json().encode())

        async def seen() -> dict | None:
            got = await node.call(c.EP_SCREEN_GET, c.ScreenQuery(actor=CLERK, name="hall-1f"))
            return got if got["last_seen"] else None

        got = await wait_for(seen, "the heartbeat recorded", 5)
        assert got["online"] and got["cache_bytes"] == 1234 and got["screenshot_png_b64"] == PNG
        listed = await node.call(c.EP_SCREEN_LIST, c.ScreenListQuery(actor=CLERK, group="1F"))
        assert [s["name"] for s in listed["screens"]] == ["hall-1f"] and listed["screens"][0]["online"]
        assert listed["screens"][0]["screenshot_png_b64"] is None  # the list stays small
    finally:
        await tv.nc.close()


async def test_residents_cannot_manage_screens_and_unknown_screens_get_no_manifest(node: Node) -> None:
    with pytest.raises(errors.ServiceError) as refused:
        await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=HANAKO, name="x-1"))
    assert refused.value.error_code == c.STAFF_ONLY.code
    with pytest.raises(errors.ServiceError) as missing:
        await node.call(c.EP_SCREEN_GET, c.ScreenQuery(actor=CLERK, name="x-1"))
    assert missing.value.error_code == c.SCREEN_NOT_FOUND.code
    tv = await node.screen("ghost")
    try:
        msg = await tv.nc.request(c.sync_subject(NODE, "ghost"), b"{}", timeout=5)
        assert msg.headers[subjects.HDR_REFUSAL_CODE] == c.SCREEN_UNKNOWN.code
    finally:
        await tv.nc.close()


async def test_a_play_sent_again_after_the_streams_window_counts_once(node: Node) -> None:
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name="kominkan-1"))
    tv = await node.screen("kominkan-1")
    item = "0b8f2a52-3c52-4d0e-9a51-3f1c2d4e5f60"
    try:
        first = await tv.play(item)
        await tv.play(item, play_id=first, msg_id=False)  # a week later: the stream's dedup window is long gone
        await tv.play(item)

        async def counted() -> int:
            async with node.svc.sessions() as s:
                return int((await s.execute(select(func.count()).select_from(plays))).scalar_one())

        stats = node.svc.plays.stats

        async def all_seen() -> bool:
            return stats.applied + stats.duplicates >= 3

        await wait_for(all_seen, "the three deliveries applied or found duplicate", 10)
        assert await counted() == 2 and stats.duplicates == 1
    finally:
        await tv.nc.close()
