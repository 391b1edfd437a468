"""What the player's tests share: the signage service on a real nats-server, fed through its staff endpoints (a
screen registered, images uploaded by one staff member and approved by another, playlists with dayparts,
emergencies sent and cleared), and a clock the test can move."""

from __future__ import annotations

import base64
import contextlib
import io
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import func, select

from services.signage import blobs, state
from services.signage.app import SignageService
from services.signage.models import items, plays
from tests.signage.helpers import CHIEF, CLERK
from tests.support.nodes import started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import utcnow
from towntip.kernel.contracts import signage as c
from towntip.kernel.pdf import FONT_FILE
from towntip.kernel.settings import ServiceSettings

NODE = "testnode"
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


class MovableClock:
    """The player's clock: real time plus an offset the test sets (`set(at)`: it reads `at` now and runs on)."""

    def __init__(self, at: datetime | None = None) -> None:
        self.offset = timedelta(0)
        if at is not None:
            self.set(at)

    def set(self, at: datetime) -> None:
        self.offset = at - utcnow()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


def picture(title: str, sub: str, colour: tuple[int, int, int], size: tuple[int, int] = (1280, 720)) -> bytes:
    """A PNG poster with Japanese text (the kernel's font), as staff would upload."""
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    big, small = ImageFont.truetype(str(FONT_FILE), 84), ImageFont.truetype(str(FONT_FILE), 44)
    draw.text((80, 230), title, font=big, fill=(255, 255, 255))
    draw.text((84, 380), sub, font=small, fill=(255, 255, 240))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def slide(kicker: str, title: str, lines: list[str]) -> bytes:
    """A node-made slide (HTML, no script), as the service renders from its own data."""
    rows = "".join(f"<li>{line}</li>" for line in lines)
    return (
        "<!doctype html><html lang=ja><head><meta charset=utf-8><style>"
        "body{margin:0;padding:6vh 6vw;background:#fffdf5;color:#1a1a1a;font-family:'BIZ UDPGothic',sans-serif}"
        "p{color:#1d5c8f;font-size:5vh;margin:0}h1{font-size:10vh;margin:2vh 0}li{font-size:5.5vh;line-height:1.6}"
        f"</style></head><body><p>{kicker}</p><h1>{title}</h1><ul>{rows}</ul></body></html>"
    ).encode()


@dataclass
class SignageNode:
    svc: SignageService
    nc: Any
    items: dict[str, str] = field(default_factory=dict)  # title -> item id

    async def register(self, screen: str, place: str, groups: tuple[str, ...] = ()) -> None:
        reg = c.ScreenRegister(actor=CLERK, name=screen, place=place, groups=groups)
        await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, c.EP_SCREEN_REGISTER), reg)

    async def screen_state(self, screen: str) -> dict[str, Any]:
        return dict(await self.call(c.EP_SCREEN_GET, c.ScreenQuery(actor=CLERK, name=screen)))

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=20)

    async def add_image(self, title: str, data: bytes, *, duration_s: int) -> str:
        """Uploaded by one staff member, approved by another, as the staff pages do."""
        upload_id = str(uuid.uuid4())
        part = c.UploadPart(actor=CLERK, upload_id=upload_id, seq=0, data_b64=base64.b64encode(data).decode())
        await self.call(c.EP_UPLOAD_PART, part)
        create = c.ContentCreate(
            actor=CLERK, upload_id=upload_id, parts=1, title=title, duration_s=duration_s, valid_from=LONG_AGO
        )
        item = await self.call(c.EP_CONTENT_CREATE, create)
        await self.call(c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
        self.items[title] = item["id"]
        return str(item["id"])

    async def add_slide(self, key: str, title: str, html: bytes, *, duration_s: int) -> str:
        """A node-made slide of HTML written straight into the service's tables (source 'slide', its bytes in the
        blob store), in the service's own transaction: the player's handling of an HTML slide, apart from the
        service's data slides (services/signage/slides.py, tests/edge/test_signage_slide_browser.py)."""
        item_id = str(uuid.uuid4())
        now = utcnow()
        async with self.svc.sessions() as s, s.begin():
            sha = await blobs.put(s, html)
            await s.execute(
                items.insert().values(
                    id=item_id,
                    kind="slide",
                    title=title,
                    mime="text/html",
                    sha256=sha,
                    bytes=len(html),
                    duration_s=duration_s,
                    valid_from=LONG_AGO,
                    valid_until=None,
                    status="approved",
                    source="slide",
                    slide_key=key,
                    created_by=None,
                    created_at=now,
                    approved_by=None,
                    approved_at=now,
                    updated_at=now,
                    offered=False,
                )
            )
            await state.bump(s)
        self.svc.pusher.wake()
        self.items[title] = item_id
        return item_id

    async def add_playlist(self, name: str, item_ids: list[str], *, start: time, end: time) -> None:
        put = c.PlaylistPut(
            actor=CLERK,
            name=name,
            dayparts=(c.Daypart(name=name, start=start, end=end),),
            entries=tuple(c.PlaylistEntry(item_id=i) for i in item_ids),
        )
        await self.call(c.EP_PLAYLIST_PUT, put)

    async def emergency(self, title: str, body: str) -> str:
        sent = await self.call(c.EP_EMERGENCY_SEND, c.EmergencySend(actor=CHIEF, title=title, body=body))
        return str(sent["id"])

    async def clear(self, em_id: str) -> None:
        await self.call(c.EP_EMERGENCY_CLEAR, c.EmergencyAction(actor=CHIEF, id=em_id))

    async def plays(self) -> list[Any]:
        async with self.svc.sessions() as s:
            return list((await s.execute(select(plays).order_by(plays.c.started_at))).all())

    async def play_count(self) -> int:
        async with self.svc.sessions() as s:
            return int((await s.execute(select(func.count()).select_from(plays))).scalar_one())


@contextlib.asynccontextmanager
async def signage_node(
    nats_url: str,
    tmp_path: Path,
    clock: Callable[[], datetime] = utcnow,
    database: tuple[str, str | None] | None = None,
) -> AsyncIterator[SignageNode]:
    """The signage service of node 'testnode' on `database` (the conftest fixture's (url, schema); by default its
    own SQLite file), and an operator's connection."""
    import nats

    url, schema = database or (f"sqlite+aiosqlite:///{tmp_path}/signage.sqlite3", None)
    svc = SignageService(
        ServiceSettings(
            service="signage",
            node_id=NODE,
            nats_url=nats_url,
            data_dir=str(tmp_path / "var"),
            database_url=url,
            database_schema=schema or "",
        ),
        clock=clock,
    )
    async with started(svc):
        nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        try:
            yield SignageNode(svc, nc)
        finally:
            await nc.close()


@dataclass(frozen=True)
class Programme:
    """A morning loop of three items (2 s each: two posters and a slide) and a lunch loop of one."""

    morning: tuple[str, str, str]
    lunch: str


async def morning_and_lunch(node: SignageNode) -> Programme:
    """Content and two dayparts (06:00-11:00 and 11:00-14:00) for every screen of the node."""
    volunteers = picture("冬のボランティア説明会", "12月12日（土）10時〜 市民活動推進センター", (29, 92, 143))
    news = slide(
        "まちづくり情報 Community news",
        "今週の催し",
        ["12/8 子ども食堂（中央公民館）", "12/9 防災講座 — 申込 18/30 人", "12/10 図書館 おはなし会"],
    )
    points = picture("まちづくりポイント", "今月 3,250 pt — 地区のみなさん、ありがとう", (46, 125, 50))
    exercise = picture("お昼の健康体操", "12時15分から 2階 多目的室", (191, 87, 0))
    a = await node.add_image("冬のボランティア説明会", volunteers, duration_s=2)
    b = await node.add_slide("events", "今週の催し", news, duration_s=2)
    c_ = await node.add_image("まちづくりポイント", points, duration_s=2)
    lunch = await node.add_image("お昼の健康体操", exercise, duration_s=2)
    await node.add_playlist("朝 morning", [a, b, c_], start=time(6), end=time(11))
    await node.add_playlist("昼 lunch", [lunch], start=time(11), end=time(14))
    return Programme((a, b, c_), lunch)


async def settled(node: SignageNode, player: Any, cache_dir: Path) -> list[Any] | None:
    """The service's plays, once they are exactly the plays in the screen's spool (and none waits to be sent)."""
    if player.spool.counts()["pending"]:
        return None
    with contextlib.closing(sqlite3.connect(cache_dir / "plays.sqlite3")) as db:
        made = {r[0] for r in db.execute("SELECT play_id FROM plays")}
    rows = await node.plays()
    return rows if [r.play_id for r in rows] and {r.play_id for r in rows} == made and len(rows) == len(made) else None
