"""A person's data everywhere (issue 20 point 7): the page that explains it and the archive with a part from every
service of this node.

`/settings/export` answers one zip: `identity.json` (the identity service's own export, by the session) and
`<service>.json` for every other service the node runs (`person.export`, asked in parallel, each given
EXPORT_TIMEOUT_S), and `summary.txt`, a readable summary in Japanese then English: when it was made (作成日時),
what each service keeps and how many rows, and by name any service that did not answer in time or failed (never
silently missing). Only the signed-in person gets their own archive: the gateway asks for the user id and global
handle of the session, never one from the request; the archive is `no-store`. Nothing is kept by the gateway.
"""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.deps import CurrentUser, SessionToken
from gateway.portal.common import call, call_identity, login_redirect, render
from gateway.portal.i18n import add_words
from towntip.kernel import errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as c
from towntip.kernel.contracts import privacy as pv

router = APIRouter(include_in_schema=False)

add_words({
    "mydata": ("わたしのデータ", "My data"),
    "mydata_intro": ("このまちのサービスがあなたについて記録しているものを、1つのファイル(ZIP)にまとめてダウンロード"
                     "できます。", "Download everything this town's services keep about you, as one file (ZIP)."),
    "mydata_parts": ("中身: サービスごとのJSONファイルと、読みやすいまとめ(summary.txt)。作成日時と、"
                     "時間内に答えなかったサービスがあればその名前も書かれます。",
                     "Inside: one JSON file per service and a readable summary (summary.txt), with the time it was "
                     "made and the name of any service that did not answer in time."),
    "mydata_time": ("各サービスの回答を最大{s}秒待ちます。", "Each service is given up to {s} seconds."),
    "mydata_download": ("ダウンロード(ZIP)", "Download (ZIP)"),
    "delete_content": ("投稿やコメントは", "Your posts and comments"),
    "delete_content_anonymise": ("残す(「退会したユーザー」の投稿として)", "stay, by 'deleted user'"),
    "delete_content_remove": ("すべて削除する", "are all removed"),
    "delete_export_first": ("退会の前に、わたしのデータをダウンロードできます", "Download your data before you leave"),
    "mydata_delete": ("退会すると、すべてのサービスからあなたのデータが消されます。", "Leaving deletes your data from "
                      "every service."),
})

NAMES = {  # the services as residents know them, for the summary
    "identity": "アカウント / Account", "points": "まちづくりポイント / Points", "projects": "共創 / Co-creation",
    "sns": "コミュニティ / Community", "bookings": "施設予約 / Bookings", "notices": "お知らせ / Notices",
    "signage": "デジタルサイネージ / Signage",
}


async def _part(request: Request, service: str, query: pv.ExportQuery) -> dict[str, Any]:
    answer = await call(request, service, pv.EP_PERSON_EXPORT, query, timeout=pv.EXPORT_TIMEOUT_S)
    return dict(answer)


async def gather_parts(request: Request, user: c.User, token: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Every service's part, asked at once: (parts by service, failures by service: why, in a few words)."""
    services = [s for s in request.app.state.settings.expected_services() if s != c.SERVICE]
    query = pv.ExportQuery(user_id=user.id, global_handle=user.global_handle, email=user.email or None)
    asks = [asyncio.wait_for(call_identity(request, c.EP_EXPORT, {"session_token": token}), pv.EXPORT_TIMEOUT_S),
            *(asyncio.wait_for(_part(request, s, query), pv.EXPORT_TIMEOUT_S + 1) for s in services)]
    answers = await asyncio.gather(*asks, return_exceptions=True)
    parts: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for service, answer in zip([c.SERVICE, *services], answers, strict=True):
        if isinstance(answer, errors.Unauthorized) and service == c.SERVICE:
            raise answer
        if isinstance(answer, TimeoutError | errors.Unavailable):
            failed[service] = "時間内に応答がありませんでした / did not answer in time"
        elif isinstance(answer, BaseException):
            failed[service] = "エラーで取得できませんでした / failed with an error"
        else:
            parts[service] = answer
    return parts, failed


def summary(user: c.User, parts: dict[str, Any], failed: dict[str, str], made: str) -> str:
    lines = ["あなたのデータ / Your data", "",
             f"作成日時 / Made at: {made}", f"対象 / Person: {user.global_handle}", ""]
    for service, part in parts.items():
        lines.append(f"■ {NAMES.get(service, service)} ({service}.json)")
        if service == c.SERVICE:
            lines.append("  アカウント、ログインの記録、連携しているアプリ / account, sign-ins, connected apps")
            lines.append("")
            continue
        about = part.get("about", {})
        for table, rows in part.get("tables", {}).items():
            if rows or table in about:
                lines.append(f"  {about.get(table, table)}: {len(rows)}件 / rows")
        lines.append("")
    if failed:
        lines.append("■ 含まれていないもの / Not included")
        lines += [f"  {NAMES.get(s, s)} ({s}): {why}" for s, why in failed.items()]
        lines.append("  時間をおいてもう一度お試しください。 / Please try again later.")
    return "\n".join(lines) + "\n"


def archive(user: c.User, parts: dict[str, Any], failed: dict[str, str]) -> bytes:
    made = utcnow().astimezone(JST).strftime("%Y-%m-%d %H:%M:%S JST")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("summary.txt", summary(user, parts, failed, made))
        for service, part in parts.items():
            z.writestr(f"{service}.json", json.dumps(part, ensure_ascii=False, indent=2, default=str))
    return buf.getvalue()


@router.get("/settings/mydata", response_class=HTMLResponse)
async def mydata_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "mydata.html", user=user, seconds=int(pv.EXPORT_TIMEOUT_S))


@router.get("/settings/export")
async def export(request: Request, user: CurrentUser, token: SessionToken) -> Response:
    try:
        parts, failed = await gather_parts(request, user, token)
    except errors.Unauthorized:
        return login_redirect(request)
    stamp = utcnow().astimezone(JST).strftime("%Y%m%d-%H%M")
    return Response(archive(user, parts, failed), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="towntip-my-data-{stamp}.zip"',
                             "Cache-Control": "no-store"})
