"""The portal's lottery (抽選) and registered group (団体登録) pages: a resident applies for a lottery and sees the
result; anyone checks a drawn lottery against its published seed and entries; a resident applies to register a
group; staff open rounds, see their entries, draw (after a confirmation) and see the results, and decide on groups.
Each page asks the bookings service (svc.<node>.bookings.lottery.* / groups.*) with the person as an Actor; the
service decides what they may do."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from gateway.deps import CsrfForm, CurrentUser, OptionalUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.pages import JST
from towntip.kernel import errors
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.contracts import identity as ic

router = APIRouter(include_in_schema=False)
CHOICES = 3  # ranked choices offered on the form (the contract takes up to lc.CHOICES_MAX)
WEEKDAYS_JA = "月火水木金土日"

add_words({
    "lt_nav": ("抽選", "Lottery"),
    "lt_nav_staff": ("抽選の管理（職員）", "Lotteries (staff)"),
    "lt_title": ("施設の抽選予約", "Facility lotteries"),
    "lt_intro": ("人気の施設は、月ごとに抽選で予約を受け付けます。"
                 "申込期間中に希望の枠（第1〜第3希望）を選んで申し込み、抽選後に結果をこのページとマイ抽選で確認できます。抽選後に空いた枠は先着順で予約できます。",
                 "Popular facilities take bookings by lottery, month by month: in the application window choose "
                 "the slots you want (first to third choice); see the result here and in My lottery entries after "
                 "the draw. What is left after the draw is first come, first served."),
    "lt_none": ("受付中・実施済みの抽選はありません。", "No lottery yet."),
    "lt_month": ("対象月", "Month"),
    "lt_facility": ("施設", "Facility"),
    "lt_window": ("申込期間", "Application window"),
    "lt_window_before": ("受付前", "Not open yet"),
    "lt_window_open": ("受付中", "Open"),
    "lt_window_closed": ("受付終了", "Closed"),
    "lt_state_drawn": ("抽選済み", "Drawn"),
    "lt_entries": ("申込数", "Entries"),
    "lt_applicants": ("申込者数", "Applicants"),
    "lt_max": ("1団体（個人）あたりの申込上限", "Entries per group (or person)"),
    "lt_apply": ("抽選に申し込む", "Enter the lottery"),
    "lt_choice": ("第{n}希望", "Choice {n}"),
    "lt_choice_none": ("（選ばない）", "(none)"),
    "lt_purpose": ("利用目的", "Purpose"),
    "lt_as": ("申込者", "Apply as"),
    "lt_as_me": ("個人として", "Myself"),
    "lt_login": ("申し込むにはログインしてください。", "Log in to enter."),
    "lt_mine": ("マイ抽選", "My lottery entries"),
    "lt_mine_none": ("抽選の申込はまだありません。", "No lottery entries yet."),
    "lt_entered": ("抽選の申込を受け付けました。", "Your entry is recorded."),
    "lt_ref": ("申込番号", "Entry ref"),
    "lt_result": ("結果", "Result"),
    "lt_state_entered": ("抽選待ち", "Waiting for the draw"),
    "lt_state_withdrawn": ("取り下げ", "Withdrawn"),
    "lt_state_won": ("当選", "Won"),
    "lt_state_lost": ("落選", "Not drawn"),
    "lt_won_slot": ("当選した枠", "Slot won"),
    "lt_withdraw": ("申込を取り下げる", "Withdraw"),
    "lt_verify": ("抽選の検証", "Check the draw"),
    "lt_verify_intro": ("抽選は、抽選時に生成した乱数の種（シード）と申込の一覧から決まります。公開されたデータから"
                        "誰でも同じ結果を再計算できます（個人名は含みません）。",
                        "The draw follows from the seed made at the draw and the list of entries: anyone can "
                        "recompute the same result from the published data (no personal data in it)."),
    "lt_seed": ("シード", "Seed"),
    "lt_algorithm": ("抽選方式", "Algorithm"),
    "lt_match": ("一致：公開された結果は、シードと申込から再計算した結果と同じです。",
                 "Match: the published results are the ones the seed and the entries give."),
    "lt_mismatch": ("不一致：再計算した結果が公開された結果と異なります。",
                    "Mismatch: the recomputed results differ from the published ones."),
    "lt_held": ("抽選前に予約済みの枠", "Slots held before the draw"),
    "lt_applicant": ("申込者（団体名または申込番号）", "Applicant (group name or entry ref)"),
    "lt_choices": ("希望", "Choices"),
    "lt_recomputed": ("再計算", "Recomputed"),
    "lt_json": ("公開データ（JSON）", "Published data (JSON)"),
    "lt_cli": ("手元で検証するには：", "To check it yourself:"),
    "lt_staff": ("抽選の管理（職員）", "Lotteries (staff)"),
    "lt_open": ("抽選を開始する", "Open a lottery"),
    "lt_opens": ("受付開始", "Opens"),
    "lt_closes": ("受付締切", "Closes"),
    "lt_opened": ("抽選を開始しました。", "The lottery is open."),
    "lt_draw": ("抽選を実施する", "Run the draw"),
    "lt_draw_confirm": ("申込を締め切り、抽選を実施します。やり直しはできません。",
                        "Run the draw now. It cannot be undone."),
    "lt_drawn": ("抽選を実施しました。", "The draw is done."),
    "lt_winners": ("当選数", "Winners"),
    "lt_results": ("抽選結果", "Results"),
    "lt_see": ("詳細", "Details"),
    "gr_title": ("団体登録", "Registered groups"),
    "gr_intro": ("団体登録をすると、団体として施設を予約でき（市内団体の料金）、抽選には団体として申し込めます。"
                 "申請は職員が確認して承認します。", "A registered group books facilities as the group (the city "
                 "group fee) and enters lotteries as the group. Staff check and approve the application."),
    "gr_mine": ("所属する団体", "My groups"),
    "gr_none": ("所属する団体はありません。", "No groups."),
    "gr_apply": ("団体登録を申請する", "Apply to register a group"),
    "gr_name": ("団体名", "Group name"),
    "gr_activity": ("活動内容", "Activity"),
    "gr_district": ("活動地区", "District"),
    "gr_members": ("会員（グローバルID、改行区切り）", "Members (global IDs, one a line)"),
    "gr_bookers": ("予約できる会員（グローバルID、改行区切り）", "Members who may book (global IDs, one a line)"),
    "gr_count": ("会員数", "Number of members"),
    "gr_representative": ("代表者", "Representative"),
    "gr_applied": ("団体登録を申請しました。職員の承認をお待ちください。", "Applied: staff will check it."),
    "gr_state_pending": ("承認待ち", "Pending"),
    "gr_state_approved": ("承認済み", "Approved"),
    "gr_state_rejected": ("却下", "Rejected"),
    "gr_state_suspended": ("停止中", "Suspended"),
    "gr_staff": ("団体登録の審査（職員）", "Group applications (staff)"),
    "gr_approve": ("承認", "Approve"),
    "gr_reject": ("却下", "Reject"),
    "gr_suspend": ("停止", "Suspend"),
    "gr_reinstate": ("再開", "Reinstate"),
    "gr_note": ("メモ（理由）", "Note (reason)"),
    "gr_decided": ("保存しました。", "Saved."),
    "gr_all": ("登録団体", "Groups"),
})
add_nav("lt_nav", "/lottery", "all", "join")
add_nav("lt_nav_staff", "/staff/lottery", "staff")


class _Empty(BaseModel):
    pass


async def _ask(request: Request, endpoint: str, payload: BaseModel | None = None) -> Any:
    return await call(request, bc.SERVICE, endpoint, payload if payload is not None else _Empty())


def _jst(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(JST).strftime(fmt)


def _slot(s: Any, lang: str) -> str:
    """"12/05(土) 午前 09:00-12:00" for a slot (a RoundSlot, or an Interval of the published data)."""
    start, end = s.start.astimezone(JST), s.end.astimezone(JST)
    day = f"{start:%m/%d}({WEEKDAYS_JA[start.weekday()]})" if lang == "ja" else f"{start:%a %d %b}"
    name = f" {s.name_ja}" if getattr(s, "name_ja", None) else ""
    return f"{day}{name} {start:%H:%M}-{end:%H:%M}"


def _page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    return render(request, f"bookings/{template}", status=status, user=user, jst=_jst,
                  slot=lambda s: _slot(s, lang), **ctx)


def _refusal(request: Request, exc: Exception, user: ic.User | None, back: tuple[str, str] | None = None
             ) -> HTMLResponse:
    lang = ps.lang(request)
    status = error_status(exc) if isinstance(exc, errors.ServiceError) else 400
    return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=status, user=user,
                   link=back or ("/lottery", t("lt_title", lang)))


async def _names(request: Request) -> dict[str, str]:
    lang = ps.lang(request)
    found = bc.FacilityList.model_validate(await _ask(request, bc.EP_FACILITY_LIST, bc.FacilityListQuery()))
    return {f.id: (f.name_en if lang == "en" else f.name_ja) for f in found.root}


def _lines(value: Any) -> list[str]:
    return [x.strip() for x in str(value or "").replace(",", "\n").splitlines() if x.strip()]


def _local(value: Any) -> Any:
    """A datetime-local field ("2026-11-10T17:00") as Japan's time; anything else is passed on to be refused."""
    text = str(value or "").strip()
    try:
        return datetime.fromisoformat(text).replace(tzinfo=JST) if text else text
    except ValueError:
        return text


# ---- residents: lotteries -----------------------------------------------------------------------------------------


@router.get("/lottery", response_class=HTMLResponse)
async def rounds_page(request: Request, user: OptionalUser) -> Response:
    try:
        rounds = lc.LotteryRoundList.model_validate(await _ask(request, lc.EP_LOTTERY_LIST, lc.LotteryListQuery()))
        names = await _names(request)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user, back=("/", t("home", ps.lang(request))))
    return _page(request, "lottery_list.html", user=user, rounds=rounds.rounds, names=names)


async def _round_page(request: Request, user: ic.User | None, round_id: str, *, status: int = 200, **ctx: Any
                      ) -> Response:
    try:
        r = lc.LotteryRound.model_validate(await _ask(request, lc.EP_LOTTERY_GET, lc.LotteryQuery(round_id=round_id)))
        names = await _names(request)
        my_groups = [] if user is None else [g for g in lc.GroupList.model_validate(await _ask(
            request, lc.EP_GROUP_MINE, lc.GroupMineQuery(actor=actor_of(user)))).groups if g.state == "approved"]
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    return _page(request, "lottery_round.html", user=user, status=status, r=r, names=names, groups=my_groups,
                 choices=range(1, CHOICES + 1), **ctx)


@router.get("/lottery/{round_id}", response_class=HTMLResponse)
async def round_page(round_id: str, request: Request, user: OptionalUser) -> Response:
    return await _round_page(request, user, round_id)


@router.post("/lottery/{round_id}/enter")
async def enter(round_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    picked = [str(form.get(f"choice{n}") or "") for n in range(1, CHOICES + 1)]
    choices = [{"start": p.split("|")[0], "end": p.split("|")[-1]} for p in picked if p]
    try:
        entry = lc.LotteryEntry.model_validate(await _ask(request, lc.EP_LOTTERY_ENTER, lc.LotteryEnter(
            actor=actor_of(user), round_id=round_id, choices=choices, purpose=form.get("purpose", ""),
            group_id=form.get("group_id") or None)))
    except (ValidationError, errors.ServiceError) as exc:
        return await _round_page(request, user, round_id, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                 form=form)
    return RedirectResponse(f"/lottery/mine/entries?entered={entry.id}", status_code=303)


@router.get("/lottery/mine/entries", response_class=HTMLResponse)
async def mine_page(request: Request, user: CurrentUser) -> Response:
    try:
        mine = lc.LotteryEntryList.model_validate(await _ask(request, lc.EP_LOTTERY_MINE, lc.LotteryMineQuery(
            actor=actor_of(user))))
        names = await _names(request)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    notice = t("lt_entered", ps.lang(request)) if request.query_params.get("entered") else None
    return _page(request, "lottery_mine.html", user=user, entries=mine.entries, names=names, notice=notice,
                 new=request.query_params.get("entered"))


@router.post("/lottery/entries/{entry_id}/withdraw")
async def withdraw(entry_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _ask(request, lc.EP_LOTTERY_WITHDRAW, lc.LotteryEntryAction(actor=actor_of(user), entry_id=entry_id))
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back=("/lottery/mine/entries", t("lt_mine", ps.lang(request))))
    return RedirectResponse("/lottery/mine/entries", status_code=303)


@router.get("/lottery/{round_id}/verify", response_class=HTMLResponse)
async def verify_page(round_id: str, request: Request, user: OptionalUser) -> Response:
    """The public check: the published seed, entries and results, and the draw recomputed from them."""
    try:
        q = lc.LotteryQuery(round_id=round_id)
        pub = lc.LotteryPublication.model_validate(await _ask(request, lc.EP_LOTTERY_PUBLISHED, q))
        check = lc.LotteryCheck.model_validate(await _ask(request, lc.EP_LOTTERY_VERIFY, q))
        names = await _names(request)
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user)
    recomputed = {r.ref: r.won for r in check.recomputed}
    return _page(request, "lottery_verify.html", user=user, pub=pub, check=check, names=names,
                 results={r.ref: r.won for r in pub.results}, recomputed=recomputed)


# ---- residents: groups ------------------------------------------------------------------------------------------


async def _groups_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        mine = lc.GroupList.model_validate(await _ask(request, lc.EP_GROUP_MINE, lc.GroupMineQuery(
            actor=actor_of(user))))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "lottery_groups.html", user=user, status=status, groups=mine.groups, **ctx)


@router.get("/groups", response_class=HTMLResponse)
async def groups_page(request: Request, user: CurrentUser) -> Response:
    notice = t("gr_applied", ps.lang(request)) if request.query_params.get("applied") else None
    return await _groups_page(request, user, notice=notice)


@router.post("/groups")
async def group_apply(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        count = str(form.get("member_count") or "").strip()
        await _ask(request, lc.EP_GROUP_APPLY, lc.GroupApply(
            actor=actor_of(user), name=form.get("name", ""), activity=form.get("activity", ""),
            district=form.get("district", ""), members=_lines(form.get("members")),
            bookers=_lines(form.get("bookers")), member_count=int(count) if count.isdigit() else count))
    except (ValidationError, errors.ServiceError) as exc:
        return await _groups_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)),
                                  form=form)
    return RedirectResponse("/groups?applied=1", status_code=303)


# ---- staff ------------------------------------------------------------------------------------------------------


async def _staff_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        rounds = lc.LotteryRoundList.model_validate(await _ask(request, lc.EP_LOTTERY_LIST, lc.LotteryListQuery()))
        names = await _names(request)
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "lottery_staff.html", user=user, status=status, rounds=rounds.rounds, names=names, **ctx)


@router.get("/staff/lottery", response_class=HTMLResponse)
async def staff_page(request: Request, user: StaffUser) -> Response:
    notice = t("lt_opened", ps.lang(request)) if request.query_params.get("opened") else None
    return await _staff_page(request, user, notice=notice)


@router.post("/staff/lottery")
async def staff_open(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        maximum = str(form.get("max_entries") or "").strip()
        r = lc.LotteryRound.model_validate(await _ask(request, lc.EP_LOTTERY_OPEN, lc.LotteryOpen(
            actor=actor_of(user), facility_id=form.get("facility_id", ""), month=form.get("month", ""),
            opens_at=_local(form.get("opens_at")), closes_at=_local(form.get("closes_at")),
            max_entries=int(maximum) if maximum.isdigit() else maximum)))
    except (ValidationError, errors.ServiceError) as exc:
        return await _staff_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)), form=form)
    return RedirectResponse(f"/staff/lottery/{r.id}?opened=1", status_code=303)


async def _staff_round_page(request: Request, user: ic.User, round_id: str, *, status: int = 200, **ctx: Any
                            ) -> Response:
    try:
        q = lc.LotteryQuery(round_id=round_id)
        r = lc.LotteryRound.model_validate(await _ask(request, lc.EP_LOTTERY_GET, q))
        names = await _names(request)
        pub = lc.LotteryPublication.model_validate(await _ask(request, lc.EP_LOTTERY_PUBLISHED, q)) \
            if r.state == "drawn" else None
    except (ValidationError, errors.ServiceError) as exc:
        return _refusal(request, exc, user, back=("/staff/lottery", t("lt_staff", ps.lang(request))))
    return _page(request, "lottery_staff_round.html", user=user, status=status, r=r, names=names, pub=pub,
                 results={} if pub is None else {x.ref: x.won for x in pub.results}, **ctx)


@router.get("/staff/lottery/{round_id}", response_class=HTMLResponse)
async def staff_round(round_id: str, request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    notice = t("lt_drawn", lang) if q.get("drawn") else t("lt_opened", lang) if q.get("opened") else None
    return await _staff_round_page(request, user, round_id, notice=notice)


@router.post("/staff/lottery/{round_id}/draw")
async def staff_draw(round_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    if form.get("confirm") != "1":  # the confirmation box: a draw cannot be undone
        return await _staff_round_page(request, user, round_id, status=400, error=t("lt_draw_confirm", lang))
    try:
        await _ask(request, lc.EP_LOTTERY_DRAW, lc.LotteryDraw(actor=actor_of(user), round_id=round_id))
    except (ValidationError, errors.ServiceError) as exc:
        return await _staff_round_page(request, user, round_id, status=bad_status(exc), error=why(exc, lang))
    return RedirectResponse(f"/staff/lottery/{round_id}?drawn=1", status_code=303)


async def _staff_groups_page(request: Request, user: ic.User, *, status: int = 200, **ctx: Any) -> Response:
    try:
        found = lc.GroupList.model_validate(await _ask(request, lc.EP_GROUP_LIST, lc.GroupListQuery(
            actor=actor_of(user))))
    except errors.ServiceError as exc:
        return _refusal(request, exc, user)
    return _page(request, "lottery_staff_groups.html", user=user, status=status,
                 pending=[g for g in found.groups if g.state == "pending"],
                 others=[g for g in found.groups if g.state != "pending"], **ctx)


@router.get("/staff/groups", response_class=HTMLResponse)
async def staff_groups(request: Request, user: StaffUser) -> Response:
    notice = t("gr_decided", ps.lang(request)) if request.query_params.get("saved") else None
    return await _staff_groups_page(request, user, notice=notice)


@router.post("/staff/groups/{group_id}/decide")
async def staff_decide(group_id: str, request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    try:
        await _ask(request, lc.EP_GROUP_DECIDE, lc.GroupDecide(
            actor=actor_of(user), group_id=group_id, decision=form.get("decision", ""), note=form.get("note", "")))
    except (ValidationError, errors.ServiceError) as exc:
        return await _staff_groups_page(request, user, status=bad_status(exc), error=why(exc, ps.lang(request)))
    return RedirectResponse("/staff/groups?saved=1", status_code=303)
