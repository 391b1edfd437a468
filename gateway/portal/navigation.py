"""The portal's way around: the group pages the tab bar leads to (参加する, マイ手帳・ポイント, メニュー), the staff
area's landing page (what waits for the staff today, gathered over the bus from the services that own it), and the
shared stylesheet, served by the node itself with caching headers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from gateway.deps import OptionalUser, role
from gateway.portal import stylesheet
from gateway.portal.common import actor_of, add_nav, call, render
from gateway.portal.i18n import add_words
from gateway.portal.navbar import is_staff, nav_for
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_life as lc
from towntip.kernel.contracts import bookings_lottery as gc
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notebook as nc
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc

router = APIRouter(include_in_schema=False)
StaffArea = Annotated[ic.User, Depends(role("staff", "secretariat"))]

add_words(
    {
        "tab_join": ("参加する", "Take part"),
        "tab_mine": ("マイ手帳", "My notebook"),
        "tab_inbox": ("お知らせ", "Notices"),
        "tab_menu": ("メニュー", "Menu"),
        "main_nav": ("メインメニュー", "Main menu"),
        "crumbs": ("現在地", "You are here"),
        "skip": ("本文へ移動", "Skip to the content"),
        "group_join": ("参加する", "Take part"),
        "group_join_intro": (
            "まちの活動に加わる入り口です。気になるものから開いてください。",
            "Ways into the town's life: open whatever interests you.",
        ),
        "group_mine": ("マイ手帳・ポイント", "My notebook and points"),
        "group_mine_intro": (
            "あなたの活動の記録、ポイント、予約と寄附をまとめて見られます。",
            "Your activities, points, bookings and donations in one place.",
        ),
        "group_menu": ("メニュー", "Menu"),
        "group_menu_intro": (
            "プロフィール、設定、トモダチ、表示言語など。",
            "Profile, settings, friends, language and more.",
        ),
        "group_staff": ("職員メニュー", "Staff area"),
        "group_staff_intro": (
            "きょう対応が必要なことと、職員用の各画面です。",
            "What waits for you today, and the staff's tools.",
        ),
        "mine_login": (
            "ログインすると、まちづくり手帳・ポイント・予約を見られます。",
            "Log in to see your notebook, points and bookings.",
        ),
        "my_bookings": ("マイ予約", "My bookings"),
        "nav_cards": ("カード（ICカード）", "Cards (IC cards)"),
        "staff_area": ("職員メニュー", "Staff area"),
        "staff_waiting": ("対応待ち", "Waiting for you"),
        "staff_figures": ("数字で見る", "Figures"),
        "staff_tools": ("職員用の画面", "Staff tools"),
        "staff_unknown": ("取得できませんでした", "Not available"),
        "staff_none": ("ありません", "None"),
        "sw_approvals": ("承認待ちの施設予約", "Bookings to approve"),
        "sw_groups": ("審査待ちの団体登録", "Group applications"),
        "sw_pledges": ("入金確認待ちの寄附", "Donations awaiting payment"),
        "sw_inquiries": ("未対応のお問い合わせ", "Open inquiries"),
        "sw_drafts": ("公開前の共創テーマ", "Themes not yet published"),
        "sw_selections": ("選考・結果の公表を待つテーマ", "Themes awaiting selection"),
        "sf_people": ("参加した人", "People taking part"),
        "sf_participations": ("参加の回数", "Participations"),
        "sf_points": ("発行したポイント", "Points issued"),
        "other_language": ("English", "日本語"),
        # one line each on the group pages: what the page is for, in a resident's words
        "nav_communities_desc": (
            "同じ関心をもつ人の集まり。投稿やコメントで交流します。",
            "Groups of people who share an interest: posts and comments.",
        ),
        "nav_themes_desc": (
            "市が企業・団体と一緒に解決したい課題。提案や参加を募集しています。",
            "Issues the town wants to solve with partners: proposals welcome.",
        ),
        "nav_events_desc": ("日程と会場を見て、参加を申し込めます。", "Dates and places; sign up to take part."),
        "nav_bookings_desc": ("公民館などの空きを見て、部屋を予約します。", "See free slots and book a room."),
        "nav_courses_desc": ("学んで単位や認定を得られる講座です。", "Courses that earn credits and certificates."),
        "dn_nav_desc": (
            "市が認定した事業に寄附できます。使いみちも公開しています。",
            "Give to certified projects; see how the money is used.",
        ),
        "lt_nav_desc": ("人気の施設は抽選で予約します。", "Popular rooms are booked by lottery."),
        "nav_cases_desc": ("これまでの共創の成果です。", "What co-creation has achieved so far."),
        "nav_federation_desc": ("ほかの自治体のテーマや事例です。", "Themes and cases of other towns."),
        "mypage_desc": ("ポイント残高と参加の記録のまとめ。", "Your balance and activities at a glance."),
        "notebook_desc": (
            "参加した活動の記録と合計（CSV・PDFで保存できます）。",
            "Your activities and totals (save as CSV or PDF).",
        ),
        "wallet_desc": ("ポイントの残高と履歴、クーポン。", "Your points, their history and coupons."),
        "my_bookings_desc": ("予約した施設の確認と取り消し。", "Check or cancel your bookings."),
        "wl_nav_desc": ("空きを待っている予約と、毎週の定期予約。", "Bookings you wait for, and weekly series."),
        "nav_credits_desc": ("講座で得た単位と認定。", "Credits and certificates from courses."),
        "dn_nav_mine_desc": ("寄附の記録と受領証明書。", "Your donations and their receipts."),
        "profile_desc": ("表示名、地区、関心のある分野。", "Your name, district and interests."),
        "password_desc": ("パスワードを変更します。", "Change your password."),
        "nav_cards_desc": (
            "ICカードを登録すると、タッチでポイントが貯まります。",
            "Register an IC card to earn points with a tap.",
        ),
        "nav_friends_desc": ("トモダチを探して申請します。", "Find friends and send requests."),
        "nav_orgs_desc": ("所属している企業・団体。", "The organisations you belong to."),
        "nav_contact_desc": ("市への問い合わせ・ご意見。", "Questions and comments to the town."),
        "staff_area_desc": ("職員用の画面と、きょうの対応待ち。", "Staff tools and today's queue."),
    }
)
add_nav("mypage", "/me", "user", "mine")
add_nav("my_bookings", "/bookings", "user", "mine")
add_nav("profile", "/settings/profile", "user", "menu")
add_nav("password", "/settings/password", "user", "menu")
add_nav("nav_cards", "/settings/cards", "user", "menu")


@router.get("/static/towntip.css")
async def stylesheet_file() -> Response:
    """The portal's one stylesheet; pages ask for it as /static/towntip.css?v=<digest>."""
    return Response(
        stylesheet.CSS,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{stylesheet.VERSION}"'},
    )


def _group(request: Request, user: ic.User | None, group: str, **ctx: Any) -> HTMLResponse:
    return render(request, "nav/group.html", user=user, group=group, items=nav_for(user, group), **ctx)


@router.get("/join", response_class=HTMLResponse)
async def join_page(request: Request, user: OptionalUser) -> Response:
    return _group(request, user, "join")


@router.get("/mine", response_class=HTMLResponse)
async def mine_page(request: Request, user: OptionalUser) -> Response:
    """Public, so that the tab never leads to a wall: without a session it says what logging in brings."""
    return _group(request, user, "mine")


@router.get("/menu", response_class=HTMLResponse)
async def menu_page(request: Request, user: OptionalUser) -> Response:
    return _group(request, user, "menu", staff=is_staff(user))


# ---- the staff area ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    key: str
    href: str
    count: int | None  # None: the service did not answer (the page still shows the rest)


async def _count(coro: Any, field: str) -> int | None:
    try:
        return len(getattr(await coro, field))
    except errors.ServiceError:
        return None


async def _approvals(request: Request, user: ic.User) -> Any:
    return bc.BookingList.model_validate(
        await call(request, bc.SERVICE, lc.EP_APPROVALS, lc.ApprovalsQuery(actor=actor_of(user)))
    )


async def _groups(request: Request, user: ic.User) -> Any:
    return gc.GroupList.model_validate(
        await call(request, bc.SERVICE, gc.EP_GROUP_LIST, gc.GroupListQuery(actor=actor_of(user), state="pending"))
    )


async def _pledges(request: Request, user: ic.User) -> Any:
    return dc.DonationList.model_validate(
        await call(request, pc.SERVICE, dc.EP_LIST, dc.DonationListQuery(actor=actor_of(user), status="pledged"))
    )


async def _inquiries(request: Request, user: ic.User) -> Any:
    return prc.InquiryList.model_validate(
        await call(request, prc.SERVICE, prc.EP_INQUIRY_LIST, prc.InquiryListQuery(actor=actor_of(user), status="open"))
    )


async def _drafts(request: Request, user: ic.User) -> Any:
    """Themes written and not yet published, among those this person may manage (their departments')."""
    found = prc.ThemeList.model_validate(
        await call(
            request, prc.SERVICE, prc.EP_THEME_LIST, prc.ThemeListQuery(actor=actor_of(user), include_drafts=True)
        )
    )
    return prc.ThemeList(themes=[th for th in found.themes if th.status == "draft" and th.may_manage])


async def _selections(request: Request, user: ic.User) -> Any:
    """Themes whose call's deadline has passed and whose result is not yet published: the secretariat's to appoint
    evaluators for, close and publish (phase 2 only; each one's evaluation.status, asked at once)."""
    listed = prc.ThemeList.model_validate(
        await call(request, prc.SERVICE, prc.EP_THEME_LIST, prc.ThemeListQuery(actor=actor_of(user)))
    )
    open_calls = [th for th in listed.themes if th.phase == 2]

    async def waits(theme: prc.Theme) -> bool:
        try:
            status = prc.EvaluationStatus.model_validate(await call(
                request, prc.SERVICE, prc.EP_EVALUATION_STATUS, prc.ThemeQuery(theme_id=theme.id, actor=actor_of(user))
            ))
        except errors.ServiceError:  # no call yet (no requirements), or not this person's to see
            return False
        return status.deadline_passed and status.published_at is None

    found = await asyncio.gather(*(waits(th) for th in open_calls))
    return prc.ThemeList(themes=[th for th, w in zip(open_calls, found, strict=True) if w])


async def _figures(request: Request, user: ic.User) -> nc.Figures | None:
    try:
        return nc.Figures.model_validate(
            await call(request, pc.SERVICE, nc.EP_FIGURES, nc.FiguresQuery(actor=actor_of(user)))
        )
    except errors.ServiceError:
        return None


async def _waiting(request: Request, user: ic.User) -> list[Waiting]:
    """Each queue a staff member may see, asked at once; a service that does not answer leaves a gap, not an error
    page (the landing page is where staff look first, also on a bad day)."""
    asks: list[tuple[str, str, Any, str]] = []
    if "staff" in user.roles:
        asks += [
            ("sw_approvals", "/staff/bookings/approvals", _approvals(request, user), "bookings"),
            ("sw_groups", "/staff/groups", _groups(request, user), "groups"),
            ("sw_pledges", "/staff/donations/pledges", _pledges(request, user), "donations"),
        ]
    asks.append(("sw_drafts", "/themes", _drafts(request, user), "themes"))
    if "secretariat" in user.roles:
        asks.append(("sw_inquiries", "/secretariat/inquiries", _inquiries(request, user), "inquiries"))
        asks.append(("sw_selections", "/themes", _selections(request, user), "themes"))
    counts = await asyncio.gather(*(_count(coro, field) for _, _, coro, field in asks))
    return [Waiting(key, href, n) for (key, href, _, _), n in zip(asks, counts, strict=True)]


@router.get("/staff", response_class=HTMLResponse)
async def staff_page(request: Request, user: StaffArea) -> Response:
    waiting, figures = await asyncio.gather(
        _waiting(request, user), _figures(request, user) if "staff" in user.roles else _nothing()
    )
    return render(request, "nav/staff.html", user=user, waiting=waiting, figures=figures, items=nav_for(user, "staff"))


async def _nothing() -> None:
    return None
