"""Content: uploads checked by their bytes, images cleaned and fitted, approval by a second staff member, the
screens' manifests and content chunks, playlists and the preview, plays per item."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import datetime, time, timedelta

import pytest
from PIL import Image

from tests.signage.helpers import CHIEF, CLERK, NODE, NOW, Node, clip, photo, upload
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.contracts import signage as c


async def refused(code: str, call) -> None:
    with pytest.raises(errors.ServiceError) as exc:
        await call
    assert exc.value.error_code == code, exc.value.reason


async def test_a_photo_is_cleaned_approved_by_another_and_reaches_the_screen(node: Node) -> None:
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name="hall-1f", groups=("市役所",)))
    item = await upload(node, photo(), title="秋祭り")
    assert item["status"] == "pending" and item["mime"] == "image/jpeg"
    assert (item["width"], item["height"]) == (1620, 1080)  # fitted into the 1920x1080 screen
    await refused(c.SAME_APPROVER.code, node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CLERK, item_id=item["id"])))
    approved = await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    assert approved["status"] == "approved" and approved["approved_by"] == CHIEF.global_handle

    await node.call(
        c.EP_PLAYLIST_PUT,
        c.PlaylistPut(
            actor=CLERK, name="通常", groups=("市役所",), entries=(c.PlaylistEntry(item_id=item["id"], duration_s=15),)
        ),
    )
    tv = await node.screen("hall-1f")
    try:
        got = await tv.sync()
        assert [i.id for i in got.items] == [item["id"]] and got.playlists[0].entries[0].duration_s == 15
        data = b""
        while len(data) < item["bytes"]:
            ask = c.ContentRequest(id=item["id"], sha256=item["sha256"], offset=len(data))
            msg = await tv.nc.request(c.content_subject(NODE, "hall-1f"), ask.model_dump_json().encode(), timeout=5)
            assert not msg.headers, msg.headers
            data += msg.data
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        with Image.open(io.BytesIO(data)) as img:
            assert not img.getexif() and "exif" not in img.info  # the camera and the GPS position are gone
        other = c.ContentRequest(id=str(uuid.uuid4()), sha256="0" * 64)
        msg = await tv.nc.request(c.content_subject(NODE, "hall-1f"), other.model_dump_json().encode(), timeout=5)
        assert msg.headers["Towntip-Refusal-Code"] == c.ITEM_NOT_FOR_SCREEN.code

        withdrawn = await node.call(c.EP_CONTENT_WITHDRAW, c.ItemAction(actor=CHIEF, item_id=item["id"]))
        assert withdrawn["status"] == "withdrawn"
        assert (await tv.sync(have=got.version)).items == ()
    finally:
        await tv.nc.close()


async def test_uploads_are_judged_by_their_bytes_and_refusals_change_nothing(node: Node) -> None:
    await refused(c.UPLOAD_TYPE.code, upload(node, b"<html><script>alert(1)</script></html>", title="x.jpg"))
    await refused(c.UPLOAD_BROKEN.code, upload(node, photo(64, 64)[:200], title="truncated"))
    await refused(c.VALIDITY.code, upload(node, photo(64, 64), valid_until=NOW - timedelta(days=1)))
    await refused(c.UPLOAD_BROKEN.code, upload(node, b"\0\0\0\x18ftypmp42" + b"\0" * 1000, title="x.mp4"))
    video = await upload(node, clip(), title="紹介動画", duration_s=30)
    assert (video["kind"], video["mime"], video["width"], video["height"]) == ("video", "video/mp4", 320, 180)
    assert [i["id"] for i in (await node.call(c.EP_CONTENT_LIST, c.ContentListQuery(actor=CLERK)))["items"]] == [
        video["id"]
    ]


async def test_the_preview_shows_dayparts_and_interrupts_from_the_shared_plan(node: Node) -> None:
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name="kominkan-1", groups=("公民館",)))
    ids = []
    for title in ("朝のお知らせ", "イベント", "防災"):
        item = await upload(node, photo(320, 180, gps=False), title=title, duration_s=20)
        await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
        ids.append(item["id"])
    morning = c.Daypart(name="朝", weekdays=(0, 1, 2, 3, 4), start=time(9), end=time(12))
    await node.call(
        c.EP_PLAYLIST_PUT,
        c.PlaylistPut(
            actor=CLERK,
            name="朝",
            priority=5,
            dayparts=(morning,),
            entries=(c.PlaylistEntry(item_id=ids[0]),),
            groups=("公民館",),
        ),
    )
    await node.call(
        c.EP_PLAYLIST_PUT, c.PlaylistPut(actor=CLERK, name="通常", entries=(c.PlaylistEntry(item_id=ids[1]),))
    )
    await node.call(
        c.EP_PLAYLIST_PUT,
        c.PlaylistPut(actor=CLERK, name="防災", interrupt_share=0.1, entries=(c.PlaylistEntry(item_id=ids[2]),)),
    )
    got = await node.call(c.EP_PREVIEW, c.PreviewQuery(actor=CLERK, screen="kominkan-1", at=NOW + timedelta(hours=1)))
    titles = {s["title"] for s in got["slots"]}
    assert titles == {"朝のお知らせ", "防災"} and got["now_playing"] in ids
    assert sum(s["duration_s"] for s in got["slots"] if s["interrupt"]) == 360  # 10 % of 11:00-12:00
    first = await node.call(c.EP_PREVIEW, c.PreviewQuery(actor=CLERK, screen="kominkan-1", at=NOW))
    assert min(datetime.fromisoformat(s["start"]) for s in first["slots"]) >= NOW  # nothing is valid before 10:15
    evening = await node.call(
        c.EP_PREVIEW, c.PreviewQuery(actor=CLERK, screen="kominkan-1", at=NOW + timedelta(hours=8))
    )
    assert {s["title"] for s in evening["slots"]} == {"イベント", "防災"}
    await refused(
        c.PLAYLIST_ITEM_UNKNOWN.code,
        node.call(
            c.EP_PLAYLIST_PUT,
            c.PlaylistPut(actor=CLERK, name="x", entries=(c.PlaylistEntry(item_id=str(uuid.uuid4())),)),
        ),
    )
    await refused(
        c.SCREEN_NOT_FOUND.code,
        node.call(
            c.EP_PLAYLIST_PUT,
            c.PlaylistPut(actor=CLERK, name="x", screens=("nowhere",), entries=(c.PlaylistEntry(item_id=ids[0]),)),
        ),
    )


async def test_plays_are_counted_per_item_and_per_screen(node: Node) -> None:
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name="hall-2f", place="市役所 2F"))
    item = await upload(node, photo(320, 180, gps=False), title="図書館だより")
    tv = await node.screen("hall-2f")
    try:
        for _ in range(3):
            await tv.play(item["id"])
    finally:
        await tv.nc.close()
    stats = node.svc.plays.stats

    async def applied() -> bool:
        return stats.applied >= 3

    await wait_for(applied, "three plays applied", 10)
    q = c.PlaysQuery(actor=CLERK, since=NOW - timedelta(hours=1), until=NOW + timedelta(hours=1))
    per_item = await node.call(c.EP_PLAYS_SUMMARY, q)
    assert per_item["rows"] == [{"key": item["id"], "label": "図書館だより", "plays": 3, "seconds": 30}]
    per_screen = await node.call(c.EP_PLAYS_SUMMARY, q.model_copy(update={"by": "screen"}))
    assert per_screen["rows"][0]["label"] == "市役所 2F"
