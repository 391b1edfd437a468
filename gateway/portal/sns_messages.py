"""Direct messages (ダイレクト・メッセージ) of the community SNS: /messages (the person's conversations with their
unread counts, and a form to write to someone by ID) and /messages/{handle} (the thread, newest first, the form, the
block and mute buttons). Writing to someone first asks the identity service whether the handle is a person known
here (people.profile), as a friend request does. Opening a thread marks it read. Only the two people of a
conversation see it: every call carries the person as the actor and the sns service answers their own only. Every
form carries the CSRF token; a refusal shows the page again with the words of its code and nothing changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import jst
from towntip.kernel import errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import sns as c

router = APIRouter(include_in_schema=False)

add_words({
    "nav_messages": ("メッセージ", "Messages"),
    "nav_messages_desc": ("1対1のメッセージ。本人どうしだけが読めます。",
                          "One-to-one messages, read by the two of you only."),
    "dm_title": ("メッセージ", "Messages"),
    "dm_intro": ("トモダチや地域の人と1対1でやりとりできます。内容は送った人と受け取った人だけが読めます"
                 "（職員も読めません）。",
                 "Write to one person. Only the two of you can read it (the node's staff cannot)."),
    "dm_unread_total": ("未読", "Unread"),
    "dm_none": ("まだメッセージはありません。", "No message yet."),
    "dm_new": ("新しいメッセージ", "New message"),
    "dm_to": ("相手のID（例: hanako、他のまちの人は hanako@tsurugashima）",
              "Their ID (e.g. hanako; someone of another town: hanako@tsurugashima)"),
    "dm_body": ("メッセージ（2,000文字まで）", "Message (up to 2,000 characters)"),
    "dm_send": ("送信", "Send"),
    "dm_you": ("あなた", "You"),
    "dm_muted": ("ミュート中", "Muted"),
    "dm_blocked": ("ブロック中", "Blocked"),
    "dm_block": ("ブロックする", "Block"),
    "dm_unblock": ("ブロックを解除", "Unblock"),
    "dm_mute": ("ミュートする", "Mute"),
    "dm_unmute": ("ミュートを解除", "Unmute"),
    "dm_block_hint": ("ブロックすると、相手はあなたにメッセージを送れなくなります。ミュートすると、"
                      "メッセージは届きますが未読の数に数えません。",
                      "Blocked, they cannot message you. Muted, their messages still arrive but are not "
                      "counted as unread."),
    "dm_thread_none": ("まだやりとりはありません。最初のメッセージを送りましょう。",
                       "Nothing yet: send the first message."),
    "dm_older": ("さらに古いメッセージ", "Older messages"),
    "dm_newest": ("最新のメッセージへ", "Newest messages"),
    "dm_back": ("メッセージ一覧へ", "All messages"),
    "dm_sent": ("送信しました。", "Sent."),
    "dm_saved": ("設定しました。", "Saved."),
    "dm_not_found_person": ("このIDの人は見つかりませんでした。", "Nobody with this ID was found."),
    "dm_write": ("メッセージを送る", "Send a message"),
    "dm_unread_mypage": ("未読のメッセージ", "Unread messages"),
})
add_nav("nav_messages", "/messages", "user", "menu")

PEER_ACTIONS = {"block": {"blocked": True}, "unblock": {"blocked": False}, "mute": {"muted": True},
                "unmute": {"muted": False}}


def path_of(handle: str) -> str:
    """A thread's address (the @ of a global handle kept readable)."""
    return "/messages/" + quote(handle, safe="@")


def _handle(request: Request, raw: str) -> str:
    """A person's ID as typed: a bare name is a person of this town."""
    handle = raw.strip().lower()
    return f"{handle}@{request.app.state.settings.node_id}" if handle and "@" not in handle else handle


async def _sns(request: Request, endpoint: str, payload: Any) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


async def _list_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None,
                     form: dict[str, Any] | None = None) -> Response:
    lang = ps.lang(request)
    try:
        before = request.query_params.get("before") or None
        found = c.Conversations.model_validate(await _sns(request, c.EP_MESSAGE_CONVERSATIONS, c.ConversationsQuery(
            actor=actor_of(user), before=before)))
    except ValidationError:  # a cursor that is no id: the first page
        return RedirectResponse("/messages", status_code=303)
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=error_status(exc),
                       user=user)
    return render(request, "sns/messages.html", status=status, user=user, error=error, found=found, jst=jst,
                  form=form or {}, paged=bool(before), path_of=path_of)


@router.get("/messages", response_class=HTMLResponse)
async def messages_page(request: Request, user: CurrentUser) -> Response:
    return await _list_page(request, user)


async def _known(request: Request, handle: str) -> ic.PublicProfile:
    """The identity service answers for people known at this node (404 otherwise)."""
    return ic.PublicProfile.model_validate(await call(request, ic.SERVICE, ic.EP_PEOPLE_PROFILE,
                                                      ic.ProfileLookupIn(handle=handle)))


async def _send(request: Request, user: ic.User, handle: str, body: str) -> c.Message:
    found = await _known(request, handle)
    return c.Message.model_validate(await _sns(request, c.EP_MESSAGE_SEND, c.MessageIn(
        actor=actor_of(user), to=found.global_handle, to_name=found.display_name, body=body)))


@router.post("/messages")
async def message_new(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    handle = _handle(request, str(form.get("handle", "")))
    body = str(form.get("body", ""))
    try:
        await _send(request, user, handle, body)
    except (ValidationError, errors.ServiceError) as exc:
        return await _list_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                form={"handle": handle, "body": body})
    return RedirectResponse(f"{path_of(handle)}?sent=1", status_code=303)


async def _thread_page(request: Request, user: ic.User, handle: str, *, status: int = 200,
                       error: str | None = None, body: str = "") -> Response:
    lang = ps.lang(request)
    before = request.query_params.get("before") or None
    try:
        peer = await _known(request, handle)
        thread = c.Thread.model_validate(await _sns(request, c.EP_MESSAGE_THREAD, c.ThreadQuery(
            actor=actor_of(user), peer=peer.global_handle, before=before)))
    except (ValidationError, errors.ServiceError):
        return message(request, heading=t("dm_title", lang), paragraphs=[t("dm_not_found_person", lang)],
                       status=404, link=("/messages", t("dm_back", lang)), user=user)
    if thread.unread and thread.messages and not before:  # opened: read up to the newest shown
        await _sns(request, c.EP_MESSAGE_READ, c.ReadIn(actor=actor_of(user), peer=peer.global_handle,
                                                        upto=thread.messages[0].id))
    notice = None
    if request.query_params.get("sent"):
        notice = t("dm_sent", lang)
    elif request.query_params.get("saved"):
        notice = t("dm_saved", lang)
    return render(request, "sns/message_thread.html", status=status, user=user, error=error, notice=notice,
                  thread=thread, peer=peer, jst=jst, body=body, paged=bool(before), me=user.global_handle,
                  path=path_of(peer.global_handle))


@router.get("/messages/{handle}", response_class=HTMLResponse)
async def thread_page(handle: str, request: Request, user: CurrentUser) -> Response:
    return await _thread_page(request, user, _handle(request, handle))


@router.post("/messages/{handle}")
async def message_send(handle: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    handle = _handle(request, handle)
    body = str(form.get("body", ""))
    try:
        await _send(request, user, handle, body)
    except (ValidationError, errors.ServiceError) as exc:
        return await _thread_page(request, user, handle, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                  body=body)
    return RedirectResponse(f"{path_of(handle)}?sent=1", status_code=303)


@router.post("/messages/{handle}/{what}")
async def message_peer(handle: str, what: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    handle = _handle(request, handle)
    try:
        if what not in PEER_ACTIONS:
            raise errors.NotFound(f"no action {what}")
        await _sns(request, c.EP_MESSAGE_PEER, c.PeerSettingIn(actor=actor_of(user), peer=handle,
                                                               **PEER_ACTIONS[what]))
    except (ValidationError, errors.ServiceError) as exc:
        return await _thread_page(request, user, handle, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"{path_of(handle)}?saved=1", status_code=303)
