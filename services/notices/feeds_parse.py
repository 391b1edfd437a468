"""What a fetched feed says, whatever its format: RSS and Atom (feedparser), iCalendar (icalendar) or a JSON list
(JSON Feed 1.1, or a bare list of objects), as items with a stable key, plain text and aware times.

The key is what makes an item "the same" however often it is seen: the site's own id (guid, Atom id, iCalendar
UID with its RECURRENCE-ID), else its link, else a hash of its title and date.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
import xml.sax
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import feedparser
import icalendar
import lxml.html

from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices_feeds as f

MAX_ITEMS = 500  # of one fetch; a site that lists more gets its newest 500 read
TITLE_MAX, SUMMARY_MAX, LINK_MAX, LOCATION_MAX = 200, 2000, 2000, 200


@dataclass(frozen=True)
class Parsed:
    key: str
    title: str
    link: str | None = None
    summary: str = ""
    published_at: datetime | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    all_day: bool = False
    location: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def key_hash(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()


def plain(html: str | None, limit: int) -> str:
    """Text of an HTML fragment (feeds put markup in summaries; the node shows text only)."""
    if not html or not html.strip():
        return ""
    try:
        text = lxml.html.fromstring(html).text_content()
    except (ValueError, lxml.etree.ParserError):
        text = html
    return " ".join(text.split())[:limit]


def _link(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value[:LINK_MAX]
    return None  # a javascript: or data: link from another site is never shown


def _fallback_key(title: str, when: datetime | None, link: str | None) -> str:
    return link or f"{title}|{when.isoformat() if when else ''}"


def parse(body: bytes, content_type: str) -> list[Parsed]:
    """The items of `body`; FEED_MALFORMED when it is none of the formats."""
    head = body.lstrip()[:64]
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if content_type == "text/calendar" or head.upper().startswith(b"BEGIN:VCALENDAR"):
        return _ical(body)[:MAX_ITEMS]
    if "json" in content_type or head[:1] in (b"[", b"{"):
        return _json(body)[:MAX_ITEMS]
    return _feed(body)[:MAX_ITEMS]


# ---- RSS and Atom ----------------------------------------------------------------------------------------------


def _struct(value: time.struct_time | None) -> datetime | None:
    return datetime.fromtimestamp(calendar.timegm(value), UTC) if value else None


def _feed(body: bytes) -> list[Parsed]:
    d = feedparser.parse(body, sanitize_html=True, resolve_relative_uris=False)
    if not d.get("version") and (d.get("bozo") or not d.entries):
        raise f.FEED_MALFORMED("the answer is not an RSS, Atom, iCalendar or JSON feed")
    # RSS and Atom are XML: a document that is not well-formed is refused rather than guessed at (feedparser's
    # loose mode would keep half-read items with their titles lost). A wrong declared encoding is tolerated.
    if isinstance(d.get("bozo_exception"), xml.sax.SAXParseException):
        raise f.FEED_MALFORMED(f"the feed is not well-formed XML ({d.bozo_exception.getMessage()})"[:300])
    out = []
    for e in d.entries:
        title = plain(e.get("title"), TITLE_MAX) or "(無題)"
        link = _link(e.get("link"))
        published = _struct(e.get("published_parsed") or e.get("updated_parsed"))
        key = e.get("id") or _fallback_key(title, published, link)
        tags = tuple(t.get("term", "") for t in e.get("tags", []) if t.get("term"))
        out.append(
            Parsed(
                key=f"feed:{key}",
                title=title,
                link=link,
                summary=plain(e.get("summary"), SUMMARY_MAX),
                published_at=published,
                tags=tags,
            )
        )
    return out


# ---- iCalendar -------------------------------------------------------------------------------------------------


def _when(value: Any) -> tuple[datetime | None, bool]:
    """An iCalendar DTSTART/DTEND as an aware time; a date (an all-day event) is midnight in Tokyo."""
    if value is None:
        return None, False
    v = value.dt
    if isinstance(v, datetime):
        return (v if v.tzinfo else v.replace(tzinfo=JST)).astimezone(UTC), False  # floating: the town's time
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=JST).astimezone(UTC), True
    return None, False


def _ical(body: bytes) -> list[Parsed]:
    try:
        cal = icalendar.Calendar.from_ical(body)
    except (ValueError, IndexError, KeyError) as exc:
        raise f.FEED_MALFORMED(f"the iCalendar could not be read ({exc})"[:300]) from None
    out = []
    for ev in cal.walk("VEVENT"):
        starts, all_day = _when(ev.get("dtstart"))
        if starts is None:
            continue
        ends, _ = _when(ev.get("dtend"))
        if ends is None and ev.get("duration") is not None:
            ends = starts + ev.get("duration").dt
        if ends is None and all_day:
            ends = starts + timedelta(days=1)
        title = plain(str(ev.get("summary", "")), TITLE_MAX) or "(無題)"
        rid = ev.get("recurrence-id")
        uid = str(ev.get("uid") or _fallback_key(title, starts, None))
        key = f"ical:{uid}" + (f"|{rid.dt.isoformat()}" if rid is not None else "")
        cats = ev.get("categories")
        tags = (
            tuple(str(c) for cl in (cats if isinstance(cats, list) else [cats]) if cl is not None for c in cl.cats)
            if cats is not None
            else ()
        )
        out.append(
            Parsed(
                key=key,
                title=title,
                link=_link(str(ev.get("url", "")) or None),
                summary=plain(str(ev.get("description", "")), SUMMARY_MAX),
                starts_at=starts,
                ends_at=ends,
                all_day=all_day,
                location=(str(ev.get("location"))[:LOCATION_MAX] or None) if ev.get("location") else None,
                tags=tags,
            )
        )
    return out


# ---- JSON ------------------------------------------------------------------------------------------------------


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=JST)).astimezone(UTC)


def _json_items(doc: Any) -> Iterable[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        return doc["items"]
    raise f.FEED_MALFORMED("the JSON is neither a list of items nor a JSON Feed")


def _json(body: bytes) -> list[Parsed]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise f.FEED_MALFORMED("the answer is not valid JSON") from None
    out = []
    for it in _json_items(doc):
        if not isinstance(it, dict):
            continue
        title = plain(str(it.get("title") or ""), TITLE_MAX)
        if not title:
            continue
        link = _link(it.get("url") or it.get("link"))
        published = _iso(it.get("date_published") or it.get("published"))
        starts = _iso(it.get("start") or it.get("starts_at"))
        key = str(it.get("id") or _fallback_key(title, published or starts, link))
        tags = it.get("tags") or it.get("categories") or []
        summary = it.get("content_text") or it.get("summary") or it.get("content_html") or ""
        out.append(
            Parsed(
                key=f"json:{key}",
                title=title,
                link=link,
                summary=plain(str(summary), SUMMARY_MAX),
                published_at=published,
                starts_at=starts,
                ends_at=_iso(it.get("end") or it.get("ends_at")) if starts else None,
                location=str(it["location"])[:LOCATION_MAX] if it.get("location") else None,
                tags=tuple(str(t) for t in tags if isinstance(t, str)),
            )
        )
    return out


def categorise(item: Parsed, rules: Iterable[tuple[str, str]], default: str) -> str:
    """The category of the first rule (keyword, category) whose keyword is in the item's title, summary or the
    site's own categories (case-folded); else `default`."""
    text = " ".join((item.title, item.summary, *item.tags)).casefold()
    for keyword, category in rules:
        if keyword.casefold() in text:
            return category
    return default
