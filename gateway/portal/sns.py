"""The portal's community SNS pages: theme communities (a public list and page, opening, joining and leaving, the
leader's tools), posts and comments, and friends. Each page asks the sns service over NATS with the person as an
Actor inside the request; the service decides what they may do. A friend request first asks the identity service
whether the handle is a person known here (people.profile: the public profile only), then passes the name it got
to the sns service. Every form is CSRF-protected (gateway.deps.CsrfForm); a refusal shows the form's page again with
the reason and the service's status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser
from gateway.portal import session as ps
from gateway.portal.common import (
    AgainFn,
    actor_of,
    add_nav,
    again_page,
    bad_status,
    call,
    error_status,
    message,
    render,
    why,
)
from gateway.portal.confirm import ask_first, confirm_page, confirmed
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import jst
from towntip.kernel import categories, errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts import sns_openings as oc

router = APIRouter(include_in_schema=False)
PAGE = 10  # posts per page

add_words({
    "nav_communities": ("コミュニティ", "Communities"),
    "nav_friends": ("トモダチ", "Friends"),
    "sn_communities": ("テーマコミュニティ", "Theme communities"),
    "sn_intro": ("子ども、福祉、環境、まちづくり…暮らしのテーマごとに、だれでもコミュニティを開設・参加できます。",
                 "Children, welfare, the environment, town-making…: anyone can open or join a community on a "
                 "theme of daily life."),
    "sn_category": ("カテゴリ", "Category"),
    "sn_all": ("すべてのカテゴリ", "All categories"),
    "sn_search": ("名前で検索", "Search by name"),
    "sn_filter": ("絞り込む", "Filter"),
    "sn_mine": ("参加中のみ", "Only mine"),
    "sn_none": ("該当するコミュニティはまだありません。", "No community yet."),
    "sn_more": ("さらに表示", "More"),
    "sn_first": ("最初から", "From the start"),
    "sn_open": ("コミュニティを開設", "Open a community"),
    "sn_open_hint": ("開設した人がコミュニティリーダーになります。", "Whoever opens it becomes its community leader."),
    "sn_name": ("コミュニティ名", "Name"),
    "sn_description": ("説明", "Description"),
    "sn_categories": ("カテゴリ（1〜5個）", "Categories (1 to 5)"),
    "sn_leader": ("コミュニティリーダー", "Community leader"),
    "sn_members": ("メンバー", "Members"),
    "sn_people": ("人", " people"),
    "sn_closed": ("終了（閲覧のみ）", "Closed (read-only)"),
    "sn_open_status": ("活動中", "Active"),
    "sn_join": ("参加する", "Join"),
    "sn_leave": ("退出する", "Leave"),
    "sn_login_to_join": ("参加・投稿するにはログインしてください。", "Log in to join and post."),
    "sn_you_lead": ("あなたはこのコミュニティのリーダーです。", "You lead this community."),
    "sn_you_member": ("参加中です。", "You are a member."),
    "sn_posts": ("投稿", "Posts"),
    "sn_no_posts": ("まだ投稿はありません。", "No post yet."),
    "sn_new_post": ("投稿する", "Write a post"),
    "sn_title": ("タイトル", "Title"),
    "sn_body": ("本文", "Text"),
    "sn_send": ("投稿", "Post"),
    "sn_older": ("さらに古い投稿", "Older posts"),
    "sn_newest": ("最新の投稿へ", "Newest posts"),
    "sn_comments": ("コメント", "Comments"),
    "sn_older_comments": ("さらに古いコメント", "Older comments"),
    "sn_newest_comments": ("最新のコメントへ", "Newest comments"),
    "sn_comment": ("コメントする", "Comment"),
    "sn_no_comments": ("コメントはまだありません。", "No comment yet."),
    "sn_deleted_user": ("退会したユーザー", "deleted user"),
    "sn_hidden": ("リーダーにより非表示になりました", "Hidden by the leader"),
    "sn_hidden_staff": ("職員により非表示になりました", "Hidden by the node's staff"),
    "sn_reason": ("理由", "Reason"),
    "sn_hide": ("非表示にする", "Hide"),
    "sn_edit": ("編集して保存", "Save changes"),
    "sn_edited": ("編集済み", "edited"),
    "sn_delete": ("削除", "Delete"),
    "sn_leader_tools": ("リーダーの操作", "Leader's tools"),
    "sn_remove": ("メンバーから外す", "Remove"),
    "sn_hand_over": ("リーダーを引き継ぐ", "Hand leadership over"),
    "sn_close": ("コミュニティを終了する", "Close the community"),
    "sn_close_hint": ("終了すると投稿・参加はできなくなり、内容は閲覧のみで残ります。",
                      "A closed community keeps its posts, read-only; nobody can join or post."),
    "sn_back": ("コミュニティへ戻る", "Back to the community"),
    "sn_friends": ("トモダチ", "Friends"),
    "sn_add_friend": ("トモダチ申請", "Send a friend request"),
    "sn_handle": ("相手のID（例: hanako、他のまちの人は hanako@tsurugashima）",
                  "Their ID (e.g. hanako; someone of another town: hanako@tsurugashima)"),
    "sn_find_people": ("名前で探す", "Find by name"),
    "sn_search_label": ("表示名またはニックネーム（2文字以上）", "Display name or nickname (2 characters or more)"),
    "sn_search_button": ("検索", "Search"),
    "sn_search_none": ("見つかりませんでした。相手が「名前で検索されてもよい」を設定していない場合は、"
                       "IDかQRコードで申請してください。",
                       "Nobody found. If they have not chosen to be findable, use their ID or QR code."),
    "sn_search_short": ("2文字以上入力してください。", "Type 2 characters or more."),
    "sn_already_friend": ("トモダチです", "Already friends"),
    "sn_my_qr": ("わたしのQRコード", "My QR code"),
    "sn_my_qr_hint": ("相手のスマートフォンのカメラでこのコードを読み取ってもらうと、"
                      "あなたへのトモダチ申請の画面が開きます。",
                      "Let them scan this code with their phone's camera: it opens a friend request to you."),
    "sn_my_id": ("わたしのID", "My ID"),
    "sn_add_confirm": ("この人にトモダチ申請を送りますか？", "Send a friend request to this person?"),
    "sn_not_found_person": ("このIDの人は見つかりませんでした。", "Nobody with this ID was found."),
    "sn_send_request": ("申請する", "Send"),
    "sn_incoming": ("届いた申請", "Requests to you"),
    "sn_outgoing": ("送った申請", "Requests you sent"),
    "sn_accept": ("承認", "Accept"),
    "sn_decline": ("お断り", "Decline"),
    "sn_cancel": ("取り消す", "Cancel"),
    "sn_unfriend": ("トモダチをやめる", "Remove"),
    "sn_no_friends": ("まだトモダチはいません。", "No friends yet."),
    "sn_no_requests": ("ありません。", "None."),
    "sn_since": ("から", "since"),
    "sn_became_friends": ("相手からも申請が届いていたので、トモダチになりました。",
                          "They had asked you too: you are friends now."),
    "sn_request_sent": ("申請を送りました。", "Request sent."),
    "sn_not_found": ("見つかりません。", "Not found."),
    "sn_likes": ("共感", "Empathy"),
    "sn_like": ("共感する", "Empathise"),
    "sn_unlike": ("共感を取り消す", "Withdraw empathy"),
    "sn_report": ("通報する", "Report"),
    "sn_report_person": ("この人を通報する", "Report this person"),
    "sn_reported": ("通報を受け付けました。職員が確認します。", "Reported: the node's staff will look at it."),
    "sn_report_hint": ("不適切な内容を職員に知らせます。通報したことは相手に伝わりません。",
                       "Tell the node's staff about it. The author is not told who reported."),
    "sn_report_reason": ("理由", "Reason"),
    "sn_report_detail": ("くわしく（任意）", "Details (optional)"),
    "sn_report_send": ("職員に通報する", "Send to staff"),
    "sn_reason_spam": ("宣伝・スパム", "Advertising or spam"),
    "sn_reason_harassment": ("嫌がらせ・誹謗中傷", "Harassment or abuse"),
    "sn_reason_personal_info": ("個人情報の掲載", "Someone's personal data"),
    "sn_reason_inappropriate": ("不適切な内容", "Inappropriate content"),
    "sn_reason_other": ("その他", "Other"),
})
add_nav("nav_communities", "/communities", "all", "join")
add_nav("nav_friends", "/friends", "user", "menu")


async def _call(request: Request, endpoint: str, payload: BaseModel | dict[str, Any]) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


def _page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    names = categories.labels(lang)
    return render(request, f"sns/{template}", status=status, user=user, jst=jst, category_names=names,
                  categories=categories.all_categories(), **ctx)


def _refusal(request: Request, exc: errors.ServiceError, user: ic.User | None) -> HTMLResponse:
    lang = ps.lang(request)
    heading = t("sn_not_found", lang) if isinstance(exc, errors.NotFound) else t("error", lang)
    return message(request, heading=heading, paragraphs=[why(exc, lang)], status=error_status(exc), user=user,
                   link=("/communities", t("sn_communities", lang)))


async def _action(request: Request, form: dict[str, Any], user: ic.User,
                  make: Callable[[Any, dict[str, Any], Any], tuple[str, Any]], done: Callable[[Any], str],
                  again: AgainFn) -> Response:
    """A form post (its token checked, the person logged in: the route's dependencies): the sns call the form
    makes, then a redirect to `done(answer)`, or the form's page again with the reason and the refusal's status
    (nothing changed)."""
    raw = await request.form()  # the parsed form (CsrfForm checked its token and size): repeated fields
    try:
        endpoint, payload = make(actor_of(user), form, raw)
        answer = await _call(request, endpoint, payload)
    except (ValidationError, errors.ServiceError) as exc:
        return await again(request, user, bad_status(exc), why(exc, ps.lang(request)))
    return RedirectResponse(done(answer), status_code=303)


# ---- communities -----------------------------------------------------------------------------------------------


async def _list_page(request: Request, user: ic.User | None, *, status: int = 200, error: str | None = None,
                     form: dict[str, Any] | None = None, chosen: list[str] | None = None) -> Response:
    q = request.query_params
    category = q.get("category") or None
    if category is not None and category not in categories.codes():
        category = None
    search = (q.get("q") or "")[: c.NAME_MAX]
    mine = bool(q.get("mine")) and user is not None
    before = q.get("before") or None
    try:
        found = c.CommunityList.model_validate(await _call(request, c.EP_COMMUNITY_LIST, c.CommunityListQuery(
            category=category, search=search, member=actor_of(user) if mine and user is not None else None,
            before=before)))
    except ValidationError:  # a cursor that is no id: the first page
        return RedirectResponse("/communities", status_code=303)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    more = None
    if found.next:
        more = "/communities?" + urlencode({k: v for k, v in (("category", category or ""), ("q", search),
                                                              ("mine", "1" if mine else ""), ("before", found.next))
                                            if v})
    return _page(request, "communities.html", user=user, status=status, error=error, found=found.communities,
                 category=category or "", search=search, mine=mine, form=form or {}, chosen=chosen or [],
                 more=more, paged=bool(before))


@router.get("/communities", response_class=HTMLResponse)
async def community_list(request: Request, user: OptionalUser) -> Response:
    return await _list_page(request, user)


@router.post("/communities")
async def community_open(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    chosen = (await request.form()).getlist("categories")
    try:
        made = c.Community.model_validate(await _call(request, c.EP_COMMUNITY_OPEN, c.CommunityOpen(
            actor=actor_of(user), name=form.get("name", ""), description=form.get("description", ""),
            categories=chosen)))
    except (ValidationError, errors.ServiceError) as exc:
        return await _list_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)), form=form,
                                chosen=[str(x) for x in chosen])
    return RedirectResponse(f"/communities/{made.id}", status_code=303)


async def _community(request: Request, cid: str, user: ic.User | None) -> c.Community:
    try:
        q = c.CommunityQuery(community_id=cid, actor=actor_of(user) if user else None)
    except ValidationError:
        raise c.COMMUNITY_NOT_FOUND(f"no community {cid}") from None
    return c.Community.model_validate(await _call(request, c.EP_COMMUNITY_GET, q))


async def _community_page(request: Request, user: ic.User | None, cid: str, *, status: int = 200,
                          error: str | None = None, form: dict[str, Any] | None = None) -> Response:
    before = request.query_params.get("before")
    try:
        community = await _community(request, cid, user)
        members = c.MemberList.model_validate(await _call(request, c.EP_COMMUNITY_MEMBERS,
                                                          c.CommunityQuery(community_id=community.id))).members
        page = c.PostList.model_validate(await _call(request, c.EP_POST_LIST, c.PostListQuery(
            community_id=community.id, limit=PAGE, actor=actor_of(user) if user else None,
            before=int(before) if before and before.isdigit() and 0 < len(before) < 19 else None)))
        host_openings = oc.OpeningList.model_validate(await _call(request, oc.EP_OPENING_LIST, oc.OpeningListQuery(
            host_id=community.id))).openings
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    # Its leader posts openings for it (gateway/portal/sns_matching.py); the service decides again on posting.
    lead = community.my_role == "leader" and community.status == "open"
    return _page(request, "community.html", user=user, status=status, error=error, community=community,
                 members=members, posts=page.posts, next=page.next, paged=bool(before), form=form or {},
                 host_openings=host_openings, new_opening=f"/openings/new?community={community.id}" if lead else None,
                 report_reasons=c.REPORT_REASONS,
                 notice=t("sn_reported", ps.lang(request)) if request.query_params.get("reported")
                 else t("saved", ps.lang(request)) if request.query_params.get("saved") else None)


@router.get("/communities/{cid}", response_class=HTMLResponse)
async def community_page(cid: str, request: Request, user: OptionalUser) -> Response:
    return await _community_page(request, user, cid)


@router.get("/communities/{cid}/close", response_class=HTMLResponse)
async def close_page(cid: str, request: Request, user: CurrentUser) -> Response:
    """Closing cannot be undone: the leader is told what it means before the post (gateway/portal/confirm.py)."""
    try:
        community = await _community(request, cid, user)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return confirm_page(request, user, key="close", action=f"/communities/{community.id}/close",
                        back=f"/communities/{community.id}", facts=[("cf_community", community.name)], steps=3)


def _community_action(endpoint: str, model: type[BaseModel], *fields: str) -> Callable[..., Awaitable[Response]]:
    """A button on the community's page: join, leave, close, remove a member, hand over."""
    async def post(cid: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
        if endpoint == c.EP_COMMUNITY_CLOSE and not confirmed(form):
            return ask_first(f"/communities/{quote(cid, safe='')}/close")
        return await _action(
            request, form, user,
            lambda actor, form, raw: (endpoint, model(actor=actor, community_id=cid,
                                                      **{f: form.get(f, "") for f in fields})),
            lambda _: f"/communities/{cid}?saved=1", again_page(_community_page, cid))
    return post


for _path, _ep, _model, _fields in (
    ("join", c.EP_COMMUNITY_JOIN, c.CommunityAction, ()),
    ("leave", c.EP_COMMUNITY_LEAVE, c.CommunityAction, ()),
    ("close", c.EP_COMMUNITY_CLOSE, c.CommunityAction, ()),
    ("remove", c.EP_COMMUNITY_REMOVE, c.MemberAction, ("member",)),
    ("hand_over", c.EP_COMMUNITY_HAND_OVER, c.MemberAction, ("member",)),
):
    router.add_api_route(f"/communities/{{cid}}/{_path}", _community_action(_ep, _model, *_fields),
                         methods=["POST"], name=f"sns_{_path}")


@router.post("/communities/{cid}/report")
async def person_report(cid: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """A member reported to the node's staff (a reason from the list and free text), from the members' list."""
    return await _action(
        request, form, user, lambda actor, form, raw: (c.EP_REPORT_CREATE, c.ReportIn(
            actor=actor, kind="person", target=form.get("person", ""), reason=form.get("reason", ""),
            detail=form.get("detail", ""))),
        lambda _: f"/communities/{cid}?reported=1", again_page(_community_page, cid))


@router.post("/communities/{cid}/posts")
async def post_create(cid: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    async def again(request: Request, user: ic.User, status: int, error: str) -> Response:
        return await _community_page(request, user, cid, status=status, error=error, form=dict(await _posted(request)))
    return await _action(
        request, form, user, lambda actor, form, raw: (c.EP_POST_CREATE, c.PostCreate(
            actor=actor, community_id=cid, title=form.get("title", ""), body=form.get("body", ""))),
        lambda answer: f"/communities/{cid}/posts/{answer['id']}", again)


async def _posted(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if k != "csrf" and isinstance(v, str)}


# ---- one post --------------------------------------------------------------------------------------------------


async def _post_page(request: Request, user: ic.User | None, cid: str, pid: str, *, status: int = 200,
                     error: str | None = None) -> Response:
    before = request.query_params.get("before")
    try:
        if not pid.isdigit() or len(pid) > 18:
            raise c.POST_NOT_FOUND(f"no post {pid}")
        found = c.PostDetail.model_validate(await _call(request, c.EP_POST_GET, c.PostQuery(
            post_id=int(pid), actor=actor_of(user) if user else None, comments_limit=PAGE * 3,
            comments_before=int(before) if before and before.isdigit() and len(before) < 19 else None)))
        if found.community.id != cid:
            raise c.POST_NOT_FOUND(f"no post {pid} in this community")
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "post.html", user=user, status=status, error=error, post=found.post,
                 report_reasons=c.REPORT_REASONS,
                 community=found.community, comments=found.comments, next=found.next_comments, paged=bool(before),
                 notice=t("sn_reported", ps.lang(request)) if request.query_params.get("reported")
                 else t("saved", ps.lang(request)) if request.query_params.get("saved") else None)


@router.get("/communities/{cid}/posts/{pid}", response_class=HTMLResponse)
async def post_page(cid: str, pid: str, request: Request, user: OptionalUser) -> Response:
    return await _post_page(request, user, cid, pid)


def _item(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise errors.NotFound(f"no item {value}")
    return int(value)


POST_ACTIONS: dict[str, Callable[[Any, dict[str, Any], str], tuple[str, Any]]] = {
    "comments": lambda actor, form, pid: (c.EP_COMMENT_CREATE, c.CommentCreate(
        actor=actor, post_id=_item(pid), body=form.get("body", ""))),
    "edit": lambda actor, form, pid: (c.EP_POST_UPDATE, c.PostUpdate(
        actor=actor, post_id=_item(pid), title=form.get("title", ""), body=form.get("body", ""))),
    "hide": lambda actor, form, pid: (c.EP_POST_HIDE, c.HideIn(actor=actor, id=_item(pid),
                                                               reason=form.get("reason", ""))),
    "comment_hide": lambda actor, form, pid: (c.EP_COMMENT_HIDE, c.HideIn(
        actor=actor, id=_item(form.get("comment", "")), reason=form.get("reason", ""))),
    "comment_delete": lambda actor, form, pid: (c.EP_COMMENT_DELETE, c.ItemRef(
        actor=actor, id=_item(form.get("comment", "")))),
    # A report to the node's staff of the post or one of its comments: a reason from the list and free text.
    "report": lambda actor, form, pid: (c.EP_REPORT_CREATE, c.ReportIn(
        actor=actor, kind="comment" if form.get("comment") else "post",
        target=str(_item(form.get("comment") or pid)), reason=form.get("reason", ""),
        detail=form.get("detail", ""))),
    # 共感 on the post or one of its comments; `undo` withdraws it (the same button, pressed again).
    "like": lambda actor, form, pid: (lk.EP_LIKE_WITHDRAW if form.get("undo") else lk.EP_LIKE_GIVE, lk.LikeIn(
        actor=actor, kind="comment" if form.get("comment") else "post",
        id=str(_item(form.get("comment") or pid)))),
}


@router.get("/communities/{cid}/posts/{pid}/delete", response_class=HTMLResponse)
async def post_delete_page(cid: str, pid: str, request: Request, user: CurrentUser) -> Response:
    """Deleting a post takes its comments with it, for good: said before the post (gateway/portal/confirm.py)."""
    try:
        if not pid.isdigit() or len(pid) > 18:
            raise c.POST_NOT_FOUND(f"no post {pid}")
        found = c.PostDetail.model_validate(await _call(request, c.EP_POST_GET, c.PostQuery(
            post_id=int(pid), actor=actor_of(user), comments_limit=1)))
        if found.community.id != cid:
            raise c.POST_NOT_FOUND(f"no post {pid} in this community")
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    here = f"/communities/{found.community.id}/posts/{found.post.id}"
    return confirm_page(request, user, key="post_delete", action=f"{here}/delete", back=here,
                        facts=[("cf_community", found.community.name), ("cf_title", found.post.title)], steps=2)


@router.post("/communities/{cid}/posts/{pid}/{what}")
async def post_action(cid: str, pid: str, what: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    if what == "delete" and not confirmed(form):
        return ask_first(f"/communities/{quote(cid, safe='')}/posts/{quote(pid, safe='')}/delete")
    if what == "delete":
        return await _action(request, form, user, lambda actor, form, raw: (c.EP_POST_DELETE, c.ItemRef(actor=actor,
                                                                                              id=_item(pid))),
                             lambda _: f"/communities/{cid}?saved=1", again_page(_post_page, cid, pid))
    make = POST_ACTIONS.get(what)
    if make is None:
        return _refusal(request, errors.NotFound(f"no action {what}"), user)
    shown = "reported" if what == "report" else "saved"
    return await _action(request, form, user, lambda actor, form, raw: make(actor, form, pid),
                         lambda _: f"/communities/{cid}/posts/{pid}?{shown}=1", again_page(_post_page, cid, pid))


# ---- friends ---------------------------------------------------------------------------------------------------


async def _friends_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None,
                        notice: str | None = None, form: dict[str, Any] | None = None) -> Response:
    try:
        mine = c.Friends.model_validate(await _call(request, c.EP_FRIEND_LIST, c.FriendsQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    lang = ps.lang(request)
    query = (request.query_params.get("q") or "").strip()[:50]
    found: list[ic.FoundPerson] | None = None
    if query and error is None:
        try:
            found = ic.PeopleFound.model_validate(await call(
                request, ic.SERVICE, ic.EP_PEOPLE_SEARCH, ic.PeopleSearchIn(query=query))).people
        except ValidationError:
            error = t("sn_search_short", lang)
        except errors.ServiceError as exc:
            error = why(exc, lang)
    friends = {f.global_handle for f in mine.friends}
    if notice is None and request.query_params.get("sent"):
        notice = t("sn_became_friends" if request.query_params["sent"] == "friends" else "sn_request_sent", lang)
    elif notice is None and request.query_params.get("saved"):
        notice = t("saved", lang)
    return _page(request, "friends.html", user=user, status=status, error=error, notice=notice, mine=mine,
                 form=form or {}, query=query, found=found, friends=friends, me=user.global_handle)


@router.get("/friends", response_class=HTMLResponse)
async def friends_page(request: Request, user: CurrentUser) -> Response:
    return await _friends_page(request, user)


@router.post("/friends/request")
async def friend_request(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    handle = str(form.get("handle", "")).strip().lower()
    if handle and "@" not in handle:  # a person of this town: their ID without the town
        handle = f"{handle}@{request.app.state.settings.node_id}"
    try:
        q = ic.ProfileLookupIn(handle=handle)
        # Who is this? The identity service answers for people known at this node (404 otherwise).
        found = ic.PublicProfile.model_validate(await call(request, ic.SERVICE, ic.EP_PEOPLE_PROFILE, q))
        sent = c.FriendRequest.model_validate(await _call(request, c.EP_FRIEND_REQUEST, c.FriendRequestIn(
            actor=actor_of(user), to=found.global_handle, to_name=found.display_name)))
    except (ValidationError, errors.ServiceError) as exc:
        return await _friends_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                   form={"handle": handle})
    return RedirectResponse(f"/friends?sent={'friends' if sent.became_friends else '1'}", status_code=303)


@router.get("/friends/qr", response_class=HTMLResponse)
async def friends_qr(request: Request, user: CurrentUser) -> Response:
    """My QR code: the address of a friend request to me, for another person's phone camera (drawn by segno)."""
    base = request.app.state.settings.public_url.rstrip("/")
    link = f"{base}/friends/add?h={quote(user.global_handle)}"
    svg = segno.make(link, error="m").svg_inline(scale=6, dark="#1d1d1f", light="#ffffff")
    return _page(request, "friends_qr.html", user=user, svg=Markup(svg), link=link, me=user.global_handle)


@router.get("/friends/add", response_class=HTMLResponse)
async def friends_add(request: Request, user: CurrentUser) -> Response:
    """Where a scanned QR code leads: who this is, and a button to send them a friend request (a POST, with the
    form's CSRF token: opening the link alone sends nothing)."""
    lang = ps.lang(request)
    try:
        q = ic.ProfileLookupIn(handle=(request.query_params.get("h") or "").strip().lower())
        found = ic.PublicProfile.model_validate(await call(request, ic.SERVICE, ic.EP_PEOPLE_PROFILE, q))
    except (ValidationError, errors.ServiceError):
        return message(request, heading=t("sn_add_friend", lang), paragraphs=[t("sn_not_found_person", lang)],
                       status=404, link=("/friends", t("sn_friends", lang)), user=user)
    return _page(request, "friends_add.html", user=user, person=found)


@router.post("/friends/remove")
async def friend_remove(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    return await _action(request, form, user, lambda actor, form, raw: (c.EP_FRIEND_REMOVE, c.FriendRemove(
        actor=actor, friend=form.get("friend", ""))), lambda _: "/friends?saved=1", again_page(_friends_page))


ANSWERS = {"accept": c.EP_FRIEND_ACCEPT, "decline": c.EP_FRIEND_DECLINE, "cancel": c.EP_FRIEND_CANCEL}


@router.post("/friends/{rid}/{what}")
async def friend_answer(rid: str, what: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    def make(actor: Any, form: dict[str, Any], raw: Any) -> tuple[str, Any]:
        if what not in ANSWERS:
            raise errors.NotFound(f"no action {what}")
        return ANSWERS[what], c.RequestAction(actor=actor, request_id=rid)

    return await _action(request, form, user, make, lambda _: "/friends?saved=1", again_page(_friends_page))
