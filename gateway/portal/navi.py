"""The portal's まちづくりナビ (issue 18, point 6): /navi shows a person communities, events, volunteer openings and
themes that fit them, each with its reason; a followed suggestion goes through /navi/go, which counts it (kind and
reason only, never who) and leads on; staff see the counts at /staff/navi."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CurrentUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import categories, errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices_activity as c

router = APIRouter(include_in_schema=False)

add_words(
    {
        "nv_title": ("まちづくりナビ", "Town navi"),
        "nv_intro": (
            "あなたの関心・地区・これまでの参加から、おすすめを選びました。",
            "Picked for you from your interests, district and what you joined before.",
        ),
        "nv_from_life": (
            "ライフステージの回答（この地域のサーバーの外には出ません）をもとにしています。",
            "Based on your life-stage answers (they never leave this town's server).",
        ),
        "nv_from_profile": (
            "プロフィールの関心と地区をもとにしています。",
            "Based on the interests and district of your profile.",
        ),
        "nv_from_none": (
            "関心や地区を登録すると、おすすめが表示されます。",
            "Tell us your interests or district to get suggestions.",
        ),
        "nv_set_life": ("関心・地区を登録する", "Set my interests and district"),
        "nv_empty": ("いまはおすすめがありません。", "No suggestions right now."),
        "nv_kind_community": ("コミュニティ", "Community"),
        "nv_kind_event": ("イベント", "Event"),
        "nv_kind_volunteer": ("ボランティア募集", "Volunteering"),
        "nv_kind_theme": ("パートナー募集中のテーマ", "Theme seeking partners"),
        "nv_why_interest": ("{x}に関心があるため", "Because you are interested in {x}"),
        "nv_why_district": ("{x}の催しです", "Happening in {x}"),
        "nv_why_history": ("参加中のコミュニティと同じ分野（{x}）です", "Same field as your communities ({x})"),
        "nv_staff": ("まちづくりナビの利用状況", "Town navi: what is taken"),
        "nv_staff_intro": (
            "種類と理由ごとの件数だけを表示します。誰が何を見たかは記録していません。",
            "Counts per kind and reason only: who saw or took what is never recorded.",
        ),
        "nv_reason": ("理由", "Reason"),
        "nv_shown": ("表示", "Shown"),
        "nv_taken": ("利用", "Taken"),
        "nv_reason_interest": ("関心", "Interest"),
        "nv_reason_district": ("地区", "District"),
        "nv_reason_history": ("参加歴", "History"),
        "nv_kind": ("種類", "Kind"),
    }
)
add_nav("nv_title", "/navi", "user")


def because(s: c.Suggestion, lang: str) -> str:
    if s.reason != "district":
        return t(f"nv_why_{s.reason}", lang).format(x=categories.labels(lang).get(s.because, s.because))
    # A district named with its own 区 (杉下小学校区) is not called 〇〇区地区.
    place = s.because if lang == "en" or s.because.endswith(("区", "地区")) else s.because + "地区"
    return t("nv_why_district", lang).format(x=place)


def go_link(s: c.Suggestion) -> str:
    return "/navi/go?" + urlencode({"kind": s.kind, "reason": s.reason, "to": s.link})


@router.get("/navi", response_class=HTMLResponse)
async def navi_page(request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    q = c.NaviQuery(actor=actor_of(user), district=user.district[:64], interests=list(user.interests)[:64])
    try:
        got = c.NaviList.model_validate(await call(request, c.SERVICE, c.EP_NAVI, q))
    except errors.ServiceError as exc:
        return message(
            request, heading=t("nv_title", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user
        )
    return render(
        request,
        "notices/navi.html",
        user=user,
        got=got,
        because=lambda s: because(s, lang),
        go=go_link,
        when=lambda s: s.when.astimezone(JST).strftime("%m/%d %H:%M") if s.when else "",
    )


@router.get("/navi/go")
async def navi_go(request: Request, user: CurrentUser, kind: str = "", reason: str = "", to: str = "") -> Response:
    lang = ps.lang(request)
    try:
        taken = c.NaviTaken.model_validate(
            await call(
                request,
                c.SERVICE,
                c.EP_NAVI_TAKE,
                c.NaviTake.model_validate({"kind": kind, "reason": reason, "link": to}),
            )
        )
    except (errors.ServiceError, ValidationError) as exc:
        status = error_status(exc) if isinstance(exc, errors.ServiceError) else 400
        return message(request, heading=t("nv_title", lang), paragraphs=[why(exc, lang)], status=status, user=user)
    return RedirectResponse(taken.link, status_code=303)


@router.get("/staff/navi", response_class=HTMLResponse)
async def navi_staff(request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        figures = c.NaviFigures.model_validate(
            await call(request, c.SERVICE, c.EP_NAVI_FIGURES, c.NaviFiguresQuery(actor=actor_of(user)))
        )
    except errors.ServiceError as exc:
        return message(
            request, heading=t("nv_staff", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user
        )
    return render(request, "notices/navi_staff.html", user=user, figures=figures)
