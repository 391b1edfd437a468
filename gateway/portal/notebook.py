"""まちづくり手帳 (a person's activity notebook, /notebook) and the staff's figures (/staff/figures): tables that scroll
inside their box on a phone, bar charts drawn as inline SVG on the server (no JavaScript), CSV and PDF downloads.
Everything is asked of the points service (notebook.*, figures.*, events.*) with the person as the actor."""

from __future__ import annotations

import asyncio
import base64
from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, call_points, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.open_data import staff_usage
from towntip.kernel import categories, errors
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import notebook as nc
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as snc

router = APIRouter(include_in_schema=False)

add_words({
    "notebook": ("まちづくり手帳", "Activity notebook"),
    "notebook_intro": (
        "イベントへの参加やボランティア（貢献）と寄付の記録です。地区・地域全体の平均（1人あたり）と比べられます。",
        "Your events and volunteering (contribution) and your donations, with totals, next to the "
        "average per person in your district and in the whole region."),
    "nb_date": ("実施日", "Date"), "nb_field": ("分野", "Field"), "nb_title": ("内容", "Activity"),
    "nb_kind": ("活動", "Kind"), "nb_points": ("獲得ポイント", "Points"), "nb_contribution": ("貢献", "Contribution"),
    "nb_donation": ("寄付", "Donation"), "nb_empathy": ("共感", "Empathy"), "nb_co2": ("負荷削減", "CO2 reduction"),
    "nb_hours": ("活動時間", "Hours"), "nb_kcal": ("消費カロリー", "Calories"), "nb_total": ("合計", "Total"),
    "nb_district_avg": ("地区平均", "District average"), "nb_region_avg": ("地域全体の平均", "Region average"),
    "nb_people": ("人", "people"),
    "nb_empty": ("まだ記録がありません。イベントでまちづくりカードをタッチすると記録されます。",
                 "Nothing yet: touch your card at an event and it shows here."),
    "nb_no_district": ("プロフィールで地区を設定すると、地区の平均と比べられます。",
                       "Set your district in your profile to compare with it."),
    "nb_empathy_note": ("共感（—）は、いまは集計できませんでした。時間をおいてもう一度ご覧ください。",
                        "Empathy (—) could not be counted just now. Please look again later."),
    "nb_empathy_counted": ("共感は、あなたの投稿・コメント・テーマ・事例に寄せられた共感の数です（合計欄）。",
                           "Empathy counts what others empathised with in your posts, comments, themes and "
                           "cases (in the total)."),
    "nb_download": ("ダウンロード", "Download"),
    "figures": ("集計（職員）", "Figures (staff)"),
    "fig_intro": ("まちづくりポイントの発行と参加の状況です（地域全体や地区毎の状況を可視化）。",
                  "Points issued and participation, for the whole region and per district."),
    "fig_events": ("イベント別の発行状況", "Issuance per event"), "fig_months": ("月別の推移", "Per month"),
    "fig_districts": ("地区別", "Per district"), "fig_fields": ("分野別", "Per field"),
    "fig_points": ("ポイント", "Points"), "fig_people": ("人数", "People"),
    "fig_participations": ("参加回数", "Participations"), "fig_registered": ("登録者", "Registered"),
    "fig_active": ("活動者", "Active"), "fig_unknown": ("（地区不明）", "(district not known)"),
    "fig_total": ("総発行ポイント数", "Points issued"), "fig_month": ("月", "Month"),
    "fig_event_facts": ("イベントの手帳情報", "An event's notebook facts"),
    "fig_event_code": ("イベントコード（半角英小文字・数字）", "Event code (a-z, 0-9)"),
    "fig_event_name": ("イベント名", "Event name"),
    "fig_participant": ("参加者のポイント", "Points for participants"),
    "fig_volunteer": ("ボランティアのポイント", "Points for volunteers"),
    "fig_activity": ("活動の種類", "Kind of activity"), "fig_none": ("（なし）", "(none)"),
    "fig_hours": ("活動時間（時間／回）", "Hours per participation"),
    "fig_co2": ("負荷削減（kg-CO2／回）", "CO2 reduction per participation (kg)"),
    "fig_kcal": ("消費カロリー（kcal／回）", "Calories per participation (kcal)"),
    "act_participate": ("参加", "Took part"), "act_carry_out": ("実施", "Carried out"),
    "act_learn": ("受講", "Studied"),
    "act_volunteer": ("ボランティア", "Volunteered"), "act_donate": ("寄付", "Donated"),
})
add_words({
    "nb_chart_compare": ("ポイントの比較", "Points compared"),
    "nb_chart_fields": ("分野ごとのポイント", "Points by field"),
    "nb_you": ("あなた", "You"),
    "nb_other": ("その他", "Other"),
})
add_nav("notebook", "/notebook", "user", "mine")
add_nav("figures", "/staff/figures", "staff")


def _num(v: float | int | None) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v % 1:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    return f"{int(v):,}"


def bar_chart(items: list[tuple[str, float]], *, label: str, unit: str = "", scale: float | None = None) -> Markup:
    """A horizontal bar chart as inline SVG: one bar per item, its value at the end; scales to the box's width (a
    full bar is the largest value, or `scale`: 100 for percentages)."""
    width, left, row = 360, 120, 24
    top = scale or max((v for _, v in items), default=0) or 1
    height = row * max(len(items), 1) + 8
    parts = [f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
             f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for i, (name, value) in enumerate(items):
        y = 4 + i * row
        w = (width - left - 56) * value / top
        short = name if len(name) <= 9 else name[:8] + "…"
        parts.append(f'<g><title>{escape(name)}: {_num(value)}{escape(unit)}</title>'
                     f'<text x="{left - 4}" y="{y + 15}" text-anchor="end" font-size="11">{escape(short)}</text>'
                     f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="#0b6e4f"/>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size="11">{_num(value)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def field_name(code: str | None, lang: str) -> str:
    for cat in categories.all_categories():
        if cat.code == code:
            return cat.name_en if lang == "en" else cat.name_ja
    return code or ""


async def empathy_of(request: Request, user: Any) -> int | None:
    """共感 the person received: their posts' and comments' (sns) and their themes' and cases' (projects), asked
    of both services at once (those the node runs); None when one cannot answer now (the notebook shows "—" rather
    than half)."""
    q = lk.ReceivedQuery(global_handle=user.global_handle)
    running = request.app.state.settings.expected_services()
    asked = [s for s in (snc.SERVICE, prc.SERVICE) if s in running]  # a node may run neither
    if not asked:
        return None
    try:
        got = await asyncio.gather(*(call(request, s, lk.EP_LIKES_RECEIVED, q) for s in asked))
    except errors.ServiceError:
        return None
    return sum(lk.Received.model_validate(g).likes for g in got)


@router.get("/notebook", response_class=HTMLResponse)
async def notebook_page(request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        nb = nc.Notebook.model_validate(await call_points(request, nc.EP_NOTEBOOK_MINE,
                                                          nc.NotebookQuery(actor=actor_of(user))))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=503, user=user)
    empathy = await empathy_of(request, user)
    if empathy is not None:
        nb = nb.model_copy(update={"totals": nb.totals.model_copy(update={"empathy": empathy}),
                                   "empathy_counted": True})
    return render(request, "notebook/notebook.html", user=user, nb=nb, num=_num, field_name=field_name,
                  charts=_notebook_charts(nb, lang))


def _notebook_charts(nb: nc.Notebook, lang: str) -> dict[str, Markup]:
    """The notebook's totals as pictures: the person's points beside the averages, and where they came from."""
    compare = [(t("nb_you", lang), float(nb.totals.points))] + [
        (t("nb_district_avg", lang) if a.scope == "district" else t("nb_region_avg", lang), a.points)
        for a in (nb.district_average, nb.region_average) if a is not None]
    fields: dict[str, float] = {}
    for e in nb.entries:
        name = (e.field_en if lang == "en" else e.field_ja) or t("nb_other", lang)
        fields[name] = fields.get(name, 0) + e.points
    ranked = sorted(fields.items(), key=lambda kv: -kv[1])[:8]
    return {"compare": bar_chart(compare, label=t("nb_chart_compare", lang), unit="PT"),
            "fields": bar_chart(ranked, label=t("nb_chart_fields", lang), unit="PT") if ranked else Markup("")}


@router.get("/notebook/export.{fmt}")
async def notebook_export(fmt: str, request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        out = nc.Export.model_validate(await call_points(request, nc.EP_NOTEBOOK_EXPORT, nc.NotebookExportIn(
            actor=actor_of(user), format=fmt, lang=lang, empathy=await empathy_of(request, user))))
    except ValidationError:
        return message(request, heading=t("error", lang), paragraphs=["csv / pdf"], status=404, user=user)
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=503, user=user)
    return _download(out)


def _download(out: nc.Export) -> Response:
    return Response(base64.b64decode(out.base64), media_type=out.content_type, headers={
        "Content-Disposition": f'attachment; filename="{out.filename}"', "Cache-Control": "no-store"})


# ---- staff ------------------------------------------------------------------------------------------------------


async def _figures(request: Request, user: Any, *, status: int = 200, **ctx: Any) -> Response:
    lang = ps.lang(request)
    try:
        fig = nc.Figures.model_validate(await call_points(request, nc.EP_FIGURES,
                                                          nc.FiguresQuery(actor=actor_of(user))))
        evs = pc.EventList.model_validate(await call_points(request, pc.EP_EVENT_LIST, None))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)],
                       status=exc.code if exc.code in (403, 404) else 503, user=user)
    unknown = t("fig_unknown", lang)
    charts = {
        "events": bar_chart([(e.name, e.points) for e in fig.events], label=t("fig_events", lang)),
        "months": bar_chart([(m.month, m.points) for m in fig.months], label=t("fig_months", lang)),
        "districts": bar_chart([(d.district or unknown, d.points) for d in fig.districts],
                               label=t("fig_districts", lang)),
        "fields": bar_chart([((f"{f.field_letter} " if f.field_letter else "") + (f.name_en if lang == "en"
                                                                                 else f.name_ja), f.points)
                             for f in fig.fields], label=t("fig_fields", lang)),
    }
    usage = await staff_usage(request, user)  # 利用状況: registered, card members, leaders per month (open data)
    charts["usage"] = bar_chart([(n[1] if lang == "en" else n[0], float(v or 0))
                                 for n, v in zip(usage.short, usage.totals, strict=True)], label=t("od_usage", lang))
    return render(request, "notebook/figures.html", status=status, user=user, fig=fig, charts=charts, num=_num,
                  events=evs.events, grid=categories.all_categories(), unknown=unknown, usage=usage, **ctx)


@router.get("/staff/figures", response_class=HTMLResponse)
async def figures_page(request: Request, user: StaffUser) -> Response:
    return await _figures(request, user)


@router.get("/staff/figures/{table}.csv")
async def figures_csv(table: str, request: Request, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        out = nc.Export.model_validate(await call_points(request, nc.EP_FIGURES_EXPORT, nc.FiguresExportIn(
            actor=actor_of(user), table=table, lang=lang)))
    except ValidationError:
        return message(request, heading=t("error", lang), paragraphs=[table], status=404, user=user)
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=503, user=user)
    return _download(out)


@router.post("/staff/figures/event")
async def put_event(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    """Staff set an event's rule and its notebook facts (events.put; empty fields leave no fact)."""
    lang = ps.lang(request)
    facts = {k: (str(form.get(k, "")).strip() or None) for k in ("field", "activity", "hours", "co2_kg", "kcal")}
    try:
        ev = pc.EventIn(code=str(form.get("code", "")).strip(), name=str(form.get("name", "")),
                        participant_points=str(form.get("participant_points", "1")).strip() or 1,
                        volunteer_points=str(form.get("volunteer_points", "5")).strip() or 5, **facts)
        saved = pc.EventOut.model_validate(await call_points(request, pc.EP_EVENT_PUT, ev))
    except ValidationError as exc:
        return await _figures(request, user, status=400, error=why(exc, lang),
                              form={k: str(v) for k, v in form.items()})
    except errors.ServiceError as exc:
        return await _figures(request, user, status=error_status(exc),
                              error=why(exc, lang))
    shown = saved.model_dump(include={"code", "name", "participant_points", "volunteer_points", "field", "activity",
                                      "hours", "co2_kg", "kcal"})
    return await _figures(request, user, notice=f"{t('saved', lang)} {ev.name} ({ev.code})",
                          form={k: _num(v) if isinstance(v, float) else ("" if v is None else str(v))
                                for k, v in shown.items()})
