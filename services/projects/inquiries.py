"""The contact form (相談・お問い合わせ): stored, routed to the secretariat, answered by an auto-reply e-mail.

The auto-reply is queued in the kernel's mail outbox in the same transaction as the inquiry, so an inquiry that
was acknowledged on screen always gets its mail (retried while the relay is down, never dropped). The mail says
only fixed text and the reference: nothing the sender typed goes back out, so the form cannot be used to send
someone else a message of one's choosing. An address that had AUTO_REPLIES_PER_HOUR auto-replies in the last hour
gets no more for now (its inquiries are still kept and reach the secretariat). No NATS, no commits here.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.common import audit, aware, new_uuid
from services.projects.models import bus, inquiries, mail
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import projects as c
from towntip.kernel.mail import queue_mail

AUTO_REPLIES_PER_HOUR = 3
_REF_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out on the phone


def _reference() -> str:
    return "Q-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))


def auto_reply(ref: str, lang: str, public_url: str) -> tuple[str, str]:
    """(subject, text) of the acknowledgement. Fixed words and the reference only (see the module's note)."""
    ja = (
        "このメールは送信専用のアドレスから自動でお送りしています。\n\n"
        "相談・お問い合わせを受け付けました。\n"
        f"受付番号: {ref}\n\n"
        "事務局（地域共創公民連携プラットフォーム）の担当者より、内容を確認のうえご連絡いたします。\n"
        "構想段階や情報整理の初期段階のご相談も承っております。\n\n"
        "お心当たりのない場合は、このメールを破棄してください。\n"
    )
    en = (
        "This message was sent automatically from an address that does not receive replies.\n\n"
        "We have received your inquiry.\n"
        f"Reference: {ref}\n\n"
        "The co-creation secretariat will read it and get back to you.\n"
        "If you did not send an inquiry, please ignore this message.\n"
    )
    footer = f"\n-- \nTownTip Commons {public_url}\n"
    if lang == "en":
        return f"[TownTip] Your inquiry was received ({ref})", en + "\n" + ja + footer
    return f"【TownTip】お問い合わせを受け付けました（受付番号 {ref}）", ja + "\n" + en + footer


async def create(*, session: AsyncSession, data: c.InquiryCreate, node: str, public_url: str,
                 now: datetime | None = None) -> c.InquiryReceipt:
    now = now or utcnow()
    inquiry_id, ref = new_uuid(), _reference()
    recent = (await session.execute(
        select(func.count()).select_from(inquiries).where(
            inquiries.c.email == data.email, inquiries.c.mail_key.is_not(None),
            inquiries.c.received_at > now - timedelta(hours=1)))).scalar_one()
    mail_key = f"inquiry-ack:{inquiry_id}" if recent < AUTO_REPLIES_PER_HOUR else None
    await session.execute(insert(inquiries).values(
        id=inquiry_id, reference=ref, kind=data.kind, name=data.name, organisation=data.organisation,
        email=data.email, phone=data.phone, topic=data.topic, message=data.message, lang=data.lang, status="open",
        received_at=now, mail_key=mail_key))
    if mail_key is not None:
        subject, text = auto_reply(ref, data.lang, public_url)
        await queue_mail(session, mail, key=mail_key, to=data.email, subject=subject, text=text)
    # The history names no one: who wrote, and what, stays in the inquiry itself.
    await audit(session, kind="inquiry", subject_id=inquiry_id, action="received", actor=None, at=now,
                after={"reference": ref, "kind": data.kind, "status": "open", "auto_reply": mail_key is not None})
    await announce(session, bus, node=node, at=now, event=c.InquiryReceived(id=inquiry_id, kind=data.kind,
                                                                        received_at=now))
    return c.InquiryReceipt(id=inquiry_id, reference=ref, received_at=now, auto_reply=mail_key is not None)


def _mail_state(row: Any) -> str:
    if row.mail_key is None:
        return "skipped"
    if row.sent_at is not None:
        return "sent"
    if row.failed_at is not None:
        return "failed"
    return "retrying" if (row.attempts or 0) > 0 else "queued"


def _query():
    return select(inquiries, mail.c.sent_at, mail.c.failed_at, mail.c.attempts).outerjoin(
        mail, mail.c.key == inquiries.c.mail_key)


def _out(row: Any) -> c.Inquiry:
    return c.Inquiry(id=row.id, reference=row.reference, kind=row.kind, name=row.name, organisation=row.organisation,
                     email=row.email, phone=row.phone, topic=row.topic, message=row.message, status=row.status,
                     received_at=aware(row.received_at), answered_at=aware(row.answered_at),
                     answered_by=row.answered_by, auto_reply=_mail_state(row))


def _secretariat(actor: Any) -> None:
    if not actor.has("secretariat"):
        raise c.SECRETARIAT_ONLY("inquiries are for the secretariat (事務局)")


async def list_(*, session: AsyncSession, q: c.InquiryListQuery) -> list[c.Inquiry]:
    _secretariat(q.actor)
    stmt = _query().order_by(inquiries.c.received_at.desc())
    if q.status is not None:
        stmt = stmt.where(inquiries.c.status == q.status)
    return [_out(r) for r in await session.execute(stmt)]


async def set_status(*, session: AsyncSession, data: c.InquiryStatusSet, now: datetime | None = None) -> c.Inquiry:
    _secretariat(data.actor)
    row = (await session.execute(_query().where(inquiries.c.id == data.inquiry_id))).first()
    if row is None:
        raise c.INQUIRY_NOT_FOUND(f"no inquiry {data.inquiry_id}")
    if row.status == data.status:
        return _out(row)
    now = now or utcnow()
    answered = data.status == "answered"
    await session.execute(update(inquiries).where(inquiries.c.id == row.id).values(
        status=data.status, answered_at=now if answered else None,
        answered_by=data.actor.global_handle if answered else None))
    await audit(session, kind="inquiry", subject_id=row.id, action="status_set", actor=data.actor, at=now,
                before={"status": row.status}, after={"status": data.status}, note=data.note)
    return _out((await session.execute(_query().where(inquiries.c.id == row.id))).one())


async def list_page(*, session: AsyncSession, q: c.InquiryListQuery) -> c.InquiryList:
    """The endpoint's answer: the list in its reply model."""
    return c.InquiryList(inquiries=await list_(session=session, q=q))
