"""What the bookings tests share: a fixed clock, sample facilities, the people, and a node running the service
in this process over a real nats-server (the calls go through NATS as the gateway's would)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.bookings.app import BookingsService
from services.bookings.models import bookings, bus, facilities
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts.actor import Actor

NODE = "testnode"
# Tuesday 27 October 2026, 10:00 in Japan: the week after holds 文化の日 (Tuesday 3 November).
NOW = datetime(2026, 10, 27, 1, 0, tzinfo=UTC)
HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")
TARO = Actor(user_id="user-taro-0001", global_handle=f"taro@{NODE}", display_name="鈴木 太郎")
CLERK = Actor(user_id="user-clerk-001", global_handle=f"clerk@{NODE}", display_name="窓口 職員", roles=("staff",))

WEEK = {d: {"open": "09:00", "close": "22:00"} for d in c.WEEKDAYS}
HALL: dict[str, Any] = {  # a 公民館 room in blocks (sample values)
    "id": "ohashi-hall", "name_ja": "大橋公民館 ホール", "name_en": "Ohashi Community Hall", "kind": "hall",
    "address": "鶴ヶ島市", "capacity": 80, "accessibility": "車いす対応", "hours": WEEK, "closed_weekdays": ["mon"],
    "closed_dates": ["2026-11-20"], "closed_yearly": ["12-29", "12-30", "12-31", "01-01", "01-02", "01-03"],
    "layout": {"kind": "blocks", "blocks": [
        {"name_ja": "午前", "name_en": "morning", "start": "09:00", "end": "12:00",
         "fees": {"city_group": 600, "outside": 1200, "commercial": 2400}},
        {"name_ja": "午後", "name_en": "afternoon", "start": "13:00", "end": "17:00",
         "fees": {"city_group": 800, "outside": 1600, "commercial": 3200}},
        {"name_ja": "夜間", "name_en": "evening", "start": "18:00", "end": "21:30",
         "fees": {"city_group": 700, "outside": 1400, "commercial": 2800}}]},
    "rules": {"max_days_ahead": 60, "min_notice_minutes": 60, "max_per_month": 3},
}
ROOM: dict[str, Any] = {  # a meeting room on a 30-minute grid with a 15-minute buffer (sample values)
    "id": "city-hall-6f", "name_ja": "市庁舎6F会議室", "name_en": "City Hall 6F meeting room",
    "hours": {d: {"open": "09:00", "close": "17:00"} for d in c.WEEKDAYS[:5]}, "closed_on_holidays": True,
    "layout": {"kind": "grid", "step_minutes": 30, "fees_per_step": {"city_group": 100}}, "buffer_minutes": 15,
    "rules": {"max_minutes": 180},
}


def a(who: Actor) -> dict[str, Any]:
    return who.model_dump(mode="json")


def jst(day: str, hm: str) -> str:
    return f"{day}T{hm}:00+09:00"


class Node:
    def __init__(self, nc: nats.NATS, svc: BookingsService) -> None:
        self.nc, self.svc = nc, svc

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=30)

    async def refused(self, refusal: errors.Refusal, endpoint: str, payload: Any, match: str | None = None) -> str:
        """The call is refused with this refusal (its code and status), and nothing changed."""
        before = await self.snapshot()
        with pytest.raises(errors.ServiceError, match=match) as info:
            await self.call(endpoint, payload)
        assert (info.value.error_code, info.value.code) == (refusal.code, refusal.status), info.value.reason
        assert await self.snapshot() == before, f"{endpoint} was refused but changed something"
        return info.value.reason

    async def snapshot(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self.svc.sessions() as s:
            for table in (facilities, bookings):
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
            out["outbox"] = sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))
        return out

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.svc.sessions() as s:
            rows = (await s.execute(select(bus.outbox.c.subject, bus.outbox.c.payload)
                                    .order_by(bus.outbox.c.seq))).all()
        return [(r.subject, json.loads(r.payload)) for r in rows]

    async def put(self, facility: dict[str, Any], who: Actor | None = CLERK) -> dict[str, Any]:
        return await self.call(c.EP_FACILITY_PUT, {**facility, **({"actor": a(who)} if who else {})})

    def booking(self, who: Actor, facility: str, day: str, start: str, end: str, **more: Any) -> dict[str, Any]:
        return {"actor": a(who), "facility_id": facility, "start": jst(day, start), "end": jst(day, end),
                "purpose": "自治会の会合", **more}

    async def book(self, who: Actor, facility: str, day: str, start: str, end: str, **more: Any) -> dict[str, Any]:
        return await self.call(c.EP_BOOKING_CREATE, self.booking(who, facility, day, start, end, **more))

    async def day(self, facility: str, day: str) -> dict[str, Any]:
        return await self.call(c.EP_AVAILABILITY, {"facility_id": facility, "date": day})
