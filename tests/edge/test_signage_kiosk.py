"""The kiosk's local app refuses what a stray page could send it, serves only the manifest's content, and the cache
keeps only bytes that match their sha256 (no browser, no node: the app in process, a player not started)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from edge.signage.cache import Cache, ContentMismatch
from edge.signage.kiosk import create_app, with_font
from edge.signage.player import Player
from edge.signage.plays import PlaySpool


async def test_the_kiosk_app_refuses_strays_and_the_cache_refuses_wrong_bytes(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    spool = PlaySpool(tmp_path / "cache" / "plays.sqlite3")
    app = create_app(Player("testnode", "hall-1f", cache, spool))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as web:
        page = await web.get("/")
        assert page.status_code == 200 and '<html lang="ja">' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        # A form from another site cannot post JSON without a preflight: anything else is refused.
        form = await web.post("/shown", data={"slot": "1"})
        assert (form.status_code, form.json()["code"]) == (415, "signage.bad_request")
        bad = await web.post("/shown", content=b"{", headers={"content-type": "application/json"})
        assert (bad.status_code, bad.json()["code"]) == (400, "signage.bad_request")
        stale = await web.post("/shown", json={"slot": 7})
        assert (stale.status_code, stale.json()["code"]) == (409, "signage.slot_unknown")
        assert (await web.get("/content/" + "a" * 64)).json()["code"] == "signage.content_unknown"
        state = (await web.get("/now")).json()
        assert (state["online"], state["slot"], state["emergency"]) == (False, None, None)
        font = await web.get("/font/biz-udpgothic.ttf")
        assert font.headers["content-type"] == "font/ttf" and font.content[:4] == b"\0\1\0\0"
    spool.close()

    data = b"<p>hello</p>"
    with pytest.raises(ContentMismatch):
        cache.put("0" * 64, data)
    incoming = cache.incoming("1" * 64)
    incoming.write(data)
    with pytest.raises(ContentMismatch):
        incoming.commit()
    assert list(cache.content_dir.iterdir()) == []  # nothing half-written is left behind
    good = cache.put(hashlib.sha256(data).hexdigest(), data)
    assert good.read_bytes() == data and cache.size() == len(data)

    slide = with_font("<!doctype html><html><head><title>x</title></head><body>市</body></html>")
    assert slide.index("<!doctype html>") == 0 and slide.index("@font-face") < slide.index("<title>")
