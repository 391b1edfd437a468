"""The staff's signage pages under /staff/signage (映像交流・配信): screens and their state with the latest screenshot,
content (upload, approval by a second staff member, withdrawal), playlists with dayparts, priorities and interrupts,
the preview of a screen at a given time, plays with CSV, and the emergency message (sent after a confirmation,
cleared). Each page asks the signage service (svc.<node>.signage.*) with the person as an Actor; the service decides.
"""

from __future__ import annotations

import base64
import csv
import io
import uuid
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.deps import CsrfForm, PageInstead, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import signage as c

router = APIRouter(include_in_schema=False)
UPLOAD_TIMEOUT = 120.0  # an image or video is decoded and encoded again by the service (a minute of video: ~30 s)

add_words(
    {
        "sg_nav": ("サイネージ（職員）", "Signage (staff)"),
        "sg_title": ("サイネージ管理", "Signage"),
        "sg_screens": ("画面（映像端末）", "Screens"),
        "sg_content": ("コンテンツ", "Content"),
        "sg_playlists": ("プレイリスト", "Playlists"),
        "sg_plays": ("再生実績", "Plays"),
        "sg_emergency": ("緊急情報", "Emergency message"),
        "sg_online": ("稼働中", "Online"),
        "sg_offline": ("停止・未接続", "Offline"),
        "sg_last_seen": ("最終受信", "Last seen"),
        "sg_playing": ("再生中", "Playing"),
        "sg_cache": ("キャッシュ", "Cache"),
        "sg_version": ("プレーヤー版", "Player version"),
        "sg_place": ("設置場所", "Place"),
        "sg_groups": ("グループ", "Groups"),
        "sg_no_screens": (
            "登録された画面はまだありません（towntip signage enroll で登録します）。",
            "No screen is registered yet (towntip signage enroll registers one).",
        ),
        "sg_screenshot": ("最新の画面写真", "Latest screenshot"),
        "sg_no_screenshot": ("画面写真はまだ届いていません。", "No screenshot has arrived yet."),
        "sg_preview": ("再生予定のプレビュー", "Preview of what plays"),
        "sg_preview_at": ("日時", "At"),
        "sg_show": ("表示する", "Show"),
        "sg_now": ("この時刻に再生中", "Playing at that time"),
        "sg_interrupt": ("割込み", "Interrupt"),
        "sg_upload": ("コンテンツを登録する", "Add content"),
        "sg_file": ("画像または動画ファイル", "Image or video file"),
        "sg_file_hint": (
            "JPEG・PNG・GIF・WebP（20MBまで）、MP4・WebM（200MBまで）。位置情報などは自動で取り除きます。",
            "JPEG, PNG, GIF, WebP (up to 20 MB), MP4, WebM (up to 200 MB). Location data is removed.",
        ),
        "sg_item_title": ("タイトル", "Title"),
        "sg_duration": ("表示秒数", "Seconds shown"),
        "sg_valid_from": ("掲載開始", "Shown from"),
        "sg_valid_until": ("掲載終了（任意）", "Shown until (optional)"),
        "sg_do_upload": ("登録する（承認待ちになります）", "Add (it then waits for approval)"),
        "sg_uploaded": (
            "登録しました。別の職員が承認すると再生されます。",
            "Added. It plays once another staff member approves it.",
        ),
        "sg_status_pending": ("承認待ち", "Waiting for approval"),
        "sg_status_approved": ("承認済み", "Approved"),
        "sg_status_rejected": ("却下", "Rejected"),
        "sg_status_withdrawn": ("取下げ", "Withdrawn"),
        "sg_approve": ("承認する", "Approve"),
        "sg_withdraw": ("取り下げる", "Withdraw"),
        "sg_approved": ("承認しました。", "Approved."),
        "sg_withdrawn": ("取り下げました。全画面から外れます。", "Withdrawn: it leaves every screen."),
        "sg_by": ("登録者", "Added by"),
        "sg_no_content": ("コンテンツはまだありません。", "No content yet."),
        "sg_new_playlist": ("プレイリストを作る", "New playlist"),
        "sg_pl_name": ("名前", "Name"),
        "sg_priority": ("優先度（大きいほど優先）", "Priority (higher wins)"),
        "sg_items": ("再生するコンテンツ（承認済み）", "Items to play (approved)"),
        "sg_weekdays": ("曜日", "Weekdays"),
        "sg_daypart": ("時間帯（空欄: 終日）", "Time of day (empty: all day)"),
        "sg_share": ("割込みの割合（1時間あたり％、空欄: 通常）", "Interrupt share (% of each hour; empty: normal)"),
        "sg_targets": ("対象グループ（カンマ区切り、空欄: 全画面）", "Groups (comma separated; empty: every screen)"),
        "sg_save": ("保存する", "Save"),
        "sg_saved": ("保存しました。画面はすぐに同期します。", "Saved. The screens sync at once."),
        "sg_no_playlists": ("プレイリストはまだありません。", "No playlist yet."),
        "sg_all_screens": ("全画面", "Every screen"),
        "sg_always": ("終日", "All day"),
        "sg_since": ("開始日", "From"),
        "sg_until": ("終了日", "To"),
        "sg_per_item": ("コンテンツ別", "Per item"),
        "sg_per_screen": ("画面別", "Per screen"),
        "sg_count": ("回数", "Plays"),
        "sg_seconds": ("秒数", "Seconds"),
        "sg_csv": ("CSVでダウンロード", "Download CSV"),
        "sg_no_plays": ("この期間の再生実績はありません。", "No plays in this period."),
        "sg_em_intro": (
            "緊急情報は、対象の画面の表示を直ちに切り替え、解除するまで表示し続けます。",
            "An emergency message takes over the screens at once and stays until cleared.",
        ),
        "sg_em_title": ("見出し", "Headline"),
        "sg_em_body": ("本文", "Message"),
        "sg_em_severity": ("重大度", "Severity"),
        "sg_severity_extreme": ("極めて重大", "Extreme"),
        "sg_severity_severe": ("重大", "Severe"),
        "sg_severity_moderate": ("中程度", "Moderate"),
        "sg_severity_minor": ("軽微", "Minor"),
        "sg_severity_unknown": ("不明", "Unknown"),
        "sg_em_groups": ("対象グループ（カンマ区切り、空欄: 全画面）", "Groups (comma separated; empty: every screen)"),
        "sg_em_next": ("確認へ進む", "Continue"),
        "sg_em_confirm": ("この緊急情報を送信しますか？", "Send this emergency message?"),
        "sg_em_confirm_text": (
            "送信すると、対象の画面すべての表示がただちに切り替わります。",
            "Once sent, every screen it reaches switches to it at once.",
        ),
        "sg_em_send": ("送信する", "Send"),
        "sg_em_sent": ("緊急情報を送信しました。", "The emergency message was sent."),
        "sg_em_active": ("表示中の緊急情報", "Showing now"),
        "sg_em_recent": ("最近解除したもの", "Cleared recently"),
        "sg_em_none": ("表示中の緊急情報はありません。", "No emergency message is showing."),
        "sg_em_clear": ("解除する", "Clear"),
        "sg_em_cleared": ("緊急情報を解除しました。", "The emergency message was cleared."),
        "sg_back": ("戻る", "Back"),
    }
)
add_nav("sg_nav", "/staff/signage", "staff")

WEEKDAYS = ("月", "火", "水", "木", "金", "土", "日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _jst(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(JST).strftime(fmt)


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


def _page(request: Request, template: str, *, user: ic.User, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    return render(
        request,
        f"signage/{template}",
        status=status,
        user=user,
        jst=_jst,
        size=_size,
        weekdays=WEEKDAYS_EN if lang == "en" else WEEKDAYS,
        **ctx,
    )


async def _ask(request: Request, endpoint: str, payload: Any, timeout: float | None = None) -> Any:
    return await call(request, c.SERVICE, endpoint, payload, timeout=timeout)


def _refusal(request: Request, exc: Exception, user: ic.User, back: str = "/staff/signage") -> HTMLResponse:
    lang = ps.lang(request)
    return message(
        request,
        heading=t("error", lang),
        paragraphs=[why(exc, lang)],
        status=bad_status(exc),
        user=user,
        link=(back, t("sg_back", lang)),
    )


DONE = ("uploaded", "approved", "withdrawn", "saved", "em_sent", "em_cleared")


def _notice(request: Request) -> str | None:
    done = request.query_params.get("done")
    return t(f"sg_{done}", ps.lang(request)) if done in DONE else None


def _local(value: str, default: datetime | None = None) -> datetime | None:
    """A date or date-time typed on a page, in Japan's time."""
    if not value:
        return default
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=JST) if parsed.tzinfo is None else parsed


def _cell(text: str) -> str:
    """A title as a CSV cell Excel shows as text: one starting like a formula (another town's adopted item may be
    titled "=HYPERLINK(...)") gets a leading apostrophe."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def _groups(value: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in value.replace("、", ",").split(",") if g.strip())


# ---- screens -----------------------------------------------------------------------------------------------------


@router.get("/staff/signage", response_class=HTMLResponse)
async def screens_page(request: Request, user: StaffUser) -> Response:
    try:
        listed = c.ScreenList.model_validate(
            await _ask(
                request,
                c.EP_SCREEN_LIST,
                c.ScreenListQuery(actor=actor_of(user), group=request.query_params.get("group") or None),
            )
        )
        active = c.EmergencyList.model_validate(
            await _ask(request, c.EP_EMERGENCY_LIST, c.EmergencyListQuery(actor=actor_of(user)))
        ).active
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back="/")
    return _page(
        request,
        "screens.html",
        user=user,
        screens=listed.screens,
        groups=listed.groups,
        chosen=request.query_params.get("group", ""),
        active=active,
    )


@router.get("/staff/signage/screens/{name}", response_class=HTMLResponse)
async def screen_page(name: str, request: Request, user: StaffUser) -> Response:
    q = request.query_params
    try:
        at = _local(q.get("at", ""), datetime.now(JST))
        screen = c.Screen.model_validate(
            await _ask(request, c.EP_SCREEN_GET, c.ScreenQuery(actor=actor_of(user), name=name))
        )
        preview = c.Preview.model_validate(
            await _ask(request, c.EP_PREVIEW, c.PreviewQuery(actor=actor_of(user), screen=name, at=at))
        )
    except (ValueError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    return _page(request, "screen.html", user=user, s=screen, preview=preview, at=_jst(preview.at, "%Y-%m-%dT%H:%M"))


# ---- content -----------------------------------------------------------------------------------------------------


async def _content(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        listed = c.ContentList.model_validate(
            await _ask(request, c.EP_CONTENT_LIST, c.ContentListQuery(actor=actor_of(user)))
        )
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    return _page(
        request,
        "content.html",
        user=user,
        status=status,
        items=listed.items,
        me=user.global_handle,
        today=datetime.now(JST).strftime("%Y-%m-%dT%H:%M"),
        **ctx,
    )


@router.get("/staff/signage/content", response_class=HTMLResponse)
async def content_page(request: Request, user: StaffUser) -> Response:
    return await _content(request, user, notice=_notice(request))


async def upload_form(request: Request) -> dict[str, Any]:
    """The multipart form with its file, its CSRF token checked as every form's (the shared check stops at 64 KB;
    a video is bigger): too large (413) or a bad token (403) sends that page instead."""
    lang = ps.lang(request)
    if int(request.headers.get("content-length") or 0) > c.VIDEO_MAX_BYTES + 64 * 1024:
        raise PageInstead(message(request, heading=t("error", lang), paragraphs=["413"], status=413))
    form = await request.form(max_part_size=c.VIDEO_MAX_BYTES + 1)
    token = form.get("csrf")
    if not ps.csrf_ok(request, token if isinstance(token, str) else None):
        raise PageInstead(
            message(
                request,
                heading=t("error", lang),
                paragraphs=[t("csrf", lang)],
                status=403,
                link=(request.url.path, t("home", lang)),
            )
        )
    return {k: v for k, v in form.items() if k != "csrf"}


upload_form.checks_csrf = True  # type: ignore[attr-defined]
UploadForm = Annotated[dict[str, Any], Depends(upload_form)]


@router.post("/staff/signage/content")
async def upload(request: Request, form: UploadForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    file = form.get("file")
    try:
        if not isinstance(file, UploadFile):
            raise errors.BadRequest("no file was chosen", error_code=c.UPLOAD_INCOMPLETE.code)
        valid_from = _local(str(form.get("valid_from", "")), datetime.now(JST))
        assert valid_from is not None
        create = c.ContentCreate(
            actor=actor_of(user),
            upload_id=str(uuid.uuid4()),
            parts=1,
            title=str(form.get("title", "")),
            duration_s=int(form.get("duration_s") or 10),
            valid_from=valid_from,
            valid_until=_local(str(form.get("valid_until", ""))),
        )
        parts = 0
        while chunk := await file.read(c.CHUNK_MAX):
            await _ask(
                request,
                c.EP_UPLOAD_PART,
                c.UploadPart(
                    actor=actor_of(user),
                    upload_id=create.upload_id,
                    seq=parts,
                    data_b64=base64.b64encode(chunk).decode(),
                ),
            )
            parts += 1
        await _ask(
            request, c.EP_CONTENT_CREATE, create.model_copy(update={"parts": max(parts, 1)}), timeout=UPLOAD_TIMEOUT
        )
    except (ValueError, ValidationError, errors.ServiceError) as exc:
        return await _content(request, user, status=bad_status(exc), error=why(exc, lang), form=form)
    return RedirectResponse("/staff/signage/content?done=uploaded", status_code=303)


@router.post("/staff/signage/content/{item_id}/{action}")
async def content_action(item_id: str, action: str, request: Request, form: CsrfForm, user: StaffUser) -> Response:
    endpoints = {"approve": (c.EP_CONTENT_APPROVE, "approved"), "withdraw": (c.EP_CONTENT_WITHDRAW, "withdrawn")}
    if action not in endpoints:
        return _refusal(request, errors.NotFound("no such action"), user, back="/staff/signage/content")
    endpoint, done = endpoints[action]
    try:
        await _ask(request, endpoint, c.ItemAction(actor=actor_of(user), item_id=item_id))
    except (ValidationError, errors.ServiceError) as exc:
        return await _content(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/staff/signage/content?done={done}", status_code=303)


# ---- playlists ---------------------------------------------------------------------------------------------------


async def _playlists(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        listed = c.PlaylistList.model_validate(
            await _ask(request, c.EP_PLAYLIST_LIST, c.PlaylistListQuery(actor=actor_of(user)))
        )
        approved = c.ContentList.model_validate(
            await _ask(request, c.EP_CONTENT_LIST, c.ContentListQuery(actor=actor_of(user), status="approved"))
        ).items
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    titles = {i.id: i.title for i in approved}
    return _page(
        request,
        "playlists.html",
        user=user,
        status=status,
        playlists=listed.playlists,
        approved=approved,
        titles=titles,
        **ctx,
    )


@router.get("/staff/signage/playlists", response_class=HTMLResponse)
async def playlists_page(request: Request, user: StaffUser) -> Response:
    return await _playlists(request, user, notice=_notice(request))


def _playlist_from(form: dict[str, Any], request_form: list[tuple[str, Any]], user: ic.User) -> c.PlaylistPut:
    chosen = [v for k, v in request_form if k == "item"]
    days = tuple(int(v) for k, v in request_form if k == "weekday")
    start, end = form.get("start") or "", form.get("end") or ""
    dayparts: tuple[c.Daypart, ...] = ()
    if start or end or (days and len(days) < 7):
        dayparts = (
            c.Daypart(
                weekdays=days or (0, 1, 2, 3, 4, 5, 6),
                start=time.fromisoformat(start or "00:00"),
                end=time.fromisoformat(end or "00:00"),
            ),
        )
    share = form.get("share") or ""
    return c.PlaylistPut(
        actor=actor_of(user),
        name=form.get("name", ""),
        priority=int(form.get("priority") or 0),
        dayparts=dayparts,
        entries=tuple(c.PlaylistEntry(item_id=i) for i in chosen),
        groups=_groups(form.get("groups", "")),
        interrupt_share=float(share) / 100 if share else None,
    )


@router.post("/staff/signage/playlists")
async def playlist_save(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    try:
        raw = list((await request.form()).multi_items())
        await _ask(request, c.EP_PLAYLIST_PUT, _playlist_from(form, raw, user))
    except (ValueError, ValidationError, errors.ServiceError) as exc:
        return await _playlists(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)), form=form)
    return RedirectResponse("/staff/signage/playlists?done=saved", status_code=303)


# ---- plays -------------------------------------------------------------------------------------------------------


@router.get("/staff/signage/plays", response_class=HTMLResponse)
async def plays_page(request: Request, user: StaffUser) -> Response:
    q = request.query_params
    today = datetime.now(JST).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        since = _local(q.get("since", ""), today - timedelta(days=7))
        until = _local(q.get("until", ""), today)
        assert since is not None and until is not None
        query = c.PlaysQuery(
            actor=actor_of(user),
            since=since,
            until=until + timedelta(days=1),
            by="screen" if q.get("by") == "screen" else "item",
        )
        got = c.PlaysSummary.model_validate(await _ask(request, c.EP_PLAYS_SUMMARY, query))
    except (ValueError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    if q.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([got.by, "label", "plays", "seconds", "since", "until"])
        for r in got.rows:
            writer.writerow([r.key, _cell(r.label), r.plays, r.seconds, got.since.isoformat(), got.until.isoformat()])
        return Response(
            "\ufeff" + out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="signage-plays-{got.by}.csv"',
                "Cache-Control": "no-store",
            },
        )
    return _page(
        request,
        "plays.html",
        user=user,
        got=got,
        since=since.strftime("%Y-%m-%d"),
        until=until.strftime("%Y-%m-%d"),
        by=query.by,
    )


# ---- emergency ---------------------------------------------------------------------------------------------------


async def _emergency(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        listed = c.EmergencyList.model_validate(
            await _ask(request, c.EP_EMERGENCY_LIST, c.EmergencyListQuery(actor=actor_of(user)))
        )
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    return _page(request, "emergency.html", user=user, status=status, listed=listed, **ctx)


@router.get("/staff/signage/emergency", response_class=HTMLResponse)
async def emergency_page(request: Request, user: StaffUser) -> Response:
    return await _emergency(request, user, notice=_notice(request))


@router.post("/staff/signage/emergency")
async def emergency_send(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    """Without `confirm`: the confirmation page; with it: sent to the screens."""
    lang = ps.lang(request)
    try:
        data = c.EmergencySend(
            actor=actor_of(user),
            title=form.get("title", ""),
            body=form.get("body", ""),
            severity=form.get("severity") or "severe",
            groups=_groups(form.get("groups", "")),
        )
        if form.get("confirm") == "1":
            await _ask(request, c.EP_EMERGENCY_SEND, data)
            return RedirectResponse("/staff/signage/emergency?done=em_sent", status_code=303)
    except (ValidationError, errors.ServiceError) as exc:
        return await _emergency(request, user, status=bad_status(exc), error=why(exc, lang), form=form)
    return _page(request, "emergency_confirm.html", user=user, data=data, form=form)


@router.post("/staff/signage/emergency/{emergency_id}/clear")
async def emergency_clear(emergency_id: str, request: Request, form: CsrfForm, user: StaffUser) -> Response:
    try:
        await _ask(request, c.EP_EMERGENCY_CLEAR, c.EmergencyAction(actor=actor_of(user), id=emergency_id))
    except (ValidationError, errors.ServiceError) as exc:
        return await _emergency(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse("/staff/signage/emergency?done=em_cleared", status_code=303)
