"""What the signage tests share: a fixed clock, staff, and the service running in this process over a real
nats-server (the staff's calls go through NATS as the gateway's would; a screen speaks its protocol)."""

from __future__ import annotations

import base64
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
from nats.aio.client import Client as NATS
from PIL import Image

from services.signage.app import SignageService
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts.actor import Actor

NODE = "testnode"
# Monday 7 December 2026, 10:15 in Japan.
NOW = datetime(2026, 12, 7, 1, 15, tzinfo=UTC)
CLERK = Actor(user_id="user-clerk-001", global_handle=f"clerk@{NODE}", display_name="窓口 職員", roles=("staff",))
CHIEF = Actor(user_id="user-chief-001", global_handle=f"chief@{NODE}", display_name="広報 係長", roles=("staff",))
HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")


@dataclass
class Node:
    nc: NATS
    svc: SignageService
    url: str

    async def call(self, endpoint: str, payload: Any, timeout: float = 5.0) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=timeout)

    async def screen(self, name: str) -> Screen:
        """A screen's connection as the player makes it: its own inbox prefix."""
        conn = await nats.connect(self.url, inbox_prefix=c.screen_inbox_prefix(name))
        return Screen(name, conn)


@dataclass
class Screen:
    name: str
    nc: NATS

    async def sync(self, have: str | None = None) -> c.SyncReply:
        msg = await self.nc.request(
            c.sync_subject(NODE, self.name), c.SyncRequest(have=have).model_dump_json().encode(), timeout=5
        )
        if msg.headers and msg.headers.get(subjects.HDR_SERVICE_ERROR_CODE):
            raise AssertionError(f"refused: {msg.headers}")
        return c.SyncReply.model_validate_json(msg.data)

    async def play(self, item_id: str, *, play_id: str | None = None, msg_id: bool = True) -> str:
        pid = play_id or str(uuid.uuid4())
        body = c.Play(
            play_id=pid, item_id=item_id, screen=self.name, started_at=NOW, ended_at=NOW + timedelta(seconds=10)
        )
        headers = {"Nats-Msg-Id": pid} if msg_id else None
        ack = await self.nc.request(
            c.plays_subject(NODE, self.name), body.model_dump_json().encode(), headers=headers, timeout=5
        )
        assert json.loads(ack.data).get("stream") == c.plays_stream(NODE), ack.data
        return pid


async def upload(
    node: Node,
    data: bytes,
    *,
    actor: Actor = CLERK,
    title: str = "お知らせ",
    duration_s: int = 10,
    valid_from: datetime = NOW,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """A file uploaded in parts as the staff page sends it, then made an item (pending)."""
    upload_id = str(uuid.uuid4())
    parts = [data[i : i + c.CHUNK_MAX] for i in range(0, len(data), c.CHUNK_MAX)] or [b""]
    for seq, part in enumerate(parts):
        await node.call(
            c.EP_UPLOAD_PART,
            c.UploadPart(actor=actor, upload_id=upload_id, seq=seq, data_b64=base64.b64encode(part).decode()),
        )
    return await node.call(
        c.EP_CONTENT_CREATE,
        c.ContentCreate(
            actor=actor,
            upload_id=upload_id,
            parts=len(parts),
            title=title,
            duration_s=duration_s,
            valid_from=valid_from,
            valid_until=valid_until,
        ),
        timeout=20,
    )


def clip(width: int = 320, height: int = 180, *, seconds: float = 1.0, fmt: str = "mp4", fps: int = 10,
         place: str = "+35.9372+139.3931/", sound: bool = True) -> bytes:
    """A video such as a phone makes: with its place of shooting and a title in the container's metadata, and a
    sound track (PyAV encodes it: libx264 and AAC for MP4, libvpx and Opus for WebM)."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as dst:
        dst.metadata.update({"location": place, "title": "IMG_0001 撮影者 山田", "comment": place})
        video = dst.add_stream("libx264" if fmt == "mp4" else "libvpx", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.metadata["handler_name"] = "PhoneMaker Camera"
        audio = dst.add_stream("aac" if fmt == "mp4" else "libopus", rate=48000) if sound else None
        for i in range(max(1, int(seconds * fps))):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 20) % 255]) * plane.buffer_size)
            frame.pts = i
            dst.mux(video.encode(frame))
        dst.mux(video.encode(None))
        if audio is not None:
            samples = 960 if fmt == "webm" else 1024
            for i in range(int(seconds * 48000 / samples)):
                sound_frame = av.AudioFrame(format="fltp", layout="mono", samples=samples)
                sound_frame.planes[0].update(bytes(sound_frame.planes[0].buffer_size))
                sound_frame.sample_rate, sound_frame.pts = 48000, i * samples
                dst.mux(audio.encode(sound_frame))
            dst.mux(audio.encode(None))
    return out.getvalue()


def photo(width: int = 3000, height: int = 2000, *, gps: bool = True) -> bytes:
    """A JPEG such as a phone makes: large, with EXIF (camera, GPS position)."""
    img = Image.new("RGB", (width, height), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    if gps:
        exif[0x8825] = {1: "N", 2: (35.0, 56.0, 0.0), 3: "E", 4: (139.0, 23.0, 0.0)}  # GPSInfo
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=70)
    return out.getvalue()


# A CAP 1.2 alert as the Japan Meteorological Agency would send it, in English and Japanese (tests of 緊急情報).
CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>JMA-{ident}</identifier><sender>jma@example.jp</sender><sent>2026-12-07T10:20:00+09:00</sent>
  <status>Actual</status><msgType>{kind}</msgType><scope>Public</scope>{refs}
  <info><language>en</language><event>Heavy rain</event><severity>{severity}</severity>
    <headline>Heavy rain warning</headline><area><areaDesc>Tsurugashima</areaDesc></area></info>
  <info><language>ja-JP</language><event>大雨</event><urgency>Immediate</urgency><severity>{severity}</severity>
    <certainty>Observed</certainty><headline>大雨警報</headline><description>川に近づかないでください。</description>
    <area><areaDesc>鶴ヶ島市</areaDesc><geocode><valueName>JIS X0402</valueName><value>{area}</value></geocode></area>
  </info>
</alert>"""


def cap(ident: str = "1", *, kind: str = "Alert", severity: str = "Severe", area: str = "11241", refs: str = "") -> str:
    return CAP.format(
        ident=ident, kind=kind, severity=severity, area=area, refs=f"<references>{refs}</references>" if refs else ""
    )
