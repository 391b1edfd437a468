"""The gateway app factory: `create_app(settings)`. Connects to NATS in its lifespan, never at import."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from gateway import api, apidocs, asyncapi, deps, health, metrics, oidc, problems, regions
from gateway.portal import bookings as bookings_pages
from gateway.portal import (
    bookings_life,
    bookings_lottery,
    bookings_photos,
    bookings_staff,
    courses,
    donations,
    home,
    mydata,
    navi,
    navigation,
    notebook,
    notices,
    notices_activity,
    notices_calendar,
    notices_feeds,
    notices_staff,
    open_data,
    pages,
    pictures,
    projects,
    sns,
    sns_blogs,
    sns_directory,
    sns_matching,
    sns_messages,
    sns_moderation,
    wallet,
)
from gateway.portal import bookings_waitlist as waitlist_pages
from gateway.portal import events as portal_events
from gateway.portal import session as ps
from gateway.portal import signage as signage_pages
from gateway.portal import signage_federation as signage_federation_pages
from gateway.portal import signage_slides as signage_slide_pages
from gateway.portal.common import render
from gateway.portal.public_answers import PublicAnswers
from gateway.portal.session import LoginThrottle
from gateway.tracing import TraceMiddleware
from towntip.kernel import runtime
from towntip.kernel.bus.inboxes import GATEWAY_INBOX_PREFIX
from towntip.kernel.clock import JST
from towntip.kernel.secrets import load_or_create_secret
from towntip.kernel.settings import GatewaySettings, nats_servers
from towntip.kernel.telemetry import setup_logging, setup_tracing
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
        nats_servers(settings.nats_url),
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


def from_environment() -> FastAPI:
    """A worker of `python -m gateway` (uvicorn's factory): its settings, logging and tracing from TOWNTIP_*."""
    settings = GatewaySettings()
    setup_logging("gateway", settings.log_level, settings.log_format)
    setup_tracing("gateway", settings.trace_export, node_id=settings.node_id)
    return create_app(settings)


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
    # several workers count their throttles' attempts together (gateway/portal/session.py)
    app.state.throttle_store = (ps.SharedCounts(Path(settings.data_dir) / "gateway" / "throttles.sqlite3")
                                if settings.gateway_workers > 1 else None)
    app.state.town = town_of(settings)  # the town's name and districts, as residents read them
    # a visitor's public reads, kept a moment (gateway/portal/public_answers.py)
    app.state.public_answers = (PublicAnswers(settings.public_cache_seconds) if settings.public_cache_seconds > 0
                                else None)
    app.state.nc = None
    problems.install(app)
    deps.install(app)  # a failed login, role or CSRF check sends its page (gateway/deps.py)
    app.add_middleware(TraceMiddleware, templates=api.route_templates())
    app.state.metrics = metrics.GatewayMetrics()  # its HTTP requests, in GET /metrics (gateway/metrics.py)
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics, templates=api.route_templates())
    app.include_router(metrics.router)  # GET /metrics: every process's, for the admin token
    app.include_router(api.router())
    app.include_router(oidc.router)
    app.include_router(apidocs.router)  # /docs: Swagger UI from the node's own files
    home.install(app)  # the living home page (/) and the town's emblem, before pages' routes
    app.include_router(pages.router)
    app.include_router(mydata.router)  # a person's data: the page and the archive from every service
    app.include_router(navigation.router)  # the tab bar's group pages, the staff area, /static/towntip.css
    app.include_router(pictures.router)  # /static/pictures/<family>.svg: the cards' illustrations
    app.include_router(regions.router)  # My Page across regions: /federation/person-summary, /api/v1/me/regions
    projects.install(app)  # co-creation pages (and the contact form's throttle)
    app.include_router(wallet.router)  # my points, credits, currency and coupons; the staff's coupon desk
    app.include_router(courses.router)  # courses, マイ単位, certifications and public certificate pages
    app.include_router(donations.router)  # 寄附: certified projects, transparency, マイ寄附 and receipts, staff desk
    app.include_router(notebook.router)  # まちづくり手帳 and its CSV/PDF; the staff's figures with SVG charts
    app.include_router(open_data.router)  # オープンデータ: /open-data and its zip of CSV files (public, cached)
    app.include_router(notices_calendar.router)  # カレンダー: /calendar, /calendar.ics, a community's, the private one
    app.include_router(notices_feeds.router)  # /notices.atom; the staff's collected feeds (/staff/feeds)
    # other towns' communities (/communities/towns): before sns.router, whose /communities/{cid} would take it
    app.include_router(sns_directory.router)
    app.include_router(sns.router)  # theme communities, posts and comments, friends (the sns service)
    app.include_router(sns_moderation.router)  # reports, the staff's moderation queue, appeals (the sns service)
    app.include_router(sns_messages.router)  # direct messages between two people (the sns service)
    app.include_router(sns_blogs.router)  # blogs with pictures, comments and 共感 (the sns service)
    app.include_router(sns_matching.router)  # openings, applications, the organiser's answers (the sns service)
    # /bookings/waitlist and /bookings/series/… before the pages' /bookings/{booking_id}
    app.include_router(waitlist_pages.router)  # キャンセル待ち and 定期予約: /bookings/waitlist, /bookings/series/…
    app.include_router(bookings_photos.router)  # a facility's photos: the pictures, the staff's page to add them
    app.include_router(bookings_staff.router)  # 施設予約 staff: facilities, 窓口予約, day sheet, usage figures
    app.include_router(bookings_pages.router)  # 施設予約: facilities, availability, booking, my bookings, iCal
    app.include_router(bookings_life.router)  # the staff's approval queue, a resident's payment of one booking
    app.include_router(bookings_lottery.router)  # 抽選 and 団体登録 (the bookings service)
    app.include_router(notices.router)  # 受信箱 and ライフステージ (the notices service): /inbox, /me/life
    app.include_router(notices_staff.router)  # お知らせ配信 (staff): /staff/notices
    app.include_router(notices_activity.router)  # 活動のお知らせ, its settings, Web Push's service worker /sw.js
    app.include_router(navi.router)  # まちづくりナビ: /navi, its counting redirect, the staff's figures
    app.include_router(signage_pages.router)  # サイネージ staff: screens, content, playlists, plays, 緊急情報
    app.include_router(signage_federation_pages.router)  # サイネージ shared with other towns; their media
    app.include_router(signage_slide_pages.router)  # サイネージ staff: slides from the node's own data
    app.include_router(portal_events.router)  # イベント: dates, venue, sign-up and waitlist, /events.ics; staff form
    app.state.portal_key = bytes.fromhex(load_or_create_secret(settings.data_dir, "portal-key"))
    app.state.login_throttle = LoginThrottle(settings.login_limit, settings.login_window,
                                             store=app.state.throttle_store)
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
        body = await report()  # the portal's page: it needs no service, so it shows even when all are down
        return render(request, "status.html", status=200 if body["status"] == "ok" else 503, body=body,
                      since=_local_time)

    return app




def _local_time(value: Any) -> str:
    """Times are UTC on the wire and Asia/Tokyo on screen."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(JST).strftime("%m/%d %H:%M:%S")
    except ValueError:
        return str(value or "")
