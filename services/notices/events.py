"""Official messages made from other services' events: a booking confirmed, declined or cancelled by staff, a
lottery's result for each applicant and a freed slot offered to the next on a waitlist (the bookings service's
stream), a donation's receipt ready and a certificate issued (the points service's). Each a
durable consumer applied once through the kernel's inbox; the message's key is the fact's own (the booking and what
happened to it), so even an event announced twice delivers one message."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.messages import Message, deliver
from services.notices.models import people
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_life as bl
from towntip.kernel.contracts import bookings_lottery as blo
from towntip.kernel.contracts import bookings_waitlist as bw
from towntip.kernel.contracts import courses as cc
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import notices as c

SENDERS = {"bookings": "施設予約 Facility bookings", "points": "まちづくりポイント Town points"}


def consumer_spec(node: str, service: str, source: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.evt_stream(node, source), durable=f"notices-{source}",
                        filter_subject=subjects.evt_all(node, source), service=service, node=node)


def _when(start: datetime, end: datetime) -> str:
    s, e = start.astimezone(JST), end.astimezone(JST)
    return f"{s:%Y-%m-%d %H:%M}–{e:%H:%M}"


def _link(title: str, url: str) -> tuple[c.Link, ...]:
    return (c.Link(title=title, url=url),)


def _confirmed(e: bc.BookingConfirmed) -> Message | None:
    if e.booker is None:
        return None
    return Message("bookings", f"confirmed:{e.booking_id}", e.booker, "施設予約が確定しました",
                   f"{e.facility_id} {_when(e.start, e.end)} の予約が確定しました。\n"
                   f"Your booking of {e.facility_id} on {_when(e.start, e.end)} is confirmed.",
                   SENDERS["bookings"], _link("予約の詳細 Booking", f"/bookings/{e.booking_id}"), e.booking_id)


def _rejected(e: bl.BookingRejected) -> Message | None:
    if e.booker is None:
        return None
    return Message("bookings", f"rejected:{e.booking_id}", e.booker, "施設予約の申込みが承認されませんでした",
                   f"{e.facility_id} {_when(e.start, e.end)} の申込みは承認されませんでした。理由: {e.reason}\n"
                   f"Your request for {e.facility_id} on {_when(e.start, e.end)} was declined: {e.reason}",
                   SENDERS["bookings"], _link("予約の詳細 Booking", f"/bookings/{e.booking_id}"), e.booking_id)


def _cancelled(e: bc.BookingCancelled) -> Message | None:
    if e.booker is None or e.by == "booker":  # the booker knows what they did themself
        return None
    return Message("bookings", f"cancelled:{e.booking_id}", e.booker, "施設予約が取り消されました",
                   f"{e.facility_id} {_when(e.start, e.end)} の予約が取り消されました。\n"
                   f"Your booking of {e.facility_id} on {_when(e.start, e.end)} was cancelled.",
                   SENDERS["bookings"], _link("予約の詳細 Booking", f"/bookings/{e.booking_id}"), e.booking_id)


def _lottery_result(e: blo.LotteryResult) -> Message | None:
    # Every applicant is told, the losers too: they learn the month is now first come, first served.
    links = (c.Link(title="マイ抽選 My lottery entries", url="/lottery/mine/entries"),
             c.Link(title="抽選の検証 Check the draw", url=f"/lottery/{e.round_id}/verify"))
    if e.won and e.start is not None and e.end is not None and e.booking_id is not None:
        return Message("bookings", f"lottery:{e.entry_id}", e.applicant, "抽選の結果: 当選しました",
                       f"{e.facility_id} の抽選に当選しました。{_when(e.start, e.end)} の予約が確定しました。\n"
                       f"You won the lottery for {e.facility_id}: your booking on {_when(e.start, e.end)} is "
                       "confirmed.", SENDERS["bookings"],
                       (c.Link(title="予約の詳細 Booking", url=f"/bookings/{e.booking_id}"), *links), e.entry_id)
    return Message("bookings", f"lottery:{e.entry_id}", e.applicant, "抽選の結果: 落選しました",
                   f"{e.facility_id} の抽選は落選となりました。残った枠は先着順で予約できます。\n"
                   f"Your lottery entry for {e.facility_id} was not drawn. The slots left can now be booked first "
                   "come, first served.", SENDERS["bookings"],
                   (c.Link(title="空き状況 Availability", url=f"/facilities/{e.facility_id}"), *links), e.entry_id)


def _offered(e: bw.SlotOffered) -> Message | None:
    # The offer lapses at its deadline: without this message most people would learn of it too late.
    deadline = f"{e.expires_at.astimezone(JST):%Y-%m-%d %H:%M}"
    return Message("bookings", f"offered:{e.booking_id}", e.person, "キャンセル待ちの枠が空きました",
                   f"{e.facility_id} {_when(e.start, e.end)} が空きました。{deadline} までに承諾してください。"
                   "期限を過ぎると次の方に回ります。\n"
                   f"{e.facility_id} on {_when(e.start, e.end)} is free for you: accept it by {deadline} (JST), "
                   "or it goes to the next in line.", SENDERS["bookings"],
                   _link("キャンセル待ち Waitlist", "/bookings/waitlist"), e.booking_id)


BOOKINGS: dict[str, tuple[Any, Callable[[Any], Message | None]]] = {
    bc.BookingConfirmed.type_name(): (bc.BookingConfirmed, _confirmed),
    bl.BookingRejected.type_name(): (bl.BookingRejected, _rejected),
    bc.BookingCancelled.type_name(): (bc.BookingCancelled, _cancelled),
    blo.LotteryResult.type_name(): (blo.LotteryResult, _lottery_result),
    bw.SlotOffered.type_name(): (bw.SlotOffered, _offered),
}


def _receipt(e: dc.DonationConfirmed) -> Message | None:
    if not e.receipt_no:
        return None
    return Message("points", f"receipt:{e.reference}", f"user:{e.person}", "寄附の受領証明書をダウンロードできます",
                   f"寄附（{e.amount_yen:,}円）の受領証明書（No. {e.receipt_no}）が発行されました。\n"
                   f"The receipt (No. {e.receipt_no}) of your donation of {e.amount_yen:,} yen is ready.",
                   SENDERS["points"], _link("受領証明書 Receipt", f"/donations/receipts/{e.reference}.pdf"),
                   e.reference)


def _certificate(e: cc.CertificationGranted) -> Message | None:
    return Message("points", f"certificate:{e.certificate_id}", f"user:{e.person.removeprefix('person:')}",
                   "認定証が発行されました",
                   f"「{e.certification}」の認定証が発行されました。\nYour certificate ({e.certification}) was issued.",
                   SENDERS["points"], _link("認定証 Certificate", f"/certificates/{e.certificate_id}"),
                   e.certificate_id)


POINTS: dict[str, tuple[Any, Callable[[Any], Message | None]]] = {
    dc.DonationConfirmed.type_name(): (dc.DonationConfirmed, _receipt),
    cc.CertificationGranted.type_name(): (cc.CertificationGranted, _certificate),
}
SOURCES = {"bookings": BOOKINGS, "points": POINTS}
Fact = tuple[Message | None, datetime]


class MessagesHandler:
    """Decodes one service's events into messages (or nothing); delivers them. The points service names people by
    their user id (`user:<id>` here until applied): the people directory gives their handle; one it does not know
    (not registered through this node's identity service) gets nothing."""

    def __init__(self, node: str, source: str) -> None:
        self.node, self.source, self.table = node, source, SOURCES[source]

    def decode(self, msg: Msg) -> tuple[str, Fact]:
        key, type_, data, at = own_event(msg, self.node, self.source)
        if type_ not in self.table:
            return f"{self.source}:{key}", (None, at)
        model, make = self.table[type_]
        try:
            return f"{self.source}:{key}", (make(model.parse(data)), at)
        except ValidationError:
            raise Rejected(f"{type_} that does not fit its contract") from None

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[Fact]]) -> list[Outcome]:
        for d in deliveries:
            message, at = d.item
            if d.duplicate or message is None:
                continue
            if message.person.startswith("user:"):
                handle = await session.scalar(select(people.c.global_handle).where(
                    people.c.user_id == message.person.removeprefix("user:")))
                if handle is None:
                    continue
                message = replace(message, person=handle)
            await deliver(session, message, node=self.node, now=at)
        return [None] * len(deliveries)
