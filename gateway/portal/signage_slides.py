"""The staff's page of slides made from the node's own data (/staff/signage/slides): add one with its source (and,
for a facility's bookings, the facility), see each slide's source, when it was last refreshed and what it shows
now. Approval and withdrawal are on the content page, as for every item. The signage service decides (slides.create,
slides.list); the facilities come from the bookings service's public list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, bad_status, call, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import signage as c

router = APIRouter(include_in_schema=False)

add_words(
    {
        "sgs_tab": ("データスライド", "Data slides"),
        "sgs_intro": (
            "まちのデータ（イベント、お知らせなど）から自動で作るスライドです。1分ごとに最新の内容に更新されます。"
            "別の職員が「コンテンツ」で承認すると再生されます。",
            "Slides made from the town's own data (events, notices, …), brought up to date every minute. They play "
            "once another staff member approves them under Content.",
        ),
        "sgs_add": ("データスライドを追加する", "Add a data slide"),
        "sgs_source": ("内容", "Source"),
        "sgs_source_events": ("これからのイベントと申込状況", "Upcoming events and sign-ups"),
        "sgs_source_news": ("コミュニティの新着", "Community news"),
        "sgs_source_notices": ("まちのお知らせ", "Notices"),
        "sgs_source_themes": ("パートナー募集中のテーマ", "Themes inviting partners"),
        "sgs_source_points": ("地区別まちづくりポイント", "まちづくりポイント by district"),
        "sgs_source_bookings": ("施設の本日の利用予定", "A facility's bookings today"),
        "sgs_facility": ("施設（本日の利用予定のとき）", "Facility (for bookings today)"),
        "sgs_title_hint": ("空欄: 内容に応じた見出し", "Empty: the source's own heading"),
        "sgs_do_add": ("追加する（承認待ちになります）", "Add (it then waits for approval)"),
        "sgs_added": (
            "追加しました。内容はすぐに取得されます。別の職員が承認すると再生されます。",
            "Added. Its data are fetched at once; it plays once another staff member approves it.",
        ),
        "sgs_none": ("データスライドはまだありません。", "No data slide yet."),
        "sgs_refreshed": ("最終更新", "Last refreshed"),
        "sgs_failing": ("取得できません", "Source not answering"),
        "sgs_showing": ("表示中の内容", "Showing now"),
    }
)

SOURCES = ("events", "news", "notices", "themes", "points", "bookings")


def jst(value: datetime | None) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M") if value else "—"


def local(value: str) -> datetime | None:
    """A date-time typed on the page, in Japan's time (empty: None)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=JST) if parsed.tzinfo is None else parsed


async def _facilities(request: Request) -> list[bc.Facility]:
    """The facilities to choose from; none when the bookings service does not answer (the other sources still work)."""
    try:
        return list(bc.FacilityList.model_validate(await call(request, bc.SERVICE, bc.EP_FACILITY_LIST, {})).root)
    except errors.ServiceError:
        return []


async def _slides(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        listed = c.SlideList.model_validate(
            await call(request, c.SERVICE, c.EP_SLIDE_LIST, c.SlideListQuery(actor=actor_of(user)))
        )
    except (ValidationError, errors.ServiceError) as exc:
        lang = ps.lang(request)
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                       user=user, link=("/staff/signage", t("sg_back", lang)))
    return render(
        request,
        "signage/slides.html",
        user=user,
        status=status,
        jst=jst,
        slides=listed.slides,
        sources=SOURCES,
        facilities=await _facilities(request),
        today=datetime.now(JST).strftime("%Y-%m-%dT%H:%M"),
        form=ctx.pop("form", {}),
        **ctx,
    )


@router.get("/staff/signage/slides", response_class=HTMLResponse)
async def slides_page(request: Request, user: StaffUser) -> Response:
    added = request.query_params.get("done") == "added"
    return await _slides(request, user, notice=t("sgs_added", ps.lang(request)) if added else None)


@router.post("/staff/signage/slides")
async def slide_add(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    try:
        valid_from = local(str(form.get("valid_from", ""))) or datetime.now(JST)
        source = str(form.get("source", ""))
        create = c.SlideCreate.model_validate(
            {
                "actor": actor_of(user),
                "source": source,
                "facility_id": (str(form.get("facility_id") or "") or None) if source == "bookings" else None,
                "title": str(form.get("title") or "").strip() or None,
                "duration_s": int(form.get("duration_s") or 15),
                "valid_from": valid_from,
                "valid_until": local(str(form.get("valid_until", ""))),
            }
        )
        await call(request, c.SERVICE, c.EP_SLIDE_CREATE, create)
    except (ValueError, ValidationError, errors.ServiceError) as exc:
        return await _slides(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)), form=dict(form))
    return RedirectResponse("/staff/signage/slides?done=added", status_code=303)
