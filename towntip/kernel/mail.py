"""Durable outgoing e-mail: a message commits with the change that caused it; a sender delivers it afterwards.

The same design as the bus outbox (kernel.bus.outbox): a service adds the `mail_outbox` table to its own
metadata (its own migration creates it), stages messages with `queue_mail` inside its transaction, calls
`MailSender.wake()` after the commit, and runs `MailSender.run(stop)` as a task.

Delivery is at least once. A row is marked sent only after the SMTP server accepted the message; a crash
between the two sends it again later. Every copy has the same Message-ID (derived from the key) and the same
Date (the time it was queued), so mail clients and servers that deduplicate can spot the repeat.

No extra dependency: the standard library's `smtplib` runs in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import re
import smtplib
import ssl
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import FaultHook, SeqType
from towntip.kernel.loops import woken_rounds
from towntip.kernel.settings import FileVariables

log = logging.getLogger(__name__)

KEY_MAX = 200
ADDR_MAX = 254  # RFC 5321 path limit, less the angle brackets
SUBJECT_MAX = 500
ERROR_MAX = 500


class SmtpSettings(FileVariables):
    """How a node reaches its mail relay, from TOWNTIP_SMTP_* environment variables (or TOWNTIP_SMTP_*_FILE: a
    file holding the value, e.g. TOWNTIP_SMTP_PASSWORD_FILE)."""

    model_config = SettingsConfigDict(env_prefix="TOWNTIP_SMTP_", extra="ignore")

    # False: messages stay queued (a node without a mail relay); `mail_status` shows them.
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False  # upgrade a plain connection (usually port 587)
    use_tls: bool = False  # implicit TLS from the first byte (usually port 465)
    timeout: float = Field(default=10.0, gt=0)  # seconds, for each network operation
    sender: str = "TownTip Commons <no-reply@localhost>"  # From header; its address is the envelope sender
    local_hostname: str | None = None  # name given in EHLO; None: the host's FQDN

    @field_validator("sender")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        if _has_control(value):
            raise ValueError("sender must not contain CR, LF or other control characters")
        _name, addr = parseaddr(value)
        if not _ADDR_RE.fullmatch(addr):
            raise ValueError(f"sender {value!r} has no plausible ASCII address (like 'Name <no-reply@example.jp>')")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSettings:
        if self.starttls and self.use_tls:
            raise ValueError("choose starttls (upgrade a plain connection) or use_tls (implicit TLS), not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]


def define_mail_table(metadata: MetaData) -> Table:
    """The outgoing mail of one service, in that service's own metadata (and so its own migrations).

    A row is queued while sent_at and failed_at are both NULL; it is due once next_attempt_at has passed.
    """
    return Table(
        "mail_outbox",
        metadata,
        Column("seq", SeqType, primary_key=True, autoincrement=True),
        Column("key", String(KEY_MAX), nullable=False, unique=True),  # the caller's idempotency key
        Column("to_addr", String(ADDR_MAX), nullable=False),
        Column("subject", String(SUBJECT_MAX), nullable=False),
        Column("body_text", Text, nullable=False),
        Column("body_html", Text, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Column("last_error", String(ERROR_MAX), nullable=True),
        Column("failed_at", DateTime(timezone=True), nullable=True),  # gave up: permanent error or max attempts
        Index("ix_mail_outbox_due", "sent_at", "failed_at", "next_attempt_at"),
    )


# One plain addr-spec: dot-atom local part, ASCII domain of letters, digits and hyphens (IDN: punycode it).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_RE = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")  # everything str.splitlines() splits on


def _has_control(value: str) -> bool:
    return any(ch in _BREAKS or (ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in value)


def check_address(to: str) -> str:
    """`to` as one plain address (`name@example.jp`), or ValueError saying what is wrong with it."""
    if _has_control(to):
        raise ValueError("recipient address must not contain CR, LF or other control characters (header injection)")
    addr = to.strip()
    if len(addr) > ADDR_MAX:
        raise ValueError(f"recipient address is longer than {ADDR_MAX} characters")
    if not _ADDR_RE.fullmatch(addr):
        raise ValueError(
            f"recipient {to!r} is not one plain address like 'name@example.jp'"
            " (no display name, no list, ASCII only: give an IDN domain in punycode)"
        )
    return addr


def check_subject(subject: str) -> str:
    if _has_control(subject):
        raise ValueError("subject must not contain CR, LF or other control characters (header injection)")
    if len(subject) > SUBJECT_MAX:
        raise ValueError(f"subject is longer than {SUBJECT_MAX} characters")
    return subject


async def queue_mail(
    session: AsyncSession, table: Table, *, key: str, to: str, subject: str, text: str, html: str | None = None
) -> bool:
    """Stage one message in the caller's transaction; True if it is new, False if `key` was queued before.

    `key` names the message for good (e.g. "password-reset:<token id>"): the same key is never queued twice,
    even after the first was sent, and a repeat is ignored whatever its content. Everything is checked before
    anything is written; a bad address or a subject with a line break raises ValueError. Committing, and then
    waking the sender, is the caller's business.
    """
    if not key or len(key) > KEY_MAX:
        raise ValueError(f"key must be 1 to {KEY_MAX} characters")
    addr = check_address(to)
    check_subject(subject)
    now = utcnow()
    stmt = (
        db.insert_on_conflict(session, table)
        .values(
            key=key, to_addr=addr, subject=subject, body_text=text, body_html=html,
            created_at=now, attempts=0, next_attempt_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.seq)
    )
    return (await session.execute(stmt)).first() is not None


async def mail_status(session: AsyncSession, table: Table) -> dict[str, int]:
    """How many messages are queued (not yet sent, not given up), sent, and failed: for health pages."""
    t = table
    row = (
        await session.execute(
            select(
                func.count(case((t.c.sent_at.is_(None) & t.c.failed_at.is_(None), 1))).label("queued"),
                func.count(t.c.sent_at).label("sent"),
                func.count(case((t.c.sent_at.is_(None) & t.c.failed_at.is_not(None), 1))).label("failed"),
            )
        )
    ).one()
    return {"queued": row.queued, "sent": row.sent, "failed": row.failed}


def message_id(key: str, sender_address: str) -> str:
    """The Message-ID of the message with this key: the same for every copy of it."""
    domain = sender_address.rpartition("@")[2] or "towntip.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def build_message(
    settings: SmtpSettings, *, key: str, to: str, subject: str, text: str, html: str | None,
    created_at: datetime,
) -> EmailMessage:
    """A complete message; 7-bit clean (non-ASCII bodies in base64), so any relay takes it."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = settings.sender
    msg["To"] = to
    msg["Subject"] = subject  # non-ASCII becomes RFC 2047 encoded words
    msg["Date"] = format_datetime(_aware(created_at))
    msg["Message-ID"] = message_id(key, settings.sender_address)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-responders should not answer
    msg.set_content(text, cte=None if text.isascii() else "base64")
    if html is not None:
        msg.add_alternative(html, subtype="html", cte=None if html.isascii() else "base64")
    return msg


class _Permanent(Exception):
    """The server refused this message for good (5xx on RCPT or DATA): retrying would not help."""


class _Smtp:
    """One blocking SMTP session (smtplib); every method runs in a worker thread."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.conn: smtplib.SMTP | None = None

    def open(self) -> None:
        s = self.settings
        if s.use_tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = smtplib.SMTP(s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout)
        try:
            conn.ehlo()
            if s.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if s.username is not None and s.password is not None:
                conn.login(s.username, s.password.get_secret_value())
        except BaseException:
            _close_quietly(conn)
            raise
        self.conn = conn

    def send(self, to: str, data: bytes) -> None:
        assert self.conn is not None
        try:
            self.conn.sendmail(self.settings.sender_address, [to], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            if 500 <= code < 600:
                raise _Permanent(f"recipient refused: {code} {_decode(text)}") from None
            raise
        except smtplib.SMTPDataError as exc:
            if 500 <= exc.smtp_code < 600:
                raise _Permanent(f"message refused: {exc.smtp_code} {_decode(exc.smtp_error)}") from None
            raise

    def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                _close_quietly(conn)


def _close_quietly(conn: smtplib.SMTP) -> None:
    try:
        conn.close()
    except OSError:
        pass


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Permanent):
        return str(exc)[:ERROR_MAX]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return f"recipient refused: {code} {_decode(text)}"[:ERROR_MAX]
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.__class__.__name__}: {exc.smtp_code} {_decode(exc.smtp_error)}"[:ERROR_MAX]
    return f"{exc.__class__.__name__}: {exc}"[:ERROR_MAX]


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; everything here is stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)


class MailSender:
    """Delivers due rows of a `mail_outbox` table over SMTP. Woken after each commit; polls as a fallback.

    A round claims up to `batch` due rows (attempts + 1, next_attempt_at pushed past the round, so a second
    sender, or a second call, leaves them alone), sends them over one SMTP connection, and marks each at once:
    sent; failed right away on a permanent refusal (5xx on RCPT or DATA); otherwise retried after
    `backoff[attempts - 1]` seconds (the last value repeats), or failed with the last error once `max_attempts`
    attempts have been made. No row is ever deleted or lost.

    At least once: a crash after the server accepted a message but before its row is marked sends it again
    when the claim runs out (each copy has the same Message-ID). That is the accepted trade-off; the other way
    round (mark first) could lose mail.
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        table: Table,
        settings: SmtpSettings,
        batch: int = 50,
        poll_interval: float = 1.0,
        max_attempts: int = 8,
        backoff: Sequence[float] = (5, 30, 120, 600, 1800, 3600),
        fault_hook: FaultHook | None = None,
    ) -> None:
        if batch < 1 or max_attempts < 1 or not backoff or min(backoff) < 0:
            raise ValueError("batch and max_attempts must be at least 1, backoff a non-empty list of delays >= 0")
        self.sessions = sessions
        self.table = table
        self.settings = settings
        self.batch = batch
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.backoff = tuple(float(b) for b in backoff)
        self.fault_hook = fault_hook  # tests use it to crash between sending and marking
        # A claimed row is left alone this long. A round stops sending at half of it and gives back what is left.
        self.claim_for = timedelta(seconds=max(300.0, 30 * settings.timeout))
        self._wake = asyncio.Event()
        self.sent = 0
        self.retried = 0
        self.failed = 0

    def wake(self) -> None:
        self._wake.set()

    async def _fault(self, point: str) -> None:
        if self.fault_hook is not None:
            result = self.fault_hook(point)
            if asyncio.iscoroutine(result):
                await result

    async def send_due(self) -> int:
        """One round: send up to `batch` due messages and mark each. Returns how many were sent."""
        return (await self._round())[1]

    async def _round(self) -> tuple[int, int]:
        """(rows claimed, messages sent)."""
        if not self.settings.enabled:
            return 0, 0
        rows = await self._claim()
        if not rows:
            return 0, 0
        await self._fault("claimed")
        started = time.monotonic()
        smtp = _Smtp(self.settings)
        sent = 0
        try:
            for i, row in enumerate(rows):
                if time.monotonic() - started > self.claim_for.total_seconds() / 2:
                    await self._release(rows[i:])
                    break
                try:
                    data = build_message(
                        self.settings, key=row.key, to=row.to_addr, subject=row.subject, text=row.body_text,
                        html=row.body_html, created_at=row.created_at,
                    ).as_bytes()
                except Exception as exc:  # noqa: BLE001 - a row no message can be made of: give up on it
                    await self._mark_failed(row, exc)
                    continue
                if smtp.conn is None:
                    try:
                        await asyncio.to_thread(smtp.open)
                    except (smtplib.SMTPException, OSError) as exc:
                        # The relay is unreachable (or refuses us): every row of the round waits for a retry.
                        for rest in rows[i:]:
                            await self._mark_retry(rest, exc)
                        break
                try:
                    await asyncio.to_thread(smtp.send, row.to_addr, data)
                except _Permanent as exc:
                    await self._mark_failed(row, exc)
                    continue
                except (smtplib.SMTPException, OSError) as exc:
                    if not isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError):
                        await asyncio.to_thread(smtp.close)  # the session is in doubt: start a fresh one
                    await self._mark_retry(row, exc)
                    continue
                await self._fault("sent")
                await self._mark_sent(row)
                sent += 1
        finally:
            if smtp.conn is not None:
                await asyncio.to_thread(smtp.close)
        return len(rows), sent

    async def _claim(self) -> list[Any]:
        t = self.table
        now = utcnow()
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        t.c.seq, t.c.key, t.c.to_addr, t.c.subject, t.c.body_text, t.c.body_html,
                        t.c.created_at, t.c.attempts,
                    )
                    .where(t.c.sent_at.is_(None), t.c.failed_at.is_(None), t.c.next_attempt_at <= now)
                    .order_by(t.c.next_attempt_at, t.c.seq)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's BEGIN IMMEDIATE serialises anyway
                )
            ).all()
            if rows:
                await session.execute(
                    update(t)
                    .where(db.among(session, t.c.seq, [r.seq for r in rows]))
                    .values(attempts=t.c.attempts + 1, next_attempt_at=now + self.claim_for)
                )
        return list(rows)

    async def _mark(self, seq: int, **values: Any) -> None:
        t = self.table
        async with self.sessions() as session, session.begin():
            await db.single_statements(session)  # one UPDATE: atomic by itself
            await session.execute(
                update(t).where(t.c.seq == seq, t.c.sent_at.is_(None), t.c.failed_at.is_(None)).values(**values)
            )

    async def _mark_sent(self, row: Any) -> None:
        await self._mark(row.seq, sent_at=utcnow())
        self.sent += 1

    async def _mark_failed(self, row: Any, exc: BaseException) -> None:
        error = _describe(exc)
        await self._mark(row.seq, failed_at=utcnow(), last_error=error)
        self.failed += 1
        log.warning("mail %s (seq %s): given up after %d attempt(s): %s", row.key, row.seq, row.attempts + 1, error)

    async def _mark_retry(self, row: Any, exc: BaseException) -> None:
        attempts = row.attempts + 1  # counted by the claim
        if attempts >= self.max_attempts:
            await self._mark_failed(row, exc)
            return
        error = _describe(exc)
        delay = self.backoff[min(attempts - 1, len(self.backoff) - 1)]
        await self._mark(row.seq, next_attempt_at=utcnow() + timedelta(seconds=delay), last_error=error)
        self.retried += 1
        log.info("mail %s (seq %s): attempt %d failed, retrying in %gs: %s", row.key, row.seq, attempts, delay, error)

    async def _release(self, rows: Sequence[Any]) -> None:
        """Give back claimed rows this round had no time for: due now, their attempt not counted."""
        t = self.table
        async with self.sessions() as session, session.begin():
            await db.single_statements(session)
            await session.execute(
                update(t)
                .where(db.among(session, t.c.seq, [r.seq for r in rows]), t.c.sent_at.is_(None))
                .values(attempts=t.c.attempts - 1, next_attempt_at=utcnow())
            )

    async def run(self, stop: asyncio.Event) -> None:
        if not self.settings.enabled:
            log.warning("mail sending is disabled (TOWNTIP_SMTP_ENABLED=false): messages stay queued")
            await stop.wait()
            return

        async def round_() -> bool:
            claimed, _sent = await self._round()
            return claimed >= self.batch  # more may be due

        await woken_rounds("mail sender", round_, wake=self._wake, stop=stop, poll_interval=self.poll_interval)


