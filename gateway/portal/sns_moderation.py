"""Moderation pages of the community SNS: the staff's queue (/staff/moderation: open reports with what was reported,
the decision — hide, warn, suspend for N days, dismiss — with its reason; appeals waiting; the node's block list of
peer nodes) and a person's own page (/moderation: what staff decided about them, why, and their one appeal per
decision). The sns service decides who may (staff by role, the person by the actor); every form carries the CSRF
token; a refusal shows the page again with the words of its code and nothing changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import jst
from towntip.kernel import errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import sns as c

router = APIRouter(include_in_schema=False)

add_words({
    "md_title": ("通報への対応（SNS）", "Moderation (SNS)"),
    "md_intro": ("住民からの通報を確認し、非表示・注意・利用停止・対応不要を理由とともに決めます。"
                 "本人に通知され、1回だけ異議を申し立てられます。",
                 "Residents' reports: hide, warn, suspend or dismiss, with a reason each time. The person is told "
                 "and may appeal once."),
    "md_reports": ("対応待ちの通報", "Open reports"),
    "md_none": ("対応待ちの通報はありません。", "No open report."),
    "md_kind_post": ("投稿", "Post"), "md_kind_comment": ("コメント", "Comment"), "md_kind_person": ("人", "Person"),
    "md_author": ("投稿者", "Author"), "md_reporter": ("通報者", "Reported by"), "md_detail": ("通報の内容", "Details"),
    "md_action": ("対応", "Decision"),
    "md_hide": ("非表示にする", "Hide"), "md_warn": ("注意する", "Warn"), "md_suspend": ("利用停止", "Suspend"),
    "md_did_hide": ("非表示", "Hidden"), "md_did_warn": ("注意", "Warning"),
    "md_did_suspend": ("利用停止", "Suspended"),
    "md_dismiss": ("対応不要", "Dismiss"), "md_days": ("停止する日数（利用停止のみ）", "Days (suspension only)"),
    "md_reason": ("理由（本人に伝わります）", "Reason (the person is told)"), "md_decide": ("決定する", "Decide"),
    "md_appeals": ("異議申し立て", "Appeals"),
    "md_no_appeals": ("判断待ちの異議申し立てはありません。", "No appeal waiting."),
    "md_appeal_text": ("申し立ての内容", "The appeal"), "md_uphold": ("対応を維持する", "Uphold"),
    "md_lift": ("対応を取り消す", "Lift"),
    "md_blocks": ("投稿を受け付けないノード", "Nodes blocked from posting"),
    "md_block_node": ("ノードID（例: suginami）", "Node id (e.g. suginami)"), "md_block": ("ブロックする", "Block"),
    "md_unblock": ("解除", "Unblock"), "md_no_blocks": ("ありません。", "None."),
    "md_decided": ("決定しました。", "Decided."),
    "md_mine": ("職員による対応", "Staff's decisions about you"),
    "md_mine_intro": ("コミュニティでのあなたの投稿などについて、職員が行った対応と理由です。"
                      "それぞれ1回、異議を申し立てられます。",
                      "What the node's staff decided about your part in the communities, and why. You may appeal "
                      "each decision once."),
    "md_mine_none": ("職員による対応はありません。", "Nothing was decided about you."),
    "md_until": ("停止の期限", "Suspended until"), "md_appeal": ("異議を申し立てる", "Appeal"),
    "md_appealed": ("異議申し立て済み", "Appealed"), "md_appeal_result": ("判断", "Answer"),
    "md_upheld": ("維持", "Upheld"), "md_lifted": ("取り消し", "Lifted"),
})
add_nav("md_title", "/staff/moderation", "staff")
ACTIONS = ("hide", "warn", "suspend", "dismiss")


async def _sns(request: Request, endpoint: str, payload: Any) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


async def _queue_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None,
                      notice: str | None = None) -> Response:
    lang = ps.lang(request)
    try:
        got = c.ModerationQueue.model_validate(await _sns(request, c.EP_MODERATION_QUEUE,
                                                          c.StaffQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return render(request, "sns/moderation.html", status=bad_status(exc), user=user, got=None,
                      error=why(exc, lang), jst=jst, actions=ACTIONS)
    return render(request, "sns/moderation.html", status=status, user=user, got=got, error=error, notice=notice,
                  jst=jst, actions=ACTIONS)


@router.get("/staff/moderation", response_class=HTMLResponse)
async def queue_page(request: Request, user: StaffUser) -> Response:
    notice = t("md_decided", ps.lang(request)) if request.query_params.get("saved") else None
    return await _queue_page(request, user, notice=notice)


async def _staff_post(request: Request, user: ic.User, endpoint: str, make: Any) -> Response:
    try:
        await _sns(request, endpoint, make())
    except (ValidationError, errors.ServiceError) as exc:
        return await _queue_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse("/staff/moderation?saved=1", status_code=303)


@router.post("/staff/moderation/reports/{rid}")
async def decide(rid: str, request: Request, form: CsrfForm, user: StaffUser) -> Response:
    days = str(form.get("days", "")).strip()
    return await _staff_post(request, user, c.EP_MODERATION_DECIDE, lambda: c.DecisionIn(
        actor=actor_of(user), report_id=rid, action=form.get("action", ""), reason=form.get("reason", ""),
        days=days if form.get("action") == "suspend" and days else None))


@router.post("/staff/moderation/appeals/{aid}")
async def decide_appeal(aid: str, request: Request, form: CsrfForm, user: StaffUser) -> Response:
    return await _staff_post(request, user, c.EP_MODERATION_APPEAL_DECIDE, lambda: c.AppealDecisionIn(
        actor=actor_of(user), action_id=aid, decision=form.get("decision", ""), reason=form.get("reason", "")))


@router.post("/staff/moderation/blocks")
async def block(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    if form.get("remove"):
        return await _staff_post(request, user, c.EP_BLOCK_REMOVE, lambda: c.BlockRemove(
            actor=actor_of(user), node=str(form.get("node", "")).strip()))
    return await _staff_post(request, user, c.EP_BLOCK_PUT, lambda: c.BlockIn(
        actor=actor_of(user), node=str(form.get("node", "")).strip(), reason=form.get("reason", "")))


# ---- the person's own -----------------------------------------------------------------------------------------


async def _mine_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None) -> Response:
    lang = ps.lang(request)
    try:
        got = c.Actions.model_validate(await _sns(request, c.EP_MODERATION_MINE, c.MineQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return render(request, "sns/moderation_mine.html", status=bad_status(exc), user=user, got=None,
                      error=why(exc, lang), jst=jst)
    notice = t("saved", lang) if request.query_params.get("saved") else None
    return render(request, "sns/moderation_mine.html", status=status, user=user, got=got, error=error, jst=jst,
                  notice=notice)


@router.get("/moderation", response_class=HTMLResponse)
async def mine_page(request: Request, user: CurrentUser) -> Response:
    return await _mine_page(request, user)


@router.post("/moderation/{aid}/appeal")
async def appeal(aid: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _sns(request, c.EP_MODERATION_APPEAL, c.AppealIn(actor=actor_of(user), action_id=aid,
                                                               text=form.get("text", "")))
    except (ValidationError, errors.ServiceError) as exc:
        return await _mine_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse("/moderation?saved=1", status_code=303)
