"""A small site that serves feeds to the notices service in tests: RSS with an ETag (answering 304 when it did not
change), iCalendar, a JSON Feed, and the broken kinds (huge, slow, malformed, redirecting elsewhere)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>鶴ヶ島市 新着情報</title><link>https://www.city.example/</link>
<description>city news</description>
<item><title>ごみ収集日の変更</title><link>https://www.city.example/news/1</link><guid>news-1</guid>
<description>&lt;p&gt;年末年始の&lt;b&gt;ごみ収集&lt;/b&gt;は変わります。&lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</description>
<pubDate>Mon, 07 Dec 2026 01:00:00 GMT</pubDate><category>生活</category></item>
<item><title>子育て支援センターのお知らせ</title><link>https://www.city.example/news/2</link><guid>news-2</guid>
<description>親子で遊べるひろばを開きます。</description><pubDate>Sun, 06 Dec 2026 01:00:00 GMT</pubDate></item>
</channel></rss>"""


def ics(day: date) -> str:
    """The welfare council's calendar: a salon 10:00-12:00 in Tokyo on `day`, a bazaar all day six days later."""
    later = day + timedelta(days=6)
    return f"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Social Welfare Council//JA\r
BEGIN:VEVENT\r
UID:salon@shakyo.example\r
DTSTAMP:20261201T000000Z\r
DTSTART;TZID=Asia/Tokyo:{day:%Y%m%d}T100000\r
DTEND;TZID=Asia/Tokyo:{day:%Y%m%d}T120000\r
SUMMARY:ふれあいサロン\r
LOCATION:富士見公民館\r
DESCRIPTION:どなたでも参加できます。\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:bazaar@shakyo.example\r
DTSTAMP:20261201T000000Z\r
DTSTART;VALUE=DATE:{later:%Y%m%d}\r
SUMMARY:福祉バザー\r
END:VEVENT\r
END:VCALENDAR\r
"""


JSON_FEED = """{"version": "https://jsonfeed.org/version/1.1", "title": "びびっと",
 "items": [{"id": "sale-1", "title": "年末セール", "url": "https://bibitto.example/sale",
            "content_text": "商店街の年末セールです。", "date_published": "2026-12-05T09:00:00+09:00",
            "tags": ["商店"]}]}"""


@dataclass
class FeedSite:
    """What the site serves and what it saw: `rss` may be changed between polls; `hits` counts requests per path."""

    rss: str = RSS
    day: date = field(default_factory=lambda: date.today() + timedelta(days=13))  # the salon's day
    etag: str = '"v1"'
    hits: dict[str, int] = field(default_factory=dict)
    conditional: list[str] = field(default_factory=list)  # the If-None-Match headers /rss received
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets /slow finish when the test ends
    redirect_to: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(p, getattr(self, n))
                for p, n in (
                    ("/rss", "_rss"),
                    ("/ics", "_ics"),
                    ("/json", "_json"),
                    ("/huge", "_huge"),
                    ("/slow", "_slow"),
                    ("/malformed", "_malformed"),
                    ("/redirect", "_redirect"),
                    ("/gone", "_gone"),
                )
            ]
        )

    def _hit(self, request: Request) -> None:
        self.hits[request.url.path] = self.hits.get(request.url.path, 0) + 1

    async def _rss(self, request: Request) -> Response:
        self._hit(request)
        self.conditional.append(request.headers.get("if-none-match", ""))
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers={"ETag": self.etag})
        return Response(self.rss, media_type="application/rss+xml", headers={"ETag": self.etag})

    async def _ics(self, request: Request) -> Response:
        self._hit(request)
        return Response(ics(self.day), media_type="text/calendar")

    async def _json(self, request: Request) -> Response:
        self._hit(request)
        return Response(JSON_FEED, media_type="application/feed+json")

    async def _huge(self, request: Request) -> Response:
        self._hit(request)
        item = ("<item><title>x</title><description>" + "あ" * 1000 + "</description></item>").encode()

        async def body() -> AsyncIterator[bytes]:  # streamed with no Content-Length: the cap must count bytes
            yield b"<rss version='2.0'><channel>"
            for _ in range(400):
                yield item
            yield b"</channel></rss>"

        return StreamingResponse(body(), media_type="application/rss+xml")

    async def _slow(self, request: Request) -> Response:
        self._hit(request)
        await self.release.wait()
        return Response(RSS, media_type="application/rss+xml")

    async def _malformed(self, request: Request) -> Response:
        self._hit(request)
        return Response("<rss version='2.0'><channel><item><title>壊れた", media_type="application/rss+xml")

    async def _redirect(self, request: Request) -> Response:
        self._hit(request)
        return RedirectResponse(self.redirect_to, status_code=302)

    async def _gone(self, request: Request) -> Response:
        self._hit(request)
        return Response("not here", status_code=404)
