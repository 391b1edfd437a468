"""The portal's inbox (電子私書箱) pages: a person's notices and official messages, read and unread, archive and
search. Each page asks the notices service over NATS with the person as an Actor inside the request; the service
answers with that person's own rows only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.deps import CurrentUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices as c

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
    "nt_new": ("未読", "New"),
    "nt_withdrawn": ("取り下げ", "Withdrawn"),
})
add_nav("nt_inbox", "/inbox", "user")


def jst(t_: datetime | None) -> str:
    return t_.astimezone(JST).strftime("%Y-%m-%d %H:%M") if t_ else ""


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, user: CurrentUser, folder: str = "inbox", q: str = "",
                     before: str = "") -> Response:
    lang = ps.lang(request)
    query: dict[str, Any] = {"actor": actor_of(user), "folder": folder if folder in ("unread", "archive") else "inbox",
                             "q": q[:c.SEARCH_MAX]}
    try:
        if before:
            query["before"] = datetime.fromisoformat(before)
        page = c.InboxPage.model_validate(await call(request, c.SERVICE, c.EP_INBOX_LIST, c.InboxQuery(**query)))
    except (errors.ServiceError, ValueError) as exc:
        status = error_status(exc) if isinstance(exc, errors.ServiceError) else 400
        return message(request, heading=t("nt_inbox", lang), paragraphs=[why(exc, lang)], status=status, user=user)
    return render(request, "notices/inbox.html", user=user, page=page, folder=query["folder"], q=query["q"], jst=jst)
