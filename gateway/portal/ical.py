"""iCalendar (RFC 5545) feeds of bookings, written with the `icalendar` library: a facility's busy times (no personal
data: no names, purposes or booking ids) and a person's own bookings."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from towntip.kernel.contracts import bookings_portal as p
from towntip.kernel.contracts.bookings import TIMEZONE

PRODID = "-//TownTip Commons//Bookings//JA"
# Times go out with TZID=Asia/Tokyo and its VTIMEZONE: a fixed +09:00 offset would be written as a floating time.
TOKYO = ZoneInfo(TIMEZONE)
STATE_JA = {"requested": "承認待ち", "offered": "繰り上げの案内中", "confirmed": "確定", "checked_in": "利用中"}


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Asia/Tokyo")
    return cal


def facility_calendar(busy: p.Busy, *, node: str, now: datetime) -> bytes:
    cal = _calendar(f"{busy.name_ja}（予約状況）")
    for b in busy.times:
        ev = Event()
        ev.add("uid", f"{busy.facility_id}-{b.start.astimezone(UTC):%Y%m%dT%H%M%SZ}@{node}")
        ev.add("dtstamp", now.astimezone(UTC))
        ev.add("dtstart", b.start.astimezone(TOKYO))
        ev.add("dtend", b.end.astimezone(TOKYO))
        ev.add("summary", "予約済み (booked)")
        ev.add("transp", "OPAQUE")
        ev.add("class", "PUBLIC")
        if busy.address:
            ev.add("location", f"{busy.name_ja} {busy.address}")
        cal.add_component(ev)
    cal.add_missing_timezones()
    return cal.to_ical()


def person_calendar(feed: p.PersonFeed, *, node: str, base: str, now: datetime) -> bytes:
    cal = _calendar("施設予約 (my bookings)")
    for b in feed.bookings:
        name = feed.facility_names.get(b.facility_id, b.facility_id)
        ev = Event()
        ev.add("uid", f"{hashlib.sha256(b.id.encode()).hexdigest()[:32]}@{node}")
        ev.add("dtstamp", now.astimezone(UTC))
        ev.add("dtstart", b.start.astimezone(TOKYO))
        ev.add("dtend", b.end.astimezone(TOKYO))
        ev.add("summary", f"{name}：{b.purpose}")
        ev.add("location", name)
        ev.add("description", f"{STATE_JA.get(b.state, b.state)} / {b.state}")
        ev.add("status", "TENTATIVE" if b.state in ("requested", "offered") else "CONFIRMED")
        ev.add("class", "PRIVATE")
        ev.add("url", f"{base}/bookings/{b.id}")
        cal.add_component(ev)
    cal.add_missing_timezones()
    return cal.to_ical()
