"""The portal's inbox (電子私書箱) and life-stage pages for a logged-in person: notices and official messages (read
and unread, archive, search, one item opened), and the person's own life stage, every answer optional and deletable
at any time. Each page asks the notices service over NATS with the person as an Actor inside the request; the
service answers with that person's own rows only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts import notices_towns as tc

router = APIRouter(include_in_schema=False)

add_words({
    "nt_inbox": ("受信箱", "Inbox"),
    "nt_inbox_intro": ("市からのお知らせと、あなた宛ての通知です。", "Notices from the city and messages to you."),
    "nt_unread_count": ("未読", "Unread"),
    "nt_empty": ("まだ届いたものはありません。", "Nothing has arrived yet."),
    "nt_folder_inbox": ("受信箱", "Inbox"),
    "nt_folder_unread": ("未読", "Unread"),
    "nt_folder_archive": ("アーカイブ", "Archive"),
    "nt_search": ("検索", "Search"),
    "nt_older": ("さらに古いもの", "Older"),
    "nt_kind_notice": ("お知らせ", "Notice"),
    "nt_kind_message": ("通知", "Message"),
    "nt_kind_town_notice": ("他のまち", "Other town"),
    "nt_from_town": ("{town} からのお知らせ", "A notice from {town}"),
    "nt_towns_link": ("他のまちのお知らせも受け取る", "Receive other towns' notices too"),
    "nt_towns": ("他のまちのお知らせ", "Other towns' notices"),
    "nt_towns_intro": ("連携している他のまちを選ぶと、そのまちが住民全員に出したお知らせがこの受信箱に届きます。"
                       "選んだまちは、この自治体のサーバーにだけ保存されます（相手のまちには伝わりません）。",
                       "Choose member towns of the federation: the notices they send to all their residents "
                       "arrive in this inbox. Your choice is kept on this municipality's server only (the other "
                       "town is not told)."),
    "nt_towns_none": ("連携している他のまちはまだありません。", "No other member towns yet."),
    "nt_towns_down": ("今は連携先の一覧を読み込めません。フォロー中のまちだけを表示しています。",
                      "The list of member towns cannot be read just now: only the towns you follow are shown."),
    "nt_town_following": ("受け取り中", "Following"),
    "nt_town_unlisted": ("連携を終了したまち", "No longer a member town"),
    "nt_town_follow": ("受け取る", "Follow"),
    "nt_town_unfollow": ("受け取りをやめる", "Stop"),
    "nt_followed": ("受け取るまちに加えました。これから出されるお知らせが届きます。",
                    "Added: the notices it sends from now on will arrive."),
    "nt_unfollowed": ("受け取りをやめました。届いたお知らせは残ります。",
                      "Stopped. What already arrived stays in your inbox."),
    "nt_new": ("未読", "New"),
    "nt_withdrawn": ("取り下げ", "Withdrawn"),
    "nt_withdrawn_long": ("このお知らせは取り下げられました。", "This notice has been withdrawn."),
    "nt_corrected": ("訂正されています（第{n}版）", "Corrected (version {n})"),
    "nt_valid": ("掲載期間", "Valid"),
    "nt_mark_unread": ("未読に戻す", "Mark unread"),
    "nt_archive": ("アーカイブする", "Archive"),
    "nt_unarchive": ("受信箱に戻す", "Back to inbox"),
    "nt_back": ("受信箱へ戻る", "Back to the inbox"),
    "nt_life_link": ("ライフステージを登録すると、あなたに合ったお知らせが届きます。",
                     "State your life stage to receive the notices that fit you."),
    "nt_life": ("ライフステージ", "Life stage"),
    "nt_life_intro": ("登録は任意です。答えたい項目だけ選んでください。答えはこの自治体のサーバーだけに保存され、"
                      "職員にもあなたの答えは見えません（見えるのは人数だけです）。",
                      "Every question is optional: answer only what you like. Your answers stay on this "
                      "municipality's server; staff never see them, only how many people a notice reaches."),
    "nt_life_anytime": ("いつでも変更・削除できます。", "You can change or delete them at any time."),
    "nt_district": ("お住まいの地区", "District"),
    "nt_unset": ("選ばない", "Not said"),
    "nt_age_band": ("年代", "Age"),
    "nt_household": ("世帯", "Household"),
    "nt_children_ages": ("お子さんの年齢（複数は「,」区切り。例: 3, 7）", "Children's ages (e.g. 3, 7)"),
    "nt_caring": ("介護が必要な家族がいる", "Someone in the household needs care"),
    "nt_living_alone": ("ひとり暮らし", "Living alone"),
    "nt_events": ("最近の・これからのライフイベント", "Recent or coming life events"),
    "nt_event_month": ("時期（任意）", "When (optional)"),
    "nt_interests": ("関心のある分野", "Interests"),
    "nt_save": ("保存する", "Save"),
    "nt_delete_all": ("答えをすべて削除する", "Delete all my answers"),
    "nt_saved": ("保存しました。", "Saved."),
    "nt_deleted": ("すべての答えを削除しました。", "All your answers were deleted."),
    "nt_updated": ("最終更新", "Last changed"),
    "nt_ages_bad": ("お子さんの年齢は0〜18の数字で、「,」で区切って入力してください。",
                    "Give children's ages as numbers from 0 to 18, separated by commas."),
    **{f"nt_age_{b}": pair for b, pair in {
        "under_20": ("10代以下", "Under 20"), "20s": ("20代", "20s"), "30s": ("30代", "30s"), "40s": ("40代", "40s"),
        "50s": ("50代", "50s"), "60s": ("60代", "60s"), "70s": ("70代", "70s"), "80_plus": ("80代以上", "80+"),
    }.items()},
    **{f"nt_event_{k}": pair for k, pair in {
        "moving_in": ("転入", "Moving in"), "birth": ("出産", "Birth"), "entering_school": ("入学", "Entering school"),
        "marriage": ("結婚", "Marriage"), "retirement": ("退職", "Retirement"),
        "bereavement": ("家族の死亡", "A death in the family"),
    }.items()},
})
add_nav("nt_inbox", "/inbox", "user")


def jst(t_: datetime | None) -> str:
    return t_.astimezone(JST).strftime("%Y-%m-%d %H:%M") if t_ else ""


def _failed(request: Request, heading: str, exc: Exception, user: Any) -> HTMLResponse:
    lang = ps.lang(request)
    status = error_status(exc) if isinstance(exc, errors.ServiceError) else 400
    return message(request, heading=t(heading, lang), paragraphs=[why(exc, lang)], status=status, user=user,
                   link=("/inbox", t("nt_back", lang)))


# ---- the inbox ------------------------------------------------------------------------------------------------------


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, user: CurrentUser, folder: str = "inbox", q: str = "",
                     before: str = "") -> Response:
    query: dict[str, Any] = {"actor": actor_of(user), "folder": folder if folder in ("unread", "archive") else "inbox",
                             "q": q[:c.SEARCH_MAX]}
    try:
        if before:
            query["before"] = datetime.fromisoformat(before)
        page = c.InboxPage.model_validate(await call(request, c.SERVICE, c.EP_INBOX_LIST, c.InboxQuery(**query)))
    except (errors.ServiceError, ValueError) as exc:
        return _failed(request, "nt_inbox", exc, user)
    return render(request, "notices/inbox.html", user=user, page=page, folder=query["folder"], q=query["q"], jst=jst)


@router.get("/inbox/{item_id}", response_class=HTMLResponse)
async def item_page(request: Request, item_id: str, user: CurrentUser) -> Response:
    """Opening an item reads it (the service marks it read and counts it as opened, never telling staff who)."""
    try:
        item = c.InboxDetail.model_validate(await call(request, c.SERVICE, c.EP_INBOX_GET,
                                                       c.ItemAction(actor=actor_of(user), item_id=item_id)))
    except (errors.ServiceError, ValueError) as exc:
        return _failed(request, "nt_inbox", exc, user)
    return render(request, "notices/item.html", user=user, item=item, jst=jst)


@router.post("/inbox/{item_id}/mark")
async def mark(request: Request, item_id: str, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        done = c.InboxItem.model_validate(await call(request, c.SERVICE, c.EP_INBOX_MARK, c.MarkIn(
            actor=actor_of(user), item_id=item_id, mark=str(form.get("mark", "")))))
    except (errors.ServiceError, ValueError) as exc:
        return _failed(request, "nt_inbox", exc, user)
    return RedirectResponse("/inbox?folder=archive" if done.archived_at else "/inbox", status_code=303)


# ---- the person's life stage -----------------------------------------------------------------------------------------


def _answers(form: dict[str, Any]) -> dict[str, Any]:
    """The form as the contract takes it: empty fields are not said."""
    ages = [a for a in re.split(r"[,、，\s]+", str(form.get("children_ages", "")).strip()) if a]
    if any(not a.isdigit() for a in ages):
        raise ValueError("nt_ages_bad")
    events = [{"kind": k, "month": str(form.get(f"month_{k}", "")).strip() or None}
              for k in c.LIFE_EVENTS if form.get(f"event_{k}")]
    return {"district": str(form.get("district", "")).strip() or None,
            "age_band": str(form.get("age_band", "")).strip() or None,
            "children_ages": [int(a) for a in ages], "caring": bool(form.get("caring")),
            "living_alone": bool(form.get("living_alone")), "events": events,
            "interests": list(form.get("interests", []))}


async def _life_page(request: Request, user: Any, *, status: int = 200, error: str = "",
                     answers: dict[str, Any] | None = None) -> Response:
    try:
        life = c.LifeStage.model_validate(await call(request, c.SERVICE, c.EP_LIFE_GET,
                                                     c.PersonQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return _failed(request, "nt_life", exc, user)
    shown = answers if answers is not None else life.answers.model_dump(mode="json")
    done = request.query_params.get("done", "")
    return render(request, "notices/life.html", status=status, user=user, a=shown, life=life, error=error,
                  districts=request.app.state.town.districts, ages=c.AGE_BANDS, life_events=c.LIFE_EVENTS,
                  done=t(f"nt_{done}", ps.lang(request)) if done in ("saved", "deleted") else "", jst=jst)


@router.get("/me/life", response_class=HTMLResponse)
async def life_page(request: Request, user: CurrentUser) -> Response:
    return await _life_page(request, user)


@router.post("/me/life")
async def life_save(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    answers: dict[str, Any] = {}
    try:
        answers = _answers(form)
        await call(request, c.SERVICE, c.EP_LIFE_PUT, c.LifeStagePut(actor=actor_of(user), **answers))
    except ValidationError as exc:
        return await _life_page(request, user, status=400, error=why(exc, lang), answers=answers or None)
    except ValueError as exc:
        return await _life_page(request, user, status=400, error=t(str(exc), lang))
    except errors.ServiceError as exc:
        return await _life_page(request, user, status=bad_status(exc), error=why(exc, lang), answers=answers)
    return RedirectResponse("/me/life?done=saved", status_code=303)


@router.post("/me/life/delete")
async def life_delete(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await call(request, c.SERVICE, c.EP_LIFE_DELETE, c.PersonQuery(actor=actor_of(user)))
    except errors.ServiceError as exc:
        return _failed(request, "nt_life", exc, user)
    return RedirectResponse("/me/life?done=deleted", status_code=303)


# ---- other towns whose public notices the person receives (issue 18 point 3) -------------------------------------


async def _towns_page(request: Request, user: Any, *, status: int = 200, error: str = "") -> Response:
    try:
        towns = tc.Towns.model_validate(await call(request, c.SERVICE, tc.EP_TOWNS_LIST,
                                                   tc.TownsQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return _failed(request, "nt_towns", exc, user)
    done = request.query_params.get("done", "")
    return render(request, "notices/towns.html", status=status, user=user, towns=towns, error=error,
                  done=t(f"nt_{done}", ps.lang(request)) if done in ("followed", "unfollowed") else "")


@router.get("/me/towns", response_class=HTMLResponse)
async def towns_page(request: Request, user: CurrentUser) -> Response:
    return await _towns_page(request, user)


@router.post("/me/towns")
async def towns_save(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    follow = form.get("action") == "follow"
    try:
        data = tc.TownFollow(actor=actor_of(user), node=str(form.get("node", "")))
        await call(request, c.SERVICE, tc.EP_TOWNS_FOLLOW if follow else tc.EP_TOWNS_UNFOLLOW, data)
    except ValidationError as exc:
        return await _towns_page(request, user, status=400, error=why(exc, ps.lang(request)))
    except errors.ServiceError as exc:
        return await _towns_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/me/towns?done={'followed' if follow else 'unfollowed'}", status_code=303)
