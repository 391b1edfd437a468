"""Signage content between towns (issue 19, point 7), the staff's page /staff/signage/federation: what the other
towns offer (adopt one: it then waits for a second staff member's approval on the content page), this town's
approved items and whether each is offered, and the plays of this town's items in other towns per town and day.
Also the public /signage/federation/media/<id>: an offered item's bytes, which the other towns' signage services
fetch (the service serves only items offered and approved now)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from gateway.deps import CsrfForm, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, bad_status, call, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.navbar import add_nav
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import signage_federation as f

router = APIRouter(include_in_schema=False)
PAGE = "/staff/signage/federation"
ADOPT_TIMEOUT = 90.0  # the service fetches the bytes from the other town and checks them

add_words(
    {
        "sgf_nav": ("サイネージ（他の自治体と共有）", "Signage shared with other towns"),
        "sgf_nav_desc": (
            "他の自治体が提供するコンテンツの採用、この町のコンテンツの提供、他の自治体での再生実績。",
            "Adopt other towns' content, offer this town's, and see its plays in other towns.",
        ),
        "sgf_title": ("他の自治体と共有", "Shared with other towns"),
        "sgf_offers": ("他の自治体が提供するコンテンツ", "Offered by other towns"),
        "sgf_no_offers": ("提供されているコンテンツはまだありません。", "No town offers content yet."),
        "sgf_town": ("自治体", "Town"),
        "sgf_kind_image": ("画像", "Image"),
        "sgf_kind_video": ("動画", "Video"),
        "sgf_validity": ("掲載期間", "Valid"),
        "sgf_adopt": ("採用する（承認待ちになります）", "Adopt (it then waits for approval)"),
        "sgf_adopted": (
            "採用しました。別の職員がコンテンツ画面で承認すると再生されます。",
            "Adopted. It plays once another staff member approves it on the content page.",
        ),
        "sgf_adopted_as": ("採用済み", "Adopted"),
        "sgf_mine": ("この町のコンテンツの提供", "Offering this town's content"),
        "sgf_mine_hint": (
            "承認済みの画像・動画を他の自治体に提供できます。提供中は他の自治体が取得できます。",
            "Approved images and videos can be offered; while offered, other towns can fetch them.",
        ),
        "sgf_no_mine": ("提供できる承認済みのコンテンツはありません。", "No approved content to offer."),
        "sgf_offer": ("提供する", "Offer"),
        "sgf_unoffer": ("提供をやめる", "Stop offering"),
        "sgf_offering": ("提供中", "Offered"),
        "sgf_offered": ("提供しました。", "Offered."),
        "sgf_unoffered": ("提供をやめました。", "No longer offered."),
        "sgf_abroad": ("他の自治体での再生実績", "Plays in other towns"),
        "sgf_day": ("日付", "Day"),
        "sgf_no_abroad": ("他の自治体からの再生報告はまだありません。", "No town has reported plays yet."),
    }
)
add_nav("sgf_nav", PAGE, "staff")
DONE = ("adopted", "offered", "unoffered")


def _jst(value: datetime | None) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M") if value else "—"


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:,.0f} KB"


def _refusal(request: Request, exc: Exception, user: Any) -> HTMLResponse:
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                   user=user, link=("/staff/signage", t("sg_back", lang)))


async def _ask(request: Request, endpoint: str, payload: Any, timeout: float | None = None) -> Any:
    return await call(request, c.SERVICE, endpoint, payload, timeout=timeout)


async def _federation(request: Request, user: Any, *, status: int = 200, **ctx: Any) -> Response:
    actor = actor_of(user)
    try:
        offers = f.OfferList.model_validate(await _ask(request, f.EP_OFFERS, f.OffersQuery(actor=actor)))
        mine = c.ContentList.model_validate(
            await _ask(request, c.EP_CONTENT_LIST, c.ContentListQuery(actor=actor, status="approved"))
        )
        abroad = f.AbroadPlays.model_validate(await _ask(request, f.EP_ABROAD, f.AbroadQuery(actor=actor)))
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    done = request.query_params.get("done")
    ctx.setdefault("notice", t(f"sgf_{done}", ps.lang(request)) if done in DONE else None)
    return render(
        request,
        "signage/federation.html",
        user=user,
        status=status,
        jst=_jst,
        size=_size,
        offers=offers.offers,
        mine=[i for i in mine.items if i.source == "upload" and i.kind in ("image", "video")],
        abroad=abroad.rows,
        **ctx,
    )


@router.get(PAGE, response_class=HTMLResponse)
async def federation_page(request: Request, user: StaffUser) -> Response:
    return await _federation(request, user)


@router.post(f"{PAGE}/adopt")
async def adopt(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    try:
        ask = f.AdoptRequest(
            actor=actor_of(user), origin_node=str(form.get("origin_node", "")), item_id=str(form.get("item_id", ""))
        )
        await _ask(request, f.EP_ADOPT, ask, timeout=ADOPT_TIMEOUT)
    except (ValidationError, errors.ServiceError) as exc:
        return await _federation(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"{PAGE}?done=adopted", status_code=303)


@router.post(PAGE + "/offer/{item_id}")
async def offer(item_id: str, request: Request, form: CsrfForm, user: StaffUser) -> Response:
    offered = form.get("offered") == "1"
    try:
        await _ask(request, f.EP_OFFER, f.OfferSet(actor=actor_of(user), item_id=item_id, offered=offered))
    except (ValidationError, errors.ServiceError) as exc:
        return await _federation(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"{PAGE}?done={'offered' if offered else 'unoffered'}", status_code=303)


@router.get("/signage/federation/media/{item_id}")
async def media(item_id: str, request: Request) -> Response:
    """An offered item's bytes, part by part from the service; 404 for anything not offered now."""
    try:
        first = f.MediaChunk.model_validate(await _ask(request, f.EP_MEDIA, f.MediaPart(item_id=item_id, seq=0)))
    except (ValidationError, errors.NotFound):
        return Response(status_code=404)

    async def body() -> AsyncIterator[bytes]:
        yield base64.b64decode(first.data_b64)
        for seq in range(1, first.parts):
            part = f.MediaChunk.model_validate(await _ask(request, f.EP_MEDIA, f.MediaPart(item_id=item_id, seq=seq)))
            if part.sha256 != first.sha256:  # the item changed under us: end short, the taker's sha256 check fails
                return
            yield base64.b64decode(part.data_b64)

    return StreamingResponse(
        body(),
        media_type=first.mime,
        headers={"Content-Length": str(first.bytes), "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'"},
    )
