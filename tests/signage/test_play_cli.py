"""`towntip signage play --nats-url URL --screen NAME --http-port PORT` as a screen runs it (issue 19 point 4): the
command syncs the screen's schedule and content into its cache directory and serves the kiosk page and its Japanese
webfont on 127.0.0.1:PORT; SIGTERM stops it. Wrong arguments are refused with exit 2 and a reason, and
nothing starts. The signage service runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from datetime import time
from pathlib import Path

import httpx

from tests.signage.helpers import CHIEF, CLERK, NODE, Node, photo, upload
from tests.support.bus import wait_for
from towntip.kernel.contracts import signage as c
from towntip.node.natsd import free_port

CLI = [sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())", "signage", "play"]


async def test_the_play_command_syncs_caches_and_serves_the_kiosk_page(node: Node, tmp_path: Path) -> None:
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name="hall-1f", place="市役所 1F ロビー"))
    item = await upload(node, photo(1200, 800, gps=False), title="秋の市民まつり")
    await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    await node.call(
        c.EP_PLAYLIST_PUT,
        c.PlaylistPut(
            actor=CLERK,
            name="ロビー",
            dayparts=(c.Daypart(name="終日", start=time(0), end=time(0)),),
            entries=(c.PlaylistEntry(item_id=item["id"]),),
        ),
    )
    port, cache = free_port(), tmp_path / "screen"
    args = ["--nats-url", node.url, "--node", NODE, "--screen", "hall-1f", "--http-port", str(port)]
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once; the test talks to it over HTTP while it runs
        [*CLI, *args, "--cache-dir", str(cache)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def synced() -> dict | None:
                try:
                    state = (await http.get("/now")).json()
                except httpx.HTTPError:
                    return None  # not listening yet
                return state if state["version"] and state["screen"]["place"] else None

            state = await wait_for(synced, "the player synced and serving", 30)
            assert state["screen"]["name"] == "hall-1f" and state["screen"]["place"] == "市役所 1F ロビー"
            manifest = json.loads((cache / "manifest.json").read_text(encoding="utf-8"))
            assert [i["id"] for i in manifest["items"]] == [item["id"]]
            assert (cache / "content" / manifest["items"][0]["sha256"]).is_file()  # the content on the screen's disk
            page = await http.get("/")
            assert page.status_code == 200 and "緊急情報" in page.text and 'lang="ja"' in page.text
            font = await http.get("/font/biz-udpgothic.ttf")
            assert font.status_code == 200 and font.headers["content-type"] == "font/ttf"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    # uvicorn (0.29 and later) shuts the page down, then raises the signal it caught again: the process ends "by
    # SIGTERM", as a service manager expects, and never with a traceback.
    assert proc.returncode in (0, -signal.SIGTERM) and b"Traceback" not in err, err.decode()[-2000:]


def test_wrong_arguments_are_refused_before_anything_starts(tmp_path: Path) -> None:
    for wrong, why in (
        (["--screen", "hall-1f", "--http-port", "70000"], "--http-port must be between 1 and 65535"),
        (["--screen", "hall-1f", "--http-port", "eighty"], "is not a port number"),
        (["--screen", "Hall 1F", "--http-port", "8090"], "must be 1-32 characters"),
        (["--screen", "hall-1f", "--now", "noon"], "is not an ISO 8601 time"),
    ):
        r = subprocess.run(
            [*CLI, "--nats-url", "nats://127.0.0.1:1", *wrong, "--cache-dir", str(tmp_path / "c")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and why in r.stderr, (wrong, r.returncode, r.stderr)
        assert not (tmp_path / "c").exists()
