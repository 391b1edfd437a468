"""The portal's blogs (issue 20 point 2): /blogs (the entries the person may see, newest first), /blogs/new (an
entry with up to four pictures, each with its description), /blogs/{id} (the entry, its pictures, comments, 共感
and a report to staff), /blogs/mine (the person's own, to delete with the portal's confirmation), and the pictures.

Pictures are prepared here before anything is sent (towntip/kernel/images.py, Pillow: checked by content, pixel
limit, upright, EXIF with the GPS position and every other metadata dropped, resized), off the event loop; a picture
that is refused (not a picture, too big, too many pixels) shows the form again and nothing is written. The entry is
then made and its pictures sent one by one (each is most of a bus message); should one still be refused, the entry
is deleted again. The sns service decides who sees what (everyone, friends, a community's members) on every read,
pictures included: a picture of an entry that is not public is served `private`, never to a shared cache."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.deps import CsrfForm, CsrfPictures, CurrentUser, OptionalUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.confirm import ask_first, confirm_page, confirmed
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import jst
from towntip.kernel import errors, images
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import sns as c

router = APIRouter(include_in_schema=False)
PAGE = 10

add_words({
    "bg_nav": ("ブログ", "Blogs"),
    "bg_nav_desc": ("活動の報告やイベントの感想を、写真とともに書いて読めます。",
                    "Activity reports and impressions of events, with photos."),
    "bg_title": ("まちのブログ", "Town blogs"),
    "bg_intro": ("活動の報告やイベントの感想など、一人ひとりのブログです。公開範囲は書いた人が選びます。",
                 "Residents' own blogs: activity reports, impressions of events. The author chooses who sees each."),
    "bg_new": ("ブログを書く", "Write an entry"),
    "bg_mine": ("自分のブログ", "My entries"),
    "bg_login_to_write": ("ブログを書くにはログインしてください。", "Log in to write an entry."),
    "bg_none": ("まだブログはありません。", "No entry yet."),
    "bg_older": ("さらに古いブログ", "Older entries"),
    "bg_newest": ("最新のブログへ", "Newest entries"),
    "bg_audience": ("公開範囲", "Who may see it"),
    "bg_aud_public": ("全体に公開", "Everyone"),
    "bg_aud_friends": ("トモダチだけ", "Friends only"),
    "bg_aud_community": ("コミュニティのメンバーだけ", "Members of a community"),
    "bg_community": ("コミュニティ（「コミュニティのメンバーだけ」のとき）",
                     "Community (for “members of a community”)"),
    "bg_no_community": ("選ばない", "None"),
    "bg_pictures": ("写真（4枚まで、任意）", "Photos (up to 4, optional)"),
    "bg_picture_n": ("写真{n}（JPEG・PNG・WebP、10MBまで）", "Photo {n} (JPEG, PNG or WebP, up to 10 MB)"),
    "bg_alt_n": ("写真{n}の説明（音声読み上げ用、例: 公園の花壇）",
                 "What photo {n} shows (read aloud to blind readers)"),
    "bg_privacy": ("写真の位置情報やカメラの情報は取り除いてから保存します。"
                   "人の顔が写る写真は、本人の了承を得てください。",
                   "Location and camera data are removed before saving. Ask people in your photos before posting."),
    "bg_alt_needed": ("写真には説明を書いてください。", "Write what each photo shows."),
    "bg_send": ("投稿する", "Publish"),
    "bg_back": ("ブログ一覧へ", "Back to the blogs"),
    "bg_delete": ("削除", "Delete"),
    "bg_deleted": ("ブログを削除しました。", "The entry was deleted."),
    "bg_hidden": ("職員により非表示になりました（あなたにだけ表示されています）",
                  "Hidden by the node's staff (shown to you only)"),
    "bg_comment_hidden": ("職員により非表示になりました", "Hidden by the node's staff"),
    "bg_photo_count": ("写真{n}枚", "{n} photos"),
    # what the staff's moderation queue calls the two kinds of reports blogs add (gateway/portal/sns_moderation.py)
    "md_kind_blog": ("ブログ", "Blog entry"), "md_kind_bcomment": ("ブログへのコメント", "Comment on a blog entry"),
    "cf_blog_delete": ("ブログを削除する", "Delete the entry"),
    "cf_blog_delete_do": ("削除する", "Delete"),
    "cf_blog_delete_1": ("このブログと、その写真・コメント・共感はすべて削除されます。",
                         "The entry, its photos, comments and empathy are all deleted."),
    "cf_blog_delete_2": ("削除したブログは元に戻せません。", "A deleted entry cannot be brought back."),
})
add_nav("bg_nav", "/blogs", "all", "join")
FILES = tuple(range(1, c.BLOG_PICTURES_MAX + 1))


async def _call(request: Request, endpoint: str, payload: Any) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


def _page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    return render(request, f"sns/{template}", status=status, user=user, jst=jst, **ctx)


def _refusal(request: Request, exc: errors.ServiceError, user: ic.User | None) -> HTMLResponse:
    lang = ps.lang(request)
    heading = t("sn_not_found", lang) if isinstance(exc, errors.NotFound) else t("error", lang)
    return message(request, heading=heading, paragraphs=[why(exc, lang)], status=error_status(exc), user=user,
                   link=("/blogs", t("bg_back", lang)))


def _cursor(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and 0 < len(value) < 19 else None


def _entry_id(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise c.BLOG_NOT_FOUND(f"no blog entry {value}")
    return int(value)


async def _list(request: Request, user: ic.User | None, *, mine: bool) -> Response:
    before = request.query_params.get("before")
    try:
        found = c.BlogList.model_validate(await _call(request, c.EP_BLOG_LIST, c.BlogListQuery(
            actor=actor_of(user) if user else None, author=user.global_handle if mine and user else None,
            before=_cursor(before), limit=PAGE)))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    lang = ps.lang(request)
    return _page(request, "blogs.html", user=user, entries=found.entries, next=found.next, paged=bool(before),
                 mine=mine, list_path="/blogs/mine" if mine else "/blogs",
                 notice=t("bg_deleted", lang) if request.query_params.get("deleted") else None)


@router.get("/blogs", response_class=HTMLResponse)
async def blog_list(request: Request, user: OptionalUser) -> Response:
    return await _list(request, user, mine=False)


@router.get("/blogs/mine", response_class=HTMLResponse)
async def blog_mine(request: Request, user: CurrentUser) -> Response:
    return await _list(request, user, mine=True)


async def _new_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None,
                    form: dict[str, Any] | None = None) -> Response:
    try:
        joined = c.CommunityList.model_validate(await _call(request, c.EP_COMMUNITY_LIST, c.CommunityListQuery(
            member=actor_of(user), include_closed=False, limit=c.PAGE_MAX))).communities
    except errors.ServiceError:
        joined = []  # the form still works for everyone and friends
    return _page(request, "blog_new.html", user=user, status=status, error=error, form=form or {},
                 communities=joined, audiences=c.BLOG_AUDIENCES, files=FILES)


@router.get("/blogs/new", response_class=HTMLResponse)
async def blog_new(request: Request, user: CurrentUser) -> Response:
    return await _new_page(request, user)


def _fitted(raw: bytes, side: int, most: int) -> bytes:
    """The prepared picture, in fewer bytes if a detailed photo needs it (a bus message holds about 1 MB)."""
    for quality in (85, 70, 55):
        data = images.prepare(raw, max_side=side, quality=quality).data
        if len(data) <= most:
            break
    return data  # still too big (a PNG of noise): the service refuses it, and the entry goes again


def _prepare(raw: bytes) -> tuple[str, str]:
    full = _fitted(raw, c.BLOG_FULL_SIDE, c.BLOG_FULL_BYTES)
    thumb = _fitted(raw, c.BLOG_THUMB_SIDE, c.BLOG_THUMB_BYTES)
    return base64.b64encode(full).decode(), base64.b64encode(thumb).decode()


async def _pictures(form: dict[str, Any], actor: Any, lang: str) -> list[c.BlogPictureAdd]:
    """The chosen pictures, prepared and checked against the contract (with a placeholder entry id) before anything
    is written: a refusal here leaves nothing behind."""
    out = []
    for n in FILES:
        upload = form.get(f"picture{n}")
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        raw = await upload.read(images.MAX_UPLOAD_BYTES + 1)
        if not raw:
            continue
        alt = str(form.get(f"alt{n}", "")).strip()
        if not alt:
            raise ValueError(t("bg_alt_needed", lang))
        # Decoding and resizing take a few hundred ms of CPU: off the event loop, so other pages keep answering.
        image, thumb = await asyncio.to_thread(_prepare, raw)
        out.append(c.BlogPictureAdd(actor=actor, entry_id=1, image=image, thumb=thumb, alt=alt))
    return out


@router.post("/blogs")
async def blog_create(request: Request, form: CsrfPictures, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    texts = {k: v for k, v in form.items() if isinstance(v, str)}
    actor = actor_of(user)
    try:
        pictures = await _pictures(form, actor, lang)
        audience = texts.get("audience") or "public"
        made = c.BlogEntry.model_validate(await _call(request, c.EP_BLOG_CREATE, c.BlogCreate(
            actor=actor, title=texts.get("title", ""), body=texts.get("body", ""), audience=audience,
            community_id=(texts.get("community_id") or None) if audience == "community" else None)))
    except ValueError as exc:  # a picture without its description (pydantic's errors are ValueErrors too)
        error = why(exc, lang) if isinstance(exc, ValidationError) else str(exc)
        return await _new_page(request, user, status=400, error=error, form=texts)
    except errors.ServiceError as exc:
        return await _new_page(request, user, status=bad_status(exc), error=why(exc, lang), form=texts)
    try:
        for picture in pictures:
            await _call(request, c.EP_BLOG_PICTURE_ADD, picture.model_copy(update={"entry_id": made.id}))
    except errors.ServiceError as exc:  # the entry goes again: a refused picture leaves nothing half-made
        await _call(request, c.EP_BLOG_DELETE, c.ItemRef(actor=actor, id=made.id))
        return await _new_page(request, user, status=bad_status(exc), error=why(exc, lang), form=texts)
    return RedirectResponse(f"/blogs/{made.id}", status_code=303)


async def _entry_page(request: Request, user: ic.User | None, eid: str, *, status: int = 200,
                      error: str | None = None) -> Response:
    before = request.query_params.get("before")
    try:
        found = c.BlogDetail.model_validate(await _call(request, c.EP_BLOG_GET, c.BlogQuery(
            entry_id=_entry_id(eid), actor=actor_of(user) if user else None, comments_limit=PAGE * 3,
            comments_before=_cursor(before))))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    lang = ps.lang(request)
    q = request.query_params
    return _page(request, "blog.html", user=user, status=status, error=error, entry=found.entry,
                 comments=found.comments, next=found.next_comments, paged=bool(before),
                 report_reasons=c.REPORT_REASONS,
                 notice=t("sn_reported", lang) if q.get("reported") else t("saved", lang) if q.get("saved") else None)


@router.get("/blogs/{eid}", response_class=HTMLResponse)
async def blog_page(eid: str, request: Request, user: OptionalUser) -> Response:
    return await _entry_page(request, user, eid)


@router.get("/blogs/{eid}/pictures/{pid}")
async def blog_picture(eid: str, pid: str, request: Request, user: OptionalUser) -> Response:
    """One picture (`?size=thumb` for the small one), to whoever may see the entry (the service decides)."""
    size = "thumb" if request.query_params.get("size") == "thumb" else "full"
    try:
        got = c.BlogPictureData.model_validate(await _call(request, c.EP_BLOG_PICTURE_GET, c.BlogPictureQuery(
            picture_id=pid, size=size, actor=actor_of(user) if user else None)))
    except ValidationError:
        return Response(status_code=404)
    except errors.ServiceError as exc:
        return Response(status_code=error_status(exc))
    cache = "public, max-age=604800, immutable" if got.public else "private, no-store"
    return Response(base64.b64decode(got.data), media_type=got.content_type, headers={
        "Cache-Control": cache, "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"})


@router.get("/blogs/{eid}/delete", response_class=HTMLResponse)
async def blog_delete_page(eid: str, request: Request, user: CurrentUser) -> Response:
    """Deleting takes the pictures, comments and 共感 with it, for good: said before the post (confirm.py)."""
    try:
        found = c.BlogDetail.model_validate(await _call(request, c.EP_BLOG_GET, c.BlogQuery(
            entry_id=_entry_id(eid), actor=actor_of(user), comments_limit=1)))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    here = f"/blogs/{found.entry.id}"
    return confirm_page(request, user, key="blog_delete", action=f"{here}/delete", back=here,
                        facts=[("cf_title", found.entry.title)], steps=2)


def _item(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise errors.NotFound(f"no item {value}")
    return int(value)


ENTRY_ACTIONS = ("delete", "comments", "comment_delete", "like", "report")


def _make(what: str, actor: Any, form: dict[str, Any], eid: str) -> tuple[str, Any]:
    comment = str(form.get("comment", ""))
    if what == "delete":
        return c.EP_BLOG_DELETE, c.ItemRef(actor=actor, id=_item(eid))
    if what == "comments":
        return c.EP_BLOG_COMMENT_CREATE, c.BlogCommentCreate(actor=actor, entry_id=_item(eid),
                                                             body=form.get("body", ""))
    if what == "comment_delete":
        return c.EP_BLOG_COMMENT_DELETE, c.ItemRef(actor=actor, id=_item(comment))
    if what == "like":  # on the entry or one of its comments; `undo` withdraws it (the same button again)
        return (lk.EP_LIKE_WITHDRAW if form.get("undo") else lk.EP_LIKE_GIVE,
                lk.LikeIn(actor=actor, kind="bcomment" if comment else "blog", id=str(_item(comment or eid))))
    if what == "report":
        return c.EP_REPORT_CREATE, c.ReportIn(actor=actor, kind="bcomment" if comment else "blog",
                                              target=str(_item(comment or eid)), reason=form.get("reason", ""),
                                              detail=form.get("detail", ""))
    raise errors.NotFound(f"no action {what}")


@router.post("/blogs/{eid}/{what}")
async def blog_action(eid: str, what: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    if what == "delete" and not confirmed(form):
        return ask_first(f"/blogs/{eid}/delete" if eid.isdigit() else "/blogs")
    try:
        endpoint, payload = _make(what, actor_of(user), form, eid)
        await _call(request, endpoint, payload)
    except (ValidationError, errors.ServiceError) as exc:
        if what == "delete" or isinstance(exc, errors.NotFound):
            lang = ps.lang(request)
            return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                           user=user, link=("/blogs", t("bg_back", lang)))
        return await _entry_page(request, user, eid, status=bad_status(exc), error=why(exc, ps.lang(request)))
    if what == "delete":
        return RedirectResponse("/blogs/mine?deleted=1", status_code=303)
    shown = "reported" if what == "report" else "saved"
    anchor = "#likes" if what == "like" else "#comments" if what.startswith("comment") else ""
    return RedirectResponse(f"/blogs/{eid}?{shown}=1{anchor}", status_code=303)
