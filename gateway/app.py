"""The gateway app factory: `create_app(settings)`. Connects to NATS in its lifespan, never at import."""

from __future__ import annotations

import html
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import nats
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from gateway import api, apidocs, asyncapi, deps, health, oidc, problems, regions
from gateway.portal import bookings as bookings_pages
from gateway.portal import (
    bookings_life,
    bookings_lottery,
    bookings_staff,
    courses,
    donations,
    home,
    notebook,
    pages,
    projects,
    sns,
    wallet,
)
from gateway.portal import bookings_waitlist as waitlist_pages
from gateway.portal import events as portal_events
from gateway.portal.session import LoginThrottle
from gateway.tracing import TraceMiddleware
from towntip.kernel import runtime
from towntip.kernel.bus.inboxes import GATEWAY_INBOX_PREFIX
from towntip.kernel.clock import JST
from towntip.kernel.secrets import load_or_create_secret
from towntip.kernel.settings import GatewaySettings
from towntip.kernel.town import town_of

log = logging.getLogger(__name__)

TITLE = "TownTip Commons node API"
VERSION = "0.1.0"


async def _connect(settings: GatewaySettings) -> nats.NATS:
    async def on_disconnect() -> None:
        log.warning("gateway: disconnected from NATS")

    async def on_reconnect() -> None:
        log.info("gateway: reconnected to NATS")

    async def on_error(exc: Exception) -> None:
        log.warning("gateway: NATS error: %s", exc)

    return await nats.connect(
        settings.nats_url,
        name=f"gateway@{settings.node_id}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
        inbox_prefix=GATEWAY_INBOX_PREFIX,  # the only inboxes the gateway's user may read (towntip/node/natsauth.py)
    )


def _native_telemetry_off() -> dict[str, Any]:
    """FastAPI >= 0.16x has its own request spans: they are not current while the route runs (so rpc.call
    would not continue them) and record the raw path (card IDms). TraceMiddleware does the job instead."""
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        return {"telemetry": {"tracing": False, "operation_spans": False}}
    return {}


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.nc = await _connect(settings)
        app.state.http = httpx.AsyncClient(follow_redirects=False)  # other nodes (My Page across regions)
        runtime.settle_heap()
        try:
            yield
        finally:
            await app.state.http.aclose()
            nc, app.state.nc = app.state.nc, None
            try:
                await nc.drain()
            except Exception:  # noqa: BLE001 - closing anyway
                await nc.close()

    app = FastAPI(
        **_native_telemetry_off(),
        title=TITLE,
        version=VERSION,
        description=f"HTTP API of the TownTip Commons node `{settings.node_id}`. Errors are RFC 9457 problem details.",
        lifespan=lifespan,
        docs_url=None,  # gateway/apidocs.py serves /docs from the node's own files (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.town = town_of(settings)  # the town's name and districts, as residents read them
    app.state.nc = None
    problems.install(app)
    deps.install(app)  # a failed login, role or CSRF check sends its page (gateway/deps.py)
    app.add_middleware(TraceMiddleware, templates=api.route_templates())
    app.include_router(api.router())
    app.include_router(oidc.router)
    app.include_router(apidocs.router)  # /docs: Swagger UI from the node's own files
    home.install(app)  # the living home page (/) and the town's emblem, before pages' routes
    app.include_router(pages.router)
    app.include_router(regions.router)  # My Page across regions: /federation/person-summary, /api/v1/me/regions
    projects.install(app)  # co-creation pages (and the contact form's throttle)
    app.include_router(wallet.router)  # my points, credits, currency and coupons; the staff's coupon desk
    app.include_router(courses.router)  # courses, マイ単位, certifications and public certificate pages
    app.include_router(donations.router)  # 寄附: certified projects, transparency, マイ寄附 and receipts, staff desk
    app.include_router(notebook.router)  # まちづくり手帳 and its CSV/PDF; the staff's figures with SVG charts
    app.include_router(sns.router)  # theme communities, posts and comments, friends (the sns service)
    # /bookings/waitlist and /bookings/series/… before the pages' /bookings/{booking_id}
    app.include_router(waitlist_pages.router)  # キャンセル待ち and 定期予約: /bookings/waitlist, /bookings/series/…
    app.include_router(bookings_staff.router)  # 施設予約 staff: facilities, 窓口予約, day sheet, usage figures
    app.include_router(bookings_pages.router)  # 施設予約: facilities, availability, booking, my bookings, iCal
    app.include_router(bookings_life.router)  # the staff's approval queue, a resident's payment of one booking
    app.include_router(bookings_lottery.router)  # 抽選 and 団体登録 (the bookings service)
    app.include_router(portal_events.router)  # イベント: dates, venue, sign-up and waitlist, /events.ics; staff form
    app.state.portal_key = bytes.fromhex(load_or_create_secret(settings.data_dir, "portal-key"))
    app.state.login_throttle = LoginThrottle(settings.login_limit, settings.login_window)
    app.state.error_page = pages.error_page  # a browser's 403/404/405 gets a page, the API a problem

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.fix_openapi(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_document() -> JSONResponse:
        """The bus beside the HTTP API: AsyncAPI 3.0, generated from the contracts (gateway/asyncapi.py)."""
        return JSONResponse(asyncapi.node_document(settings.node_id, VERSION))

    async def report() -> dict[str, Any]:
        return await health.check(app.state.nc, settings.node_id, settings.expected_services())

    @app.get("/healthz", tags=["health"], summary="Is every service of this node answering?",
             responses={503: {"description": "something is down (named in `down`)"}})
    async def healthz() -> JSONResponse:
        body = await report()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503,
                            headers={"Cache-Control": "no-store"})

    @app.get("/status", response_class=HTMLResponse, include_in_schema=False)
    async def status_page(request: Request) -> HTMLResponse:
        body = await report()
        return HTMLResponse(_status_html(body), status_code=200 if body["status"] == "ok" else 503,
                            headers={"Cache-Control": "no-store"})

    return app




def _local_time(value: Any) -> str:
    """Times are UTC on the wire and Asia/Tokyo on screen."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(JST).strftime("%m/%d %H:%M:%S")
    except ValueError:
        return str(value or "")


def _status_html(body: dict[str, Any]) -> str:
    e = html.escape
    ok = body["status"] == "ok"
    rows = []
    for name, svc in body["services"].items():
        up = svc["up"]
        rows.append(f"<tr><td>{e(name)}</td><td class={'up' if up else 'down'}>"
                    f"{'稼働中 up' if up else '停止 down'}</td><td>{svc['instances']}</td></tr>")
    procs = []
    for name, p in (body.get("processes") or {}).items():
        procs.append(f"<tr><td>{e(name)}</td><td>{e(str(p.get('state')))}</td><td>{e(str(p.get('pid')))}</td>"
                     f"<td>{e(str(p.get('restarts')))}</td><td>{e(_local_time(p.get('since')))}</td></tr>")
    proc_table = (
        "<h2>プロセス <small>Processes</small></h2><div class=scroll><table><tr><th>名前 name</th>"
        "<th>状態 state</th><th>pid</th><th>再起動 restarts</th><th>開始 since (JST)</th></tr>"
        + "".join(procs) + "</table></div>"
    ) if procs else ""
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>TownTip ノード {e(body['node'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1rem;max-width:40rem}}table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}}th{{font-size:.85rem}}
.scroll{{overflow-x:auto}}h1{{font-size:1.4rem;overflow-wrap:anywhere}}.up{{color:#176b2c}}.down{{color:#b00020}}
small{{color:#555}}</style></head><body>
<h1>TownTip ノード <small>node</small> {e(body['node'])}</h1>
<p class={'up' if ok else 'down'}>{'すべて稼働中 — all services up' if ok else '停止中 down: ' + e(', '.join(body['down']))}</p>
<p>NATS: {e(body['nats'])}</p>
<h2>サービス <small>Services</small></h2>
<div class=scroll><table><tr><th>名前 name</th><th>状態 state</th><th>インスタンス instances</th></tr>{''.join(rows)}</table></div>
{proc_table}
<p><a href="/docs">API (OpenAPI)</a></p>
</body></html>"""  # noqa: E501 (the page template: its lines are the HTML served)
