"""Matching (マッチング, issue 20 point 5) on the portal: /openings (the openings that fit the person, each with the
reason, the skills they state, and every open opening), /openings/{id} (apply with a message, or withdraw),
/openings/new (a community's leader or a theme's managers post one) and /openings/{id}/applicants (the organiser
accepts or declines). The person's interests and district are their profile's (passed with the request, stored by
no service but identity); the sns service decides who may do what, with the person inside each request. Every
form carries the CSRF token; a refusal shows the page again with the words of its code and nothing changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import jst
from towntip.kernel import categories, errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts import sns_openings as c

router = APIRouter(include_in_schema=False)

add_words({
    "op_nav": ("ボランティア・募集", "Openings"),
    "op_nav_desc": ("あなたの関心・地区・スキルに合う募集を探して応募できます。",
                    "Find openings that fit your interests, district and skills, and apply."),
    "op_title": ("ボランティア・募集", "Openings"),
    "op_intro": ("コミュニティや共創テーマの募集です。あなたの関心分野・地区・スキルに合うものを、理由とともに"
                 "表示しています。",
                 "Openings of communities and co-creation themes. Those that fit your interests, district and "
                 "skills are shown with the reason."),
    "op_for_you": ("あなたに合う募集", "Openings for you"),
    "op_none_for_you": ("いま合う募集はありません。プロフィールの関心分野・地区や、下のスキルを登録すると"
                        "見つかりやすくなります。",
                        "Nothing fits you now. Set your interests and district in your profile, or your skills "
                        "below."),
    "op_all": ("受付中のすべての募集", "All open openings"),
    "op_none": ("受付中の募集はありません。", "No opening is open now."),
    "op_why": ("おすすめの理由", "Why"),
    "op_why_interest": ("関心分野: {x}", "Interest: {x}"),
    "op_why_district": ("地区: {x}", "District: {x}"),
    "op_why_skill": ("スキル: {x}", "Skill: {x}"),
    "op_skills": ("あなたのスキル", "Your skills"),
    "op_skills_hint": ("できること・得意なことを自由に書いてください（例: 写真、調理、パソコン）。募集との"
                       "照合に使います。",
                       "What you can do, in your own words (e.g. photos, cooking, PCs). Used to match openings."),
    "op_skills_save": ("スキルを保存", "Save my skills"),
    "op_skills_saved": ("スキルを保存しました。", "Your skills were saved."),
    "op_new": ("募集を出す", "Post an opening"),
    "op_new_hint": ("コミュニティのリーダー、または共創テーマの担当者が募集を出せます。",
                    "A community's leader or a co-creation theme's managers post openings."),
    "op_host": ("募集するコミュニティ・テーマ", "For which community or theme"),
    "op_no_host": ("リーダーを務めているコミュニティがありません。コミュニティを開設すると募集を出せます。",
                   "You lead no community. Open one to post openings."),
    "op_theme": ("共創テーマ", "Co-creation theme"),
    "op_f_title": ("募集のタイトル", "Title"),
    "op_f_task": ("活動内容", "What to do"),
    "op_f_skills": ("求めるスキル（自由記述）", "Skills wanted (your words)"),
    "op_f_categories": ("分野（5つまで）", "Categories (up to 5)"),
    "op_categories": ("分野", "Categories"),
    "op_f_district": ("地区", "District"),
    "op_f_place": ("場所", "Place"),
    "op_f_starts": ("開始日時", "Starts"),
    "op_f_ends": ("終了日時（任意）", "Ends (optional)"),
    "op_f_capacity": ("募集人数", "People wanted"),
    "op_f_event": ("ポイント対象イベントのコード（任意）", "Points event code (optional)"),
    "op_f_event_hint": ("イベントのコードを入れると、承認された方がそのイベントでカードをタッチしたとき、"
                        "ボランティアポイントが付きます。",
                        "With an event's code, accepted volunteers earn its volunteer points when their card "
                        "touches at that event."),
    "op_post": ("募集を公開する", "Publish the opening"),
    "op_host_label": ("募集元", "By"),
    "op_when": ("日時", "When"),
    "op_where": ("場所", "Where"),
    "op_wanted": ("求めるスキル", "Skills wanted"),
    "op_capacity": ("募集人数", "People"),
    "op_accepted": ("承認済み", "accepted"),
    "op_people": ("人", ""),
    "op_points_event": ("ボランティアポイントの対象です。", "Volunteers earn points at this event."),
    "op_status_open": ("受付中", "Open"),
    "op_status_closed": ("締切", "Closed"),
    "op_apply": ("応募する", "Apply"),
    "op_message": ("主催者へのメッセージ（任意）", "A message to the organiser (optional)"),
    "op_applied": ("応募しました。主催者からの返事をお待ちください。", "Applied. The organiser will answer."),
    "op_withdraw": ("応募を取り下げる", "Withdraw"),
    "op_withdrawn": ("応募を取り下げました。", "Withdrawn."),
    "op_mine": ("あなたの応募", "Your application"),
    "op_st_pending": ("返事待ち", "Waiting"),
    "op_st_accepted": ("承認されました", "Accepted"),
    "op_st_declined": ("今回は見送りとなりました", "Declined"),
    "op_st_withdrawn": ("取り下げ済み", "Withdrawn"),
    "op_applicants": ("応募者", "Applicants"),
    "op_org_pending": ("未回答", "To answer"),
    "op_org_accepted": ("承認済み", "Accepted"),
    "op_org_declined": ("見送り", "Declined"),
    "op_org_withdrawn": ("取り下げ", "Withdrawn"),
    "op_no_applicants": ("まだ応募はありません。", "No application yet."),
    "op_accept": ("承認する", "Accept"),
    "op_decline": ("見送る", "Decline"),
    "op_decided": ("回答しました。応募者に通知されます。", "Answered. The applicant is told."),
    "op_close": ("募集を締め切る", "Close the opening"),
    "op_closed_done": ("募集を締め切りました。", "The opening is closed."),
    "op_back": ("募集の一覧へ", "All openings"),
    "op_to_applicants": ("応募者を見る", "See the applicants"),
    "op_posted": ("募集を公開しました。", "The opening is published."),
})
add_nav("op_nav", "/openings", "user", "join")

DECISIONS = ("accept", "decline")


def because(r: c.Reason, lang: str) -> str:
    value = categories.labels(lang).get(r.value, r.value) if r.kind == "interest" else r.value
    return t(f"op_why_{r.kind}", lang).format(x=value)


async def _sns(request: Request, endpoint: str, payload: Any) -> Any:
    return await call(request, sc.SERVICE, endpoint, payload)


def _ctx(lang: str) -> dict[str, Any]:
    return {"jst": jst, "category_names": categories.labels(lang), "because": lambda r: because(r, lang)}


async def _list_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None,
                     notice: str | None = None) -> Response:
    lang = ps.lang(request)
    try:
        mine = c.Matches.model_validate(await _sns(request, c.EP_OPENING_FOR_ME, c.ForMeQuery(
            actor=actor_of(user), district=user.district[:c.DISTRICT_MAX], interests=list(user.interests)[:64])))
        every = c.OpeningList.model_validate(await _sns(request, c.EP_OPENING_LIST, c.OpeningListQuery(limit=50)))
    except errors.ServiceError as exc:
        return message(request, heading=t("op_title", lang), paragraphs=[why(exc, lang)], status=error_status(exc),
                       user=user)
    if request.query_params.get("saved"):
        notice = t("op_skills_saved", lang)
    return render(request, "sns/openings.html", status=status, user=user, error=error, notice=notice, mine=mine,
                  every=every.openings, **_ctx(lang))


@router.get("/openings", response_class=HTMLResponse)
async def openings_page(request: Request, user: CurrentUser) -> Response:
    return await _list_page(request, user)


@router.post("/openings/skills")
async def skills_save(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _sns(request, c.EP_SKILLS_PUT, c.SkillsIn(actor=actor_of(user), skills=str(form.get("skills", ""))))
    except (ValidationError, errors.ServiceError) as exc:
        return await _list_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse("/openings?saved=1", status_code=303)


def _when(raw: Any) -> datetime | None:
    """A datetime-local field, read as Japan's time."""
    text = str(raw or "").strip()
    if not text:
        return None
    return datetime.fromisoformat(text).replace(tzinfo=JST)


async def _new_page(request: Request, user: ic.User, *, status: int = 200, error: str | None = None,
                    form: dict[str, Any] | None = None, chosen: list[str] | None = None) -> Response:
    lang = ps.lang(request)
    try:
        found = sc.CommunityList.model_validate(await _sns(request, sc.EP_COMMUNITY_LIST, sc.CommunityListQuery(
            member=actor_of(user), include_closed=False, limit=sc.PAGE_MAX)))
    except errors.ServiceError as exc:
        return message(request, heading=t("op_new", lang), paragraphs=[why(exc, lang)], status=error_status(exc),
                       user=user)
    hosts = [(f"community:{x.id}", x.name) for x in found.communities if x.my_role == "leader"]
    theme = request.query_params.get("theme") or (form or {}).get("theme", "")
    if theme:
        hosts.append((f"theme:{theme}", t("op_theme", lang)))
    return render(request, "sns/opening_new.html", status=status, user=user, error=error, hosts=hosts,
                  form=form or {}, chosen=chosen or [], theme=theme, **_ctx(lang))


@router.get("/openings/new", response_class=HTMLResponse)
async def opening_new_page(request: Request, user: CurrentUser) -> Response:
    q = request.query_params  # the community's or the theme's page links here with its host chosen
    host = f"theme:{q['theme']}" if q.get("theme") else f"community:{q.get('community', '')}"
    return await _new_page(request, user, form={"host": host})


@router.post("/openings/new")
async def opening_new(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    fields = {k: str(form.get(k, "")) for k in ("host", "title", "task", "skills", "district", "place", "starts_at",
                                                   "ends_at", "capacity", "event_code", "theme")}
    chosen = [str(x) for x in (await request.form()).getlist("categories")]
    kind, _, host_id = fields["host"].partition(":")
    try:
        made = c.Opening.model_validate(await _sns(request, c.EP_OPENING_CREATE, c.OpeningCreate.model_validate({
            "actor": actor_of(user), "host_kind": kind, "host_id": host_id, "title": fields["title"],
            "task": fields["task"], "skills": fields["skills"], "categories": chosen, "district": fields["district"],
            "place": fields["place"], "starts_at": _when(fields["starts_at"]), "ends_at": _when(fields["ends_at"]),
            "capacity": fields["capacity"] or 1, "event_code": fields["event_code"].strip() or None})))
    except (ValueError, ValidationError, errors.ServiceError) as exc:
        status = bad_status(exc) if isinstance(exc, ValidationError | errors.ServiceError) else 400
        return await _new_page(request, user, status=status, error=why(exc, ps.lang(request)), form=fields,
                               chosen=chosen)
    return RedirectResponse(f"/openings/{made.id}?posted=1", status_code=303)


async def _detail_page(request: Request, user: ic.User, opening_id: str, *, status: int = 200,
                       error: str | None = None) -> Response:
    lang = ps.lang(request)
    try:
        found = c.Opening.model_validate(await _sns(request, c.EP_OPENING_GET, c.OpeningQuery(
            opening_id=opening_id, actor=actor_of(user))))
    except (ValidationError, errors.ServiceError) as exc:
        code = error_status(exc) if isinstance(exc, errors.ServiceError) else 404
        return message(request, heading=t("op_title", lang), paragraphs=[why(exc, lang)], status=code,
                       link=("/openings", t("op_back", lang)), user=user)
    notice = next((t(key, lang) for q, key in (("applied", "op_applied"), ("withdrawn", "op_withdrawn"),
                                                ("posted", "op_posted"), ("closed", "op_closed_done"))
                   if request.query_params.get(q)), None)
    return render(request, "sns/opening.html", status=status, user=user, error=error, notice=notice, op=found,
                  **_ctx(lang))


@router.get("/openings/{opening_id}", response_class=HTMLResponse)
async def opening_page(opening_id: str, request: Request, user: CurrentUser) -> Response:
    return await _detail_page(request, user, opening_id)


@router.post("/openings/{opening_id}/apply")
async def opening_apply(opening_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _sns(request, c.EP_OPENING_APPLY, c.ApplyIn(actor=actor_of(user), opening_id=opening_id,
                                                           message=str(form.get("message", ""))))
    except (ValidationError, errors.ServiceError) as exc:
        return await _detail_page(request, user, opening_id, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/openings/{opening_id}?applied=1", status_code=303)


@router.post("/openings/{opening_id}/withdraw")
async def opening_withdraw(opening_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _sns(request, c.EP_OPENING_WITHDRAW, c.OpeningAction(actor=actor_of(user), opening_id=opening_id))
    except (ValidationError, errors.ServiceError) as exc:
        return await _detail_page(request, user, opening_id, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/openings/{opening_id}?withdrawn=1", status_code=303)


@router.post("/openings/{opening_id}/close")
async def opening_close(opening_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _sns(request, c.EP_OPENING_CLOSE, c.OpeningAction(actor=actor_of(user), opening_id=opening_id))
    except (ValidationError, errors.ServiceError) as exc:
        return await _detail_page(request, user, opening_id, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/openings/{opening_id}?closed=1", status_code=303)


async def _applicants_page(request: Request, user: ic.User, opening_id: str, *, status: int = 200,
                           error: str | None = None) -> Response:
    lang = ps.lang(request)
    try:
        found = c.Applicants.model_validate(await _sns(request, c.EP_OPENING_APPLICANTS, c.OpeningAction(
            actor=actor_of(user), opening_id=opening_id)))
    except (ValidationError, errors.ServiceError) as exc:
        code = error_status(exc) if isinstance(exc, errors.ServiceError) else 404
        return message(request, heading=t("op_applicants", lang), paragraphs=[why(exc, lang)], status=code,
                       link=("/openings", t("op_back", lang)), user=user)
    notice = t("op_decided", lang) if request.query_params.get("decided") else None
    return render(request, "sns/opening_applicants.html", status=status, user=user, error=error, notice=notice,
                  found=found, **_ctx(lang))


@router.get("/openings/{opening_id}/applicants", response_class=HTMLResponse)
async def applicants_page(opening_id: str, request: Request, user: CurrentUser) -> Response:
    return await _applicants_page(request, user, opening_id)


@router.post("/openings/{opening_id}/decide")
async def applicants_decide(opening_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _sns(request, c.EP_OPENING_DECIDE, c.DecideIn.model_validate({
            "actor": actor_of(user), "application_id": str(form.get("application_id", "")),
            "decision": str(form.get("decision", ""))}))
    except (ValidationError, errors.ServiceError) as exc:
        return await _applicants_page(request, user, opening_id, status=bad_status(exc),
                                      error=why(exc, ps.lang(request)))
    return RedirectResponse(f"/openings/{opening_id}/applicants?decided=1", status_code=303)
