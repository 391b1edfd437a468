"""The kiosk's local web app: the page the screen's browser shows, its state as server-sent events, the cached
content and the Japanese webfont, served on 127.0.0.1 by the player itself.

The page learns what to show from `/events` (SSE: the whole state at once on connect, then each change: a new slot,
an emergency, its clearing), so an emergency reaches the glass as soon as the player hears it. `/now` answers the
same state once (for a look by hand, and for tests). The page confirms each slot it has put on screen
(`POST /shown`): only a confirmed slot becomes a play, so proof of play means shown, not merely scheduled.

Who may talk to it: it listens on loopback only. Any page the kiosk browser opened could still send it requests, so
`/shown` takes only `application/json` (a cross-site form cannot send that without a CORS preflight, which this app
never grants) and a slot id the player issued; it changes nothing else. Content is served only for sha256s the
current manifest names, and slides of HTML are sandboxed (no scripts; same origin, so the font is cached once)
under a strict Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

if TYPE_CHECKING:
    from edge.signage.player import Player

STATIC = Path(__file__).with_name("static")
# The kernel ships BIZ UDPGothic (SIL OFL 1.1) for its PDFs; the page uses the same file as its webfont, so Japanese
# text looks the same on every screen whatever fonts its OS has.
FONT_FILE = Path(str(resources.files("towntip.kernel") / "fonts" / "BIZUDPGothic-Regular.ttf"))
KEEPALIVE_S = 15.0  # an SSE comment this often, so a dead connection is noticed by both ends
# A node-made slide may style itself, never run a script. It keeps the page's origin (allow-same-origin, which is
# safe without allow-scripts): an opaque origin would fetch the 4.6 MB font again for every slide shown.
SLIDE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; font-src 'self'; sandbox allow-same-origin"
)
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; font-src 'self'; "
    "frame-src 'self'; connect-src 'self'; script-src 'self'"
)

# The webfont takes the name "BIZ UDPGothic" itself: a slide that names that font gets the served file even on an
# OS without it installed.
_SLIDE_FONT = (
    '<style>@font-face{font-family:"BIZ UDPGothic";src:url("/font/biz-udpgothic.ttf")}'
    'html{font-family:"BIZ UDPGothic","Noto Sans CJK JP",sans-serif}</style>'
)

_HEAD = re.compile(r"<head[\s>]")  # not <header>

_PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TownTip サイネージ signage</title>
<link rel="preload" href="/font/biz-udpgothic.ttf" as="font" type="font/ttf" crossorigin>
<link rel="stylesheet" href="/static/kiosk.css">
<script src="/static/kiosk.js" defer></script>
</head>
<body>
<main id="stage" aria-live="polite">
  <div id="idle" class="idle"><p>準備中</p><p lang="en">Getting ready</p></div>
</main>
<section id="emergency" role="alert" hidden>
  <p class="badge">緊急情報 <span lang="en">Emergency</span></p>
  <h1 id="emergency-title"></h1>
  <p id="emergency-body"></p>
</section>
<footer id="status"><span id="place"></span><span id="clock"></span><span id="link"></span></footer>
</body>
</html>
"""


def create_app(player: Player) -> Starlette:
    async def page(_: Request) -> Response:
        return HTMLResponse(_PAGE, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    async def now(_: Request) -> Response:
        return JSONResponse(player.state(), headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _stream(player, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def shown(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"code": "signage.bad_request", "reason": "JSON only"}, status_code=415)
        try:
            body = json.loads(await request.body())
            slot = int(body["slot"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"code": "signage.bad_request", "reason": "give {slot: <id>}"}, status_code=400)
        if not player.confirm(slot):
            return JSONResponse({"code": "signage.slot_unknown", "reason": "not the slot on screen"}, status_code=409)
        return Response(status_code=204)

    async def content(request: Request) -> Response:
        sha256 = request.path_params["sha256"]
        found = player.content(sha256)
        if found is None:
            return JSONResponse(
                {"code": "signage.content_unknown", "reason": "not in this screen's manifest"}, status_code=404
            )
        path, media_type = found
        headers = {"Cache-Control": "private, max-age=31536000, immutable"}  # named by its hash: never changes
        if media_type.startswith("text/html"):
            headers["Content-Security-Policy"] = SLIDE_CSP
            return HTMLResponse(with_font(path.read_text(encoding="utf-8", errors="replace")), headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    async def font(_: Request) -> Response:
        # Cached for a year: the page and every slide share the one download.
        return FileResponse(
            FONT_FILE,
            media_type="font/ttf",
            headers={"Cache-Control": "public, max-age=31536000"},
        )

    return Starlette(
        routes=[
            Route("/", page),
            Route("/now", now),
            Route("/events", events),
            Route("/shown", shown, methods=["POST"]),
            Route("/content/{sha256}", content),
            Route("/font/biz-udpgothic.ttf", font),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )


async def _stream(player: Player, request: Request) -> AsyncIterator[str]:
    """The state now, then every change; a comment every KEEPALIVE_S seconds keeps the connection honest."""
    with player.watch() as changes:
        yield _event(player.state())
        while True:
            try:
                state = await asyncio.wait_for(changes.get(), KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": keepalive\n\n"
                continue
            yield _event(state)


def with_font(html: str) -> str:
    """A node-made slide with the player's webfont first in line, so its Japanese renders the same on any OS."""
    lower = html.lower()
    head = _HEAD.search(lower)
    if head is not None:
        at = lower.find(">", head.start()) + 1
    elif lower.lstrip().startswith("<!doctype"):
        at = lower.find(">") + 1  # after the doctype: anything before it would put the page in quirks mode
    else:
        at = 0
    return html[:at] + _SLIDE_FONT + html[at:]


def _event(state: dict[str, Any]) -> str:
    return f"event: state\ndata: {json.dumps(state, ensure_ascii=False)}\n\n"
