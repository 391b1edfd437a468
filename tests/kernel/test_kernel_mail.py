"""kernel.mail on SQLite and PostgreSQL, against a real local SMTP server (aiosmtpd):
nothing lost, nothing queued twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel import db
from towntip.kernel.mail import MailSender, SmtpSettings, define_mail_table, mail_status, queue_mail

metadata = MetaData()
mail = define_mail_table(metadata)

SENDER = "タウンチップ事務局 <no-reply@towntip.example.jp>"
SUBJECT = "【鶴ヶ島】ボランティア参加のお礼"
TEXT = "山田花子 様\n\n清掃ボランティアへのご参加ありがとうございました。\n10ポイントを付与しました。\n"
HTML = "<p>山田花子 様</p><p>ご参加ありがとうございました。</p>"


@pytest.fixture
async def sessions(database: tuple[str, str | None]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url, schema = database
    engine = db.create_engine(url, schema=schema)
    await db.ensure_schema(engine, schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield db.sessionmaker(engine)
    finally:
        await engine.dispose()


def settings(port: int) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, timeout=2, sender=SENDER, local_hostname="localhost")


def sender(sessions: async_sessionmaker[AsyncSession], port: int, **kwargs: Any) -> MailSender:
    return MailSender(sessions=sessions, table=mail, settings=settings(port), **kwargs)


async def queue(sessions: async_sessionmaker[AsyncSession], key: str, to: str = "hanako@example.jp", **kw: Any) -> bool:
    async with sessions() as session, session.begin():
        return await queue_mail(
            session, mail, key=key, to=to, subject=kw.get("subject", SUBJECT), text=kw.get("text", TEXT),
            html=kw.get("html"),
        )


async def row(sessions: async_sessionmaker[AsyncSession], key: str) -> dict[str, Any]:
    async with sessions() as session:
        found = (await session.execute(select(mail).where(mail.c.key == key))).mappings().one()
    out = dict(found)
    for name in ("created_at", "next_attempt_at", "sent_at", "failed_at"):  # SQLite gives naive UTC back
        if out[name] is not None and out[name].tzinfo is None:
            out[name] = out[name].replace(tzinfo=UTC)
    return out


async def make_due(sessions: async_sessionmaker[AsyncSession], key: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(mail).where(mail.c.key == key).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def count_rows(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return (await session.execute(select(func.count()).select_from(mail))).scalar_one()


async def status(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        return await mail_status(session, mail)


async def test_japanese_message_arrives_once_and_is_marked_sent(sessions, smtp):
    smtp.start()
    assert await queue(sessions, "thanks:1", html=HTML)
    relay = sender(sessions, smtp.port)
    assert await relay.send_due() == 1
    assert await relay.send_due() == 0, "a sent row is not sent again"

    assert len(smtp.handler.messages) == 1
    mail_from, rcpt_tos, raw = smtp.handler.messages[0]
    assert mail_from == "no-reply@towntip.example.jp"
    assert rcpt_tos == ["hanako@example.jp"]
    assert raw.isascii(), "the message must be 7-bit clean for any relay"
    msg = smtp.handler.parsed()[0]
    assert str(msg["Subject"]) == SUBJECT
    assert msg["From"].addresses[0].display_name == "タウンチップ事務局"
    assert msg["From"].addresses[0].addr_spec == "no-reply@towntip.example.jp"
    assert str(msg["To"]) == "hanako@example.jp"
    assert msg["Date"] is not None and msg["Message-ID"].endswith("@towntip.example.jp>")
    assert msg.get_content_type() == "multipart/alternative"
    # base64 text parts carry the canonical CRLF line breaks (RFC 2045)
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == TEXT
    assert msg.get_body(("html",)).get_content().strip() == HTML

    r = await row(sessions, "thanks:1")
    assert r["sent_at"] is not None and r["failed_at"] is None and r["attempts"] == 1
    assert await status(sessions) == {"queued": 0, "sent": 1, "failed": 0}


async def test_same_key_is_queued_once(sessions, smtp):
    smtp.start()
    assert await queue(sessions, "reset:42") is True
    assert await queue(sessions, "reset:42", subject="something else") is False
    assert await count_rows(sessions) == 1
    assert (await row(sessions, "reset:42"))["subject"] == SUBJECT, "the first message stands"
    await sender(sessions, smtp.port).send_due()
    assert await queue(sessions, "reset:42") is False, "not even after it was sent"
    assert len(smtp.handler.messages) == 1


async def test_server_down_keeps_the_row_and_delivers_it_later(sessions, smtp):
    await queue(sessions, "notice:1", html=HTML)
    relay = sender(sessions, smtp.port)  # nothing listens on the port yet
    before = datetime.now(UTC)
    assert await relay.send_due() == 0
    r = await row(sessions, "notice:1")
    assert r["attempts"] == 1 and r["sent_at"] is None and r["failed_at"] is None
    assert r["last_error"] and "Connect" in r["last_error"]
    assert r["next_attempt_at"] >= before + timedelta(seconds=5), "first retry after backoff[0] = 5 s"
    assert await relay.send_due() == 0, "not due yet: no second attempt"
    assert (await row(sessions, "notice:1"))["attempts"] == 1
    assert await status(sessions) == {"queued": 1, "sent": 0, "failed": 0}

    smtp.start()
    await make_due(sessions, "notice:1")
    assert await relay.send_due() == 1
    r = await row(sessions, "notice:1")
    assert r["sent_at"] is not None and r["attempts"] == 2
    assert [str(m["Subject"]) for m in smtp.handler.parsed()] == [SUBJECT]


async def test_rejected_recipient_fails_at_once_and_a_busy_one_is_retried(sessions, smtp):
    smtp.handler.refuse = {"nobody@example.jp": "550 no such user", "busy@example.jp": "450 mailbox busy"}
    smtp.start()
    await queue(sessions, "a", to="nobody@example.jp")
    await queue(sessions, "b", to="busy@example.jp")
    await queue(sessions, "c", to="hanako@example.jp")
    relay = sender(sessions, smtp.port)
    assert await relay.send_due() == 1, "the good one goes out on the same connection"
    assert [rcpt for _f, rcpt, _raw in smtp.handler.messages] == [["hanako@example.jp"]]

    refused = await row(sessions, "a")
    assert refused["failed_at"] is not None and refused["sent_at"] is None and refused["attempts"] == 1
    assert "550" in refused["last_error"] and "no such user" in refused["last_error"]
    busy = await row(sessions, "b")
    assert busy["failed_at"] is None and busy["sent_at"] is None and "450" in busy["last_error"]
    assert busy["next_attempt_at"] > datetime.now(UTC)

    await make_due(sessions, "a")
    await make_due(sessions, "b")
    smtp.handler.refuse.pop("busy@example.jp")
    assert await relay.send_due() == 1
    assert [rcpt for _f, rcpt, _raw in smtp.handler.messages][-1] == ["busy@example.jp"]
    assert (await row(sessions, "a"))["attempts"] == 1, "a failed row is never tried again"
    assert await status(sessions) == {"queued": 0, "sent": 2, "failed": 1}


@pytest.mark.parametrize(
    ("to", "subject", "message"),
    [
        ("hanako@example.jp", "お知らせ\r\nBcc: all@example.jp", "subject must not contain CR, LF"),
        ("hanako@example.jp", "お知らせ\nX-Evil: 1", "subject must not contain CR, LF"),
        ("hanako@example.jp\r\nBcc: all@example.jp", SUBJECT, "address must not contain CR, LF"),
        ("hanako@example.jp\n", SUBJECT, "address must not contain CR, LF"),
        ("hanako@example.jp, taro@example.jp", SUBJECT, "not one plain address"),
        ("Hanako <hanako@example.jp>", SUBJECT, "not one plain address"),
        ("hanako", SUBJECT, "not one plain address"),
    ],
)
async def test_header_injection_and_bad_addresses_are_refused(sessions, to, subject, message):
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match=message):
            await queue_mail(session, mail, key="x", to=to, subject=subject, text="body")
    assert await count_rows(sessions) == 0


async def test_gives_up_after_max_attempts_with_the_last_error(sessions, smtp):
    await queue(sessions, "digest:7")
    relay = sender(sessions, smtp.port, max_attempts=3, backoff=(0,))  # server stays down
    for attempt in (1, 2):
        assert await relay.send_due() == 0
        r = await row(sessions, "digest:7")
        assert r["attempts"] == attempt and r["failed_at"] is None
    assert await relay.send_due() == 0
    r = await row(sessions, "digest:7")
    assert r["attempts"] == 3 and r["failed_at"] is not None and r["sent_at"] is None
    assert "ConnectionRefusedError" in r["last_error"]
    assert await status(sessions) == {"queued": 0, "sent": 0, "failed": 1}

    smtp.start()
    await make_due(sessions, "digest:7")
    assert await relay.send_due() == 0, "a failed row stays failed"
    assert smtp.handler.messages == []
    assert await count_rows(sessions) == 1, "nothing is deleted"


async def test_crash_after_sending_sends_again_with_the_same_message_id(sessions, smtp):
    smtp.start()
    await queue(sessions, "welcome:9")

    def crash(point: str) -> None:
        if point == "sent":
            raise SystemError("sender killed after the server took the message, before marking")

    with pytest.raises(SystemError):
        await sender(sessions, smtp.port, fault_hook=crash).send_due()
    r = await row(sessions, "welcome:9")
    assert r["sent_at"] is None and r["failed_at"] is None, "the row stays queued until marked"
    assert r["next_attempt_at"] > datetime.now(UTC), "claimed: nobody else sends it meanwhile"
    assert await sender(sessions, smtp.port).send_due() == 0

    await make_due(sessions, "welcome:9")  # the claim has run out (the restarted process)
    assert await sender(sessions, smtp.port).send_due() == 1
    first, second = smtp.handler.parsed()
    assert first["Message-ID"] == second["Message-ID"] and first["Date"] == second["Date"]
    assert (await row(sessions, "welcome:9"))["sent_at"] is not None


async def test_concurrent_senders_send_each_message_once(sessions, smtp):
    smtp.start()
    for i in range(12):
        await queue(sessions, f"bulk:{i}", to=f"user{i}@example.jp")
    senders = [sender(sessions, smtp.port, batch=4) for _ in range(3)]
    sent = 0
    for _ in range(4):
        sent += sum(await asyncio.gather(*(s.send_due() for s in senders)))
    assert sent == 12
    rcpts = sorted(rcpt[0] for _f, rcpt, _raw in smtp.handler.messages)
    assert rcpts == sorted(f"user{i}@example.jp" for i in range(12)), "each exactly once"
    assert await status(sessions) == {"queued": 0, "sent": 12, "failed": 0}


async def test_run_is_woken_and_stops(sessions, smtp):
    smtp.start()
    relay = sender(sessions, smtp.port, poll_interval=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.1)
    await queue(sessions, "woken:1")
    relay.wake()  # with a 30 s poll, only the wake can send within the test's time
    for _ in range(100):
        if smtp.handler.messages:
            break
        await asyncio.sleep(0.02)
    assert len(smtp.handler.messages) == 1
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await row(sessions, "woken:1"))["sent_at"] is not None


async def test_disabled_sender_keeps_mail_queued(sessions, smtp):
    smtp.start()
    await queue(sessions, "quiet:1")
    relay = MailSender(sessions=sessions, table=mail,
                       settings=settings(smtp.port).model_copy(update={"enabled": False}))
    assert await relay.send_due() == 0
    assert smtp.handler.messages == []
    assert await status(sessions) == {"queued": 1, "sent": 0, "failed": 0}


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("TOWNTIP_SMTP_HOST", "mail.example.jp")
    monkeypatch.setenv("TOWNTIP_SMTP_PORT", "587")
    monkeypatch.setenv("TOWNTIP_SMTP_STARTTLS", "true")
    monkeypatch.setenv("TOWNTIP_SMTP_USERNAME", "towntip")
    monkeypatch.setenv("TOWNTIP_SMTP_PASSWORD", "s3cret")
    s = SmtpSettings()
    assert (s.host, s.port, s.starttls, s.use_tls, s.username) == ("mail.example.jp", 587, True, False, "towntip")
    assert s.password is not None and s.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.sender_address == "no-reply@localhost"
    monkeypatch.setenv("TOWNTIP_SMTP_USE_TLS", "true")
    with pytest.raises(ValueError, match="not both"):
        SmtpSettings()
