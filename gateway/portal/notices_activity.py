"""The portal's activity notification pages (issue 18, point 4): /notifications (the list the inbox links to), its
settings (each kind on or off, the daily digest, push in this browser), and the service worker that shows a push.
Each page asks the notices service over NATS with the person as an Actor; the service answers with their own only."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import notices_activity as c

router = APIRouter(include_in_schema=False)

add_words(
    {
        "ac_title": ("活動のお知らせ", "Activity"),
        "ac_intro": (
            "あなたの投稿へのコメント、トモダチ申請、フォロー中のテーマの更新、明日の予約、ポイントの付与をお知らせします。",
            "Comments on your posts, friend requests, updates to what you follow, tomorrow's bookings and points "
            "credited.",
        ),
        "ac_empty": ("新しいお知らせはありません。", "Nothing new."),
        "ac_read_all": ("すべて既読にする", "Mark all read"),
        "ac_settings": ("通知の設定", "Notification settings"),
        "ac_unread": ("未読", "Unread"),
        "ac_kind_comment": ("コメント", "Comment"),
        "ac_kind_friend_request": ("トモダチ申請", "Friend request"),
        "ac_kind_followed_change": ("フォロー中の更新", "Followed update"),
        "ac_kind_booking_reminder": ("明日の予約", "Booking tomorrow"),
        "ac_kind_points_credited": ("ポイント付与", "Points credited"),
        "ac_kind_moderation": ("職員による対応", "Staff's decision"),
        "ac_say_moderation": ("コミュニティでの投稿について、職員が対応しました（{subject}）。"
                              "理由の確認と異議申し立てはこちら",
                              "Staff decided about your part in the communities ({subject}): see why, or appeal"),
        "ac_kind_opening_applied": ("募集への応募", "Applications to your openings"),
        "ac_kind_opening_accepted": ("応募の承認", "Applications accepted"),
        "ac_kind_opening_declined": ("応募の見送り", "Applications declined"),
        "ac_say_opening_applied": ("{who} さんが募集「{subject}」に応募しました",
                                   "{who} applied to your opening “{subject}”"),
        "ac_say_opening_accepted": ("募集「{subject}」への応募が承認されました",
                                    "Your application to “{subject}” was accepted"),
        "ac_say_opening_declined": ("募集「{subject}」への応募は、今回は見送りとなりました",
                                    "Your application to “{subject}” was declined this time"),
        "ac_say_comment": ("{who} さんがあなたの投稿にコメントしました", "{who} commented on your post"),
        "ac_say_friend_request": (
            "{subject}（{who}）さんからトモダチ申請が届きました",
            "{subject} ({who}) sent a friend request",
        ),
        "ac_say_followed_change": (
            "フォロー中の「{subject}」が更新されました",
            "“{subject}”, which you follow, was updated",
        ),
        "ac_say_booking_reminder": (
            "明日 {subject} から {who} の予約があります",
            "You have {who} booked tomorrow from {subject}",
        ),
        "ac_say_points_credited": ("{subject} ポイントが付きました（{who}）", "{subject} points credited ({who})"),
        "ac_kinds": ("受け取るお知らせ", "What to be told of"),
        "ac_digest_legend": ("まとめメール", "Daily digest"),
        "ac_digest": ("毎朝、まとめメールを受け取る", "A digest by e-mail every morning"),
        "ac_digest_hint": (
            "前日からの未読のお知らせを、朝7時ごろ {email} にお送りします。オフにするとアドレスは消去されます。",
            "Unread notifications are mailed about 7:00 to {email}. Turning it off forgets the address.",
        ),
        "ac_push": ("このブラウザへのプッシュ通知", "Push notifications in this browser"),
        "ac_push_hint": (
            "許可すると、お知らせがこの端末に届きます。内容は暗号化され、通知サービスには読めません。",
            "Once allowed, notifications reach this device, encrypted: the push service cannot read them.",
        ),
        "ac_push_on": ("このブラウザで受け取る", "Receive in this browser"),
        "ac_push_off": ("すべてのブラウザで停止", "Stop on every browser"),
        "ac_push_count": ("受け取るブラウザ", "Browsers receiving"),
        "ac_push_done": ("このブラウザで受け取れるようになりました。", "This browser now receives notifications."),
        "ac_push_denied": (
            "通知が許可されませんでした。ブラウザの設定をご確認ください。",
            "Notifications were not allowed: check the browser's settings.",
        ),
        "ac_push_unsupported": (
            "このブラウザはプッシュ通知に対応していません。",
            "This browser does not support push notifications.",
        ),
        "ac_keep": ("お知らせは180日後に自動で消去されます。", "Notifications are deleted after 180 days."),
    }
)

add_nav("ac_title", "/notifications", "user")

# Shows a push and opens its page; only paths of this portal are opened (the payload is the node's own).
SERVICE_WORKER = """'use strict';
self.addEventListener('push', function (event) {
  var d = {};
  try { d = event.data ? event.data.json() : {}; } catch (e) { d = {body: event.data ? event.data.text() : ''}; }
  event.waitUntil(self.registration.showNotification(d.title || 'TownTip', {
    body: d.body || '', tag: d.kind || 'activity', data: {link: d.link || '/notifications'}}));
});
self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  var link = (event.notification.data && event.notification.data.link) || '/notifications';
  if (link.charAt(0) !== '/' || link.charAt(1) === '/') { link = '/notifications'; }
  event.waitUntil(clients.openWindow(link));
});
"""


def jst(t_: datetime) -> str:
    return t_.astimezone(JST).strftime("%m/%d %H:%M")


def say(note: c.Note, lang: str) -> str:
    return t(f"ac_say_{note.kind}", lang).format(subject=note.subject, who=note.who or "—")


@router.get("/sw.js")
async def service_worker() -> Response:
    # At the root so that its scope is the whole portal (a push opens any of its pages).
    return Response(
        SERVICE_WORKER,
        media_type="application/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        got = c.ActivityList.model_validate(
            await call(request, c.SERVICE, c.EP_ACTIVITY_LIST, c.ActivityQuery(actor=actor_of(user)))
        )
    except errors.ServiceError as exc:
        return message(
            request, heading=t("ac_title", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user
        )
    return render(request, "notices/activity_list.html", user=user, got=got, jst=jst, say=lambda n: say(n, lang))


@router.post("/notifications/read")
async def notifications_read(request: Request, user: CurrentUser, form: CsrfForm) -> Response:
    await call(request, c.SERVICE, c.EP_ACTIVITY_READ, c.ActivityRead(actor=actor_of(user), all=True))
    return RedirectResponse("/notifications", status_code=303)


async def _settings_page(request: Request, user: CurrentUser, *, note: str = "", status: int = 200) -> Response:
    lang = ps.lang(request)
    try:
        current = c.ActivitySettings.model_validate(
            await call(request, c.SERVICE, c.EP_ACTIVITY_SETTINGS, c.SettingsQuery(actor=actor_of(user)))
        )
        key = c.PushKey.model_validate(await call(request, c.SERVICE, c.EP_PUSH_KEY, None)).public_key
    except errors.ServiceError as exc:
        return message(
            request, heading=t("ac_settings", lang), paragraphs=[why(exc, lang)], status=error_status(exc), user=user
        )
    return render(
        request,
        "notices/activity_settings.html",
        status=status,
        user=user,
        current=current,
        kinds=c.KINDS,
        note=note,
        vapid_key=key,
        email=user.email if user.email_verified else "",
        words_json=json.dumps(
            {k: t(k, lang) for k in ("ac_push_done", "ac_push_denied", "ac_push_unsupported")}, ensure_ascii=False
        ),
    )


@router.get("/notifications/settings", response_class=HTMLResponse)
async def settings_page(request: Request, user: CurrentUser) -> Response:
    return await _settings_page(request, user)


@router.post("/notifications/settings")
async def settings_save(request: Request, user: CurrentUser, form: CsrfForm) -> Response:
    lang = ps.lang(request)
    digest = form.get("digest") == "on"
    try:
        # The address is the account's own, and only a verified one: never one typed into this form.
        await call(
            request,
            c.SERVICE,
            c.EP_ACTIVITY_SETTINGS_SET,
            c.SettingsIn(
                actor=actor_of(user),
                kinds={k: form.get(f"kind_{k}") == "on" for k in c.KINDS},
                digest=digest,
                digest_to=user.email if digest and user.email_verified else None,
            ),
        )
    except errors.ServiceError as exc:
        return await _settings_page(request, user, note=why(exc, lang), status=error_status(exc))
    return await _settings_page(request, user, note=t("saved", lang))


@router.post("/notifications/push")
async def push_subscribe(request: Request, user: CurrentUser, form: CsrfForm) -> Response:
    """The settings page's script posts the browser's PushSubscription here (a form, with the page's CSRF token);
    the answer is JSON for the script, with the words to show."""
    lang = ps.lang(request)
    try:
        sub = c.PushSubscribeIn(
            actor=actor_of(user),
            endpoint=form.get("endpoint", ""),
            p256dh=form.get("p256dh", ""),
            auth=form.get("auth", ""),
        )
        got = await call(request, c.SERVICE, c.EP_PUSH_SUBSCRIBE, sub)
    except errors.ServiceError as exc:
        return JSONResponse({"message": why(exc, lang)}, status_code=error_status(exc))
    except ValidationError:
        return JSONResponse({"message": t("ac_push_unsupported", lang)}, status_code=400)
    return JSONResponse({"push_browsers": got["push_browsers"], "message": t("ac_push_done", lang)})


@router.post("/notifications/push/remove")
async def push_remove(request: Request, user: CurrentUser, form: CsrfForm) -> Response:
    await call(request, c.SERVICE, c.EP_PUSH_UNSUBSCRIBE, c.PushUnsubscribeIn(actor=actor_of(user)))
    return RedirectResponse("/notifications/settings", status_code=303)
