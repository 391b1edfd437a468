"""Activity notifications (issue 18, point 4) over a real nats-server, on SQLite and PostgreSQL: the sns service's
comments and friend requests reach the person concerned once (an event delivered again never notifies twice), a kind
switched off is not recorded, points credited and tomorrow's bookings are told, the daily digest goes out once by
mail, and nobody reads another's notifications."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import func, select

from services.notices.activity_models import activity_notes, activity_prefs
from services.notices.app import NoticesService
from services.sns.app import SnsService
from tests.support.bus import call, wait_for
from tests.support.nodes import started
from tests.support.smtp_helpers import Smtp
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import Envelope
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings

NODE = "testnode"
HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")
TARO = Actor(user_id="user-taro-0001", global_handle=f"taro@{NODE}", display_name="鈴木 太郎")


def settings(service: str, nats_url: str, tmp_path: Path, database: tuple[str, str | None]) -> ServiceSettings:
    url, schema = database
    return ServiceSettings(
        service=service,
        node_id=NODE,
        nats_url=nats_url,
        data_dir=str(tmp_path / "var"),
        database_url=url,
        database_schema=schema or "",
    )


def notices_service(
    nats_url: str,
    tmp_path: Path,
    database: tuple[str, str | None],
    smtp_port: int = 1,
) -> NoticesService:
    smtp = SmtpSettings(
        host="127.0.0.1",
        port=smtp_port,
        timeout=2,
        sender="町 <no-reply@towntip.example.jp>",
        local_hostname="localhost",
    )
    return NoticesService(
        settings("notices", nats_url, tmp_path, database),
        activity_options={"smtp": smtp, "allow_local_push": True, "jobs_every": None},
    )


async def notes(nc: nats.NATS, who: Actor, **q: Any) -> c.ActivityList:
    return c.ActivityList.model_validate(
        await call(nc, c.EP_ACTIVITY_LIST, {"actor": who.model_dump(), **q}, service="notices")
    )


async def publish(nc: nats.NATS, env: Envelope) -> None:
    """An event on its service's stream, as that service's outbox relay publishes it."""
    await nc.jetstream().publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id})


@pytest.fixture
async def node(
    nats_server: Any, database: tuple[str, str | None], tmp_path: Path, smtp: Smtp
) -> AsyncIterator[tuple[nats.NATS, NoticesService]]:
    smtp.start()
    sns = SnsService(
        settings("sns", nats_server.url, tmp_path / "sns", (f"sqlite+aiosqlite:///{tmp_path}/sns.db", None))
    )
    notices = notices_service(nats_server.url, tmp_path, database, smtp.port)
    nc = await nats.connect(nats_server.url)
    try:
        async with started(sns, notices):
            yield nc, notices
    finally:
        await nc.close()


async def test_comments_and_friend_requests_notify_once(node: tuple[nats.NATS, NoticesService]) -> None:
    nc, svc = node
    opened = await call(
        nc, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(actor=HANAKO, name="川の会", categories=["npo-7"]), service="sns"
    )
    await call(nc, sc.EP_COMMUNITY_JOIN, sc.CommunityAction(actor=TARO, community_id=opened["id"]), service="sns")
    post = await call(
        nc,
        sc.EP_POST_CREATE,
        sc.PostCreate(actor=HANAKO, community_id=opened["id"], title="清掃", body="日曜の朝です"),
        service="sns",
    )
    await call(
        nc, sc.EP_COMMENT_CREATE, sc.CommentCreate(actor=HANAKO, post_id=post["id"], body="自分の返事"), service="sns"
    )
    await call(
        nc, sc.EP_COMMENT_CREATE, sc.CommentCreate(actor=TARO, post_id=post["id"], body="参加します"), service="sns"
    )
    await call(
        nc,
        sc.EP_FRIEND_REQUEST,
        {"actor": TARO.model_dump(), "to": HANAKO.global_handle, "to_name": HANAKO.display_name},
        service="sns",
    )

    got = await wait_for(lambda: _with(nc, HANAKO, 2), "hanako's two notifications")
    assert sorted(n.kind for n in got.items) == ["comment", "friend_request"]  # not her own comment
    comment = next(n for n in got.items if n.kind == "comment")
    assert comment.who == TARO.global_handle and comment.link == f"/communities/{opened['id']}/posts/{post['id']}"
    assert "参加します" not in comment.model_dump_json()  # the comment's text stays in sns
    assert got.unread == 2
    assert (await notes(nc, TARO)).items == []  # taro is told nothing of hanako's

    # The same CommentPublished delivered again (past the stream's duplicate window, as after a restore): the inbox
    # knows its id, so no second note.
    js = nc.jetstream()
    original = await js.get_last_msg(subjects.evt_stream(NODE, "sns"), sc.CommentPublished.subject(NODE))
    await js.publish(original.subject, original.data, headers={subjects.HDR_MSG_ID: "redelivered"})
    consumer = next(x for x in svc.activity.consumers if x.spec.durable == "notices-activity-sns")
    await wait_for(lambda: _async(consumer.stats.duplicates >= 1), "the redelivered event seen as a duplicate")
    assert len((await notes(nc, HANAKO)).items) == 2

    # Comments switched off: the next one is not recorded; reading marks read, only one's own.
    await call(nc, c.EP_ACTIVITY_SETTINGS_SET, c.SettingsIn(actor=HANAKO, kinds={"comment": False}), service="notices")
    await call(
        nc, sc.EP_COMMENT_CREATE, sc.CommentCreate(actor=TARO, post_id=post["id"], body="もう一度"), service="sns"
    )
    before = consumer.stats.applied
    await wait_for(lambda: _async(consumer.stats.applied > before), "the second comment consumed")
    assert len((await notes(nc, HANAKO)).items) == 2
    ids = [n.id for n in got.items]
    read = c.ActivityList.model_validate(
        await call(nc, c.EP_ACTIVITY_READ, c.ActivityRead(actor=TARO, ids=ids), service="notices")
    )
    assert read.items == [] and (await notes(nc, HANAKO)).unread == 2  # taro cannot mark hanako's
    await call(nc, c.EP_ACTIVITY_READ, c.ActivityRead(actor=HANAKO, ids=ids[:1]), service="notices")
    assert (await notes(nc, HANAKO)).unread == 1


async def _with(nc: nats.NATS, who: Actor, n: int) -> c.ActivityList | None:
    got = await notes(nc, who)
    return got if len(got.items) >= n else None


async def _async(value: Any) -> Any:
    return value


async def test_points_reminders_and_digest(node: tuple[nats.NATS, NoticesService], smtp: Smtp) -> None:
    nc, svc = node
    now = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 10:00 JST
    tap = pc.TapRecorded(
        key="tap:t1:1",
        terminal_id="t1",
        tap_id="1",
        event="clean-up",
        role="volunteer",
        points=5,
        card_ref="c" * 16,
        tapped_at=now,
        person=HANAKO.global_handle,
        user_id=HANAKO.user_id,
    )
    booked = bc.BookingConfirmed(
        booking_id="b-1",
        facility_id="hall",
        start=now + timedelta(days=1),
        end=now + timedelta(days=1, hours=1),
        booker=HANAKO.global_handle,
        at_counter=False,
        fee=0,
        at=now,
    )
    gone = bc.BookingConfirmed(
        booking_id="b-2",
        facility_id="hall",
        start=now + timedelta(days=1, hours=2),
        end=now + timedelta(days=1, hours=3),
        booker=HANAKO.global_handle,
        at_counter=False,
        fee=0,
        at=now,
    )
    cancelled = bc.BookingCancelled(
        booking_id="b-2",
        facility_id="hall",
        start=gone.start,
        end=gone.end,
        booker=HANAKO.global_handle,
        by="booker",
        at=now,
    )
    for event in (tap, booked, gone, cancelled):
        await publish(nc, event.envelope(node=NODE, at=now))
    await wait_for(lambda: _with(nc, HANAKO, 1), "the points credited")
    bookings = next(x for x in svc.activity.consumers if x.spec.durable == "notices-activity-bookings")
    await wait_for(lambda: _async(bookings.stats.applied >= 3), "the bookings' events")

    assert (await svc.activity.jobs_round(now))["reminders"] == 1  # b-2 was cancelled
    assert (await svc.activity.jobs_round(now))["reminders"] == 0  # reminded once
    got = await notes(nc, HANAKO)
    assert {(n.kind, n.link) for n in got.items} == {
        ("points_credited", "/points"),
        ("booking_reminder", "/bookings/b-1"),
    }
    assert next(n for n in got.items if n.kind == "points_credited").subject == "5"

    # The digest: refused without an address (nothing changes), then on; one mail a day, from 07:00 JST.
    with pytest.raises(errors.BadRequest) as info:
        await call(nc, c.EP_ACTIVITY_SETTINGS_SET, c.SettingsIn(actor=HANAKO, digest=True), service="notices")
    assert info.value.error_code == c.DIGEST_NO_ADDRESS.code
    assert not (await call(nc, c.EP_ACTIVITY_SETTINGS, c.SettingsQuery(actor=HANAKO), service="notices"))["digest"]
    await call(
        nc,
        c.EP_ACTIVITY_SETTINGS_SET,
        c.SettingsIn(actor=HANAKO, digest=True, digest_to="hanako@example.jp"),
        service="notices",
    )
    assert (await svc.activity.jobs_round(now))["digests"] == 1
    assert (await svc.activity.jobs_round(now + timedelta(hours=1)))["digests"] == 0
    await wait_for(lambda: _async(smtp.handler.messages), "the digest mail")
    mail = smtp.handler.parsed()[0]
    assert mail["To"] == "hanako@example.jp" and "ポイント付与" in mail.get_content()
    # Switched off, the address is forgotten.
    await call(nc, c.EP_ACTIVITY_SETTINGS_SET, c.SettingsIn(actor=HANAKO, digest=False), service="notices")
    async with svc.sessions() as s:
        kept = (await s.execute(select(activity_prefs.c.digest_to))).scalar_one()
        assert kept is None
        # Forgetting: nothing is kept past KEEP_DAYS.
        assert (await s.execute(select(func.count()).select_from(activity_notes))).scalar_one() == 2
    assert (await svc.activity.jobs_round(now + timedelta(days=c.KEEP_DAYS + 1)))["forgotten"] == 2
