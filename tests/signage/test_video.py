"""Uploaded videos (issue 19, point 2): decoded to prove they are what their bytes claim, written again without
metadata (a phone's place of shooting, its title, the camera's name), scaled down to the largest screen when bigger,
with their sound kept; and refused, with the reason, when they are not a playable video, too long, or too long to be
scaled within the upload. Real PyAV (FFmpeg) on real encoded files; the last test goes through the service on SQLite
and PostgreSQL."""

from __future__ import annotations

import hashlib
import io

import av
import pytest

from services.signage import video
from tests.signage.helpers import CHIEF, CLERK, NODE, Node, clip, upload
from towntip.kernel import errors
from towntip.kernel.contracts import signage as c

PLACE = "+35.9372+139.3931/"


def _facts(raw: bytes) -> tuple[str, dict[str, str], list[tuple[str, str, int, int, dict[str, str]]]]:
    with av.open(io.BytesIO(raw)) as src:
        return src.format.name, dict(src.metadata), [
            (s.type, s.codec_context.name, s.codec_context.width if s.type == "video" else 0,
             s.codec_context.height if s.type == "video" else 0, dict(s.metadata)) for s in src.streams]


def _no_trace_of_the_phone(raw: bytes, meta: dict[str, str], streams: list) -> None:
    assert PLACE.encode() not in raw and "撮影者".encode() not in raw and b"PhoneMaker" not in raw
    assert not {k.lower() for k in meta} & {"location", "location-eng", "title", "comment"}, meta
    assert all("PhoneMaker" not in " ".join(s[4].values()) for s in streams)


@pytest.mark.parametrize("fmt,mime,codecs", [("mp4", "video/mp4", ("h264", "aac")),
                                              ("webm", "video/webm", ("vp8", "opus"))])
def test_a_video_that_fits_is_copied_without_its_metadata(fmt: str, mime: str, codecs: tuple[str, str]) -> None:
    raw = clip(320, 180, fmt=fmt)
    assert PLACE.encode() in raw  # the phone's file carries its place
    out, width, height = video.clean(raw, mime, (1920, 1080))
    name, meta, streams = _facts(out)
    assert (width, height) == (320, 180)
    assert [(s[0], s[1], s[2], s[3]) for s in streams] == [("video", codecs[0], 320, 180), ("audio", codecs[1], 0, 0)]
    _no_trace_of_the_phone(out, meta, streams)
    assert (fmt in name.split(","))


@pytest.mark.parametrize("fmt,mime", [("mp4", "video/mp4"), ("webm", "video/webm")])
def test_a_video_bigger_than_the_screens_is_scaled_to_fit_with_its_sound(fmt: str, mime: str) -> None:
    raw = clip(640, 360, seconds=2, fmt=fmt)
    out, width, height = video.clean(raw, mime, (320, 240))
    name, meta, streams = _facts(out)
    assert (width, height) == (320, 180)  # the 16:9 picture fitted into a 4:3 box, sides even
    assert [(s[0], s[2], s[3]) for s in streams] == [("video", 320, 180), ("audio", 0, 0)]
    _no_trace_of_the_phone(out, meta, streams)
    with av.open(io.BytesIO(out)) as src:  # every frame is there and decodes
        assert sum(1 for _ in src.decode(video=0)) == 20


def test_what_is_not_a_playable_video_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(code: str, raw: bytes, mime: str = "video/mp4", box: tuple[int, int] = (1920, 1080)) -> str:
        with pytest.raises(errors.ServiceError) as caught:
            video.clean(raw, mime, box)
        assert caught.value.error_code == code, caught.value.reason
        return caught.value.reason

    refused(c.UPLOAD_BROKEN.code, b"\0\0\0\x18ftypmp42" + b"\0" * 1000)  # the magic bytes only
    refused(c.UPLOAD_BROKEN.code, clip(fmt="mp4")[:600])  # cut short
    refused(c.UPLOAD_BROKEN.code, clip(fmt="webm"), mime="video/mp4")  # not the type its first bytes named
    monkeypatch.setattr(video, "SECONDS_MAX", 1)
    assert "at most 1 s" in refused(c.UPLOAD_TOO_LARGE.code, clip(seconds=2))
    monkeypatch.setattr(video, "SECONDS_MAX", 600)
    monkeypatch.setattr(video, "SCALE_FRAMES_MAX", 10)  # 2 s at 10 fps is over it: export it smaller
    why = refused(c.UPLOAD_TOO_LARGE.code, clip(640, 360, seconds=2), box=(320, 240))
    assert "export it at 320x180 or smaller" in why
    assert video.clean(clip(320, 180, seconds=2), "video/mp4", (320, 240))[1:] == (320, 180)  # fits: only copied


async def test_an_uploaded_video_is_kept_clean_and_fitted_by_the_service(node: Node) -> None:
    # the town's largest screen is 320x240: a phone's 640x360 video is fitted to it
    await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name="hall-1f", width=320, height=240))
    raw = clip(640, 360, seconds=1, fmt="mp4")
    item = await upload(node, raw, title="紹介動画", duration_s=15)
    assert (item["kind"], item["mime"], item["width"], item["height"], item["status"]) == (
        "video", "video/mp4", 320, 180, "pending")
    await node.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    await node.call(c.EP_PLAYLIST_PUT, c.PlaylistPut(actor=CLERK, name="通常",
                                                     entries=(c.PlaylistEntry(item_id=item["id"]),)))
    tv = await node.screen("hall-1f")
    try:  # what the screen fetches is the cleaned file
        assert [i.id for i in (await tv.sync()).items] == [item["id"]]
        kept = b""
        while len(kept) < item["bytes"]:
            ask = c.ContentRequest(id=item["id"], sha256=item["sha256"], offset=len(kept))
            msg = await tv.nc.request(c.content_subject(NODE, "hall-1f"), ask.model_dump_json().encode(), timeout=5)
            assert not msg.headers, msg.headers
            kept += msg.data
    finally:
        await tv.nc.close()
    assert hashlib.sha256(kept).hexdigest() == item["sha256"] and len(kept) == item["bytes"] != len(raw)
    _, meta, streams = _facts(kept)
    _no_trace_of_the_phone(kept, meta, streams)
    assert [(s[0], s[2], s[3]) for s in streams] == [("video", 320, 180), ("audio", 0, 0)]

    # a broken one is refused and leaves nothing behind
    with pytest.raises(errors.ServiceError) as caught:
        await upload(node, b"\0\0\0\x18ftypmp42" + b"\0" * 1000, title="壊れた動画")
    assert caught.value.error_code == c.UPLOAD_BROKEN.code
    listed = (await node.call(c.EP_CONTENT_LIST, c.ContentListQuery(actor=CLERK)))["items"]
    assert [i["id"] for i in listed] == [item["id"]]
