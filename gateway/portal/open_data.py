"""オープンデータ (issue 20 points 8 and 9): `/open-data`, a page saying what the node publishes, under which licence,
when it was last built, with a download button; `/open-data/download`, a zip of CSV files (UTF-8 with a BOM, so
that Excel in Japan opens them) and a README.txt in Japanese and English; and the usage figures (registered people,
card members, community leaders per month) for the staff's figures page.

Where the figures come from: each service's `open_data` endpoint (towntip/kernel/contracts/open_data.py), which
answers aggregates only, with every count of people under towntip.kernel.open_data.SUPPRESS_BELOW already withheld
by the service that counted it. The gateway adds nothing personal: it writes the services' tables as they come and
merges the three usage series by month.

Security and privacy: the page and the zip are public (anyone, no login): nothing in them names a person, and small
counts are withheld, differences included (the kernel's rule, stated in the README). Building the zip asks five
services; a visitor must not be able to make every request do that, so the built zip is kept `open_data_cache_seconds`
(default 5 minutes) in this gateway process, and visitors who ask while it is being built wait for that one build
(a lock). A failed build is not kept: the visitor gets a 503 page and the next one tries again. The staff's usage
table asks the services' `usage.months` with the staff member as the actor (the services check the role).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.deps import OptionalUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, call, message, render
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel import open_data as od
from towntip.kernel.clock import JST, utcnow
from towntip.kernel.contracts import open_data as c

router = APIRouter(include_in_schema=False)

# The services that contribute, in the order their files appear; those the gateway is not configured for are skipped.
SERVICES = ("identity", "points", "sns", "bookings", "projects")
USAGE_SERVICES = ("identity", "points", "sns")
SERIES = {  # series -> (Japanese, English), the seed's 利用状況
    "registered": ("ポータルサイト登録者", "Registered people"),
    "card_members": ("カード会員", "Card members"),
    "community_leaders": ("コミュニティリーダー", "Community leaders"),
}
SHORT = {"registered": ("登録者", "Registered"), "card_members": ("カード会員", "Card members"),
         "community_leaders": ("リーダー", "Leaders")}  # a chart's labels
USAGE_FILE = "usage_by_month"

add_words({
    "open_data": ("オープンデータ", "Open data"),
    "open_data_desc": ("まちの活動の集計を CSV でダウンロードできます。", "The town's figures as CSV files."),
    "od_intro": (
        "このまちのポータルの集計データを、だれでも自由に利用できるオープンデータとして公開しています。"
        "個人が特定される情報は含みません。",
        "The portal's figures, published for anyone to use freely. Nothing in them identifies a person."),
    "od_contents": ("含まれるデータ", "What is in it"),
    "od_licence": ("利用規約（ライセンス）", "Licence"),
    "od_licence_note": (
        "出典を記載すれば、複製・加工・商用利用を含め自由に利用できます（CC BY 4.0 と互換）。",
        "Free to copy, adapt and use commercially, with attribution (compatible with CC BY 4.0)."),
    "od_attribution": ("出典の書き方", "How to attribute"),
    "od_suppressed": (
        "人数が {n} 人未満になる値は「{s}」と表示し、数値を公開していません（差し引きで分かる値も同様です）。",
        "Counts of fewer than {n} people read \"{s}\" and are not published (nor values that would reveal them by "
        "difference)."),
    "od_built": ("最終作成日時", "Last built"),
    "od_not_built": ("まだ作成していません（ダウンロード時に作成します）", "Not built yet (built when downloaded)"),
    "od_download": ("ZIP をダウンロード", "Download the ZIP"),
    "od_format": ("形式: ZIP（CSV は UTF-8・BOM 付き、README.txt 付き）",
                  "Format: ZIP (CSV in UTF-8 with a BOM, with README.txt)"),
    "od_unavailable": ("いまはオープンデータを作成できません。しばらくしてからもう一度お試しください。",
                       "The open data cannot be built just now. Please try again in a moment."),
    "od_usage": ("利用状況（月別）", "Usage per month"),
    "od_usage_intro": ("月末時点の人数と、その月に増えた人数です（職員向け: 少人数も表示）。",
                       "People at each month's end and new that month (staff: small counts shown)."),
    "od_month": ("月", "Month"), "od_new": ("新規", "New"), "od_total": ("累計", "Total"),
    "od_usage_missing": ("一部の集計を取得できませんでした。", "Some figures could not be fetched."),
})
add_nav("open_data", "/open-data", "all", "menu")

# What the page lists (file, Japanese, English); the README lists the columns the services sent.
CONTENTS = (
    ("events_points.csv", "イベントと発行したまちづくりポイント", "Events and the points issued"),
    ("points_by_month.csv", "月別のポイント発行", "Points issued per month"),
    ("districts.csv", "地区別の状況", "Figures by district"),
    ("facilities.csv / facility_usage_by_month.csv", "施設と月別の利用状況", "Facilities and their usage per month"),
    ("themes.csv / themes_by_phase.csv / cases.csv", "公民共創テーマと事例", "Co-creation themes and case studies"),
    ("communities.csv / communities_by_field.csv", "テーマコミュニティ", "Theme communities"),
    (f"{USAGE_FILE}.csv", "登録者・カード会員・コミュニティリーダーの推移", "Registered people, card members, leaders"),
)


@dataclass(frozen=True)
class Built:
    data: bytes
    at: datetime  # aware UTC
    kept_at: float  # monotonic
    filename: str


class OpenDataCache:
    """The last zip built in this gateway process: served until `ttl` seconds old; one build at a time."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.built: Built | None = None
        self.builds = 0  # how many times it was built (tests: a second download is served from here)
        self.lock = asyncio.Lock()

    def fresh(self) -> Built | None:
        b = self.built
        return b if b is not None and time.monotonic() - b.kept_at < self.ttl else None

    async def get(self, build: Any) -> Built:
        hit = self.fresh()
        if hit is not None:
            return hit
        async with self.lock:  # those who waited find the zip the first one built
            hit = self.fresh()
            if hit is None:
                hit = await build()
                self.builds += 1
                self.built = hit
            return hit


def cache_of(request: Request) -> OpenDataCache:
    state = request.app.state
    cache = getattr(state, "open_data", None)
    if cache is None:
        cache = state.open_data = OpenDataCache(state.settings.open_data_cache_seconds)
    return cache


def _csv(header: list[str], rows: list[list[c.Cell]]) -> bytes:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(header)
    out.writerows([[od.cell(v) for v in row] for row in rows])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def usage_table(series: list[c.Usage]) -> c.OpenDataTable:
    """The services' usage series side by side, one row per month (blank where a series had not started)."""
    by = {u.series: {m.month: m for m in u.months} for u in series}
    names = [s for s in SERIES if s in by]
    months = sorted({m for s in names for m in by[s]})
    rows: list[list[c.Cell]] = []
    for month in months:
        row: list[c.Cell] = [month]
        for s in names:
            m = by[s].get(month)
            row += ["", ""] if m is None else [m.new, m.total]
        rows.append(row)
    return c.OpenDataTable(
        name=USAGE_FILE, title_ja="利用状況の推移（月別）", title_en="Usage per month",
        columns_ja=["月"] + [f"{SERIES[s][0]}（{w}）" for s in names for w in ("増加", "累計")],
        columns_en=["Month"] + [f"{SERIES[s][1]} ({w})" for s in names for w in ("increase", "total")],
        rows=rows,
        notes_ja="累計は月末時点。増加は前回公表した累計からの増加数です（少人数の月は累計ごと非公表とし、翌月以降に合算）。"
                 "登録者はこのまちのアカウント、カード会員はICカードを登録した人、コミュニティリーダーは現在の"
                 "リーダーを最初のコミュニティの開設月で数えています。",
        notes_en="Totals at each month's end; the increase is from the last published total (a month with a small "
                 "increase is withheld, total included, and added to a later month). Registered: accounts at this "
                 "node; card members: people with a registered IC card; leaders: today's leaders, from the month "
                 "their first community opened.")


def readme(tables: list[c.OpenDataTable], *, town_ja: str, town_en: str, licence: str, licence_url: str,
           built: datetime) -> str:
    stamp = built.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")
    ja = [f"{town_ja} オープンデータ（TownTip Commons）", "", f"作成日時: {stamp}", "",
          "■ ライセンス", f"{licence}", licence_url,
          "出典を記載すれば、複製・加工・翻訳・商用利用を含め自由に利用できます（CC BY 4.0 と互換）。",
          f"出典の記載例: 出典：{town_ja}（TownTip Commons）", "",
          "■ 少人数の秘匿",
          f"人数が {od.SUPPRESS_BELOW} 人未満（1〜{od.SUPPRESS_BELOW - 1} 人）になる値は「{od.SUPPRESSED}」と記載し、"
          "その人数から計算した値（ポイント・回数・時間など）も同様に非公表です。0 はそのまま記載します。",
          "他の公表値との差し引きで少人数が分かる場合は、その値も非公表としています。",
          "個人を特定できる情報（氏名・ハンドル・メールアドレス・ID）は含みません。", "",
          "■ ファイル（UTF-8・BOM 付き CSV、1 行目が見出し）"]
    en = ["", "----", f"{town_en} open data (TownTip Commons)", "", f"Built: {stamp}", "",
          "* Licence", f"{licence}", licence_url,
          "Free to copy, adapt, translate and use commercially, with attribution (compatible with CC BY 4.0).",
          f"Attribution: 出典：{town_ja}（TownTip Commons） / Source: {town_en} (TownTip Commons)", "",
          "* Small counts",
          f"Counts of fewer than {od.SUPPRESS_BELOW} people read \"{od.SUPPRESSED}\", and so do the values computed "
          "from those people (points, participations, hours). Zero is published. A value that would reveal a "
          "withheld one by difference with other published figures is withheld too.",
          "Nothing identifies a person (no names, handles, e-mail addresses or ids).", "",
          "* Files (CSV, UTF-8 with a BOM, the first line is the header)"]
    for tb in tables:
        ja += [f"{tb.name}.csv — {tb.title_ja}", "  列: " + " / ".join(tb.columns_ja)]
        ja += [f"  {tb.notes_ja}"] if tb.notes_ja else []
        en += [f"{tb.name}.csv — {tb.title_en}", "  Columns: " + " / ".join(tb.columns_en)]
        en += [f"  {tb.notes_en}"] if tb.notes_en else []
    return "\r\n".join(ja + en) + "\r\n"


async def gather(request: Request) -> list[c.OpenData]:
    """Every contributing service's answer; any failure fails the whole (a partial zip would mislead)."""
    wanted = [s for s in SERVICES if s in request.app.state.settings.expected_services()]
    answers = await asyncio.gather(*(call(request, s, c.EP_OPEN_DATA, c.OpenDataQuery()) for s in wanted))
    return [c.OpenData.model_validate(a) for a in answers]


async def build(request: Request) -> Built:
    settings = request.app.state.settings
    town = request.app.state.town
    parts = await gather(request)
    tables = [tb for p in parts for tb in p.tables]
    series = [u for p in parts for u in p.usage]
    if series:
        tables.append(usage_table(series))
    now = utcnow()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.txt", "\ufeff" + readme(tables, town_ja=town.name_ja, town_en=town.name_en,
                                                   licence=settings.open_data_licence,
                                                   licence_url=settings.open_data_licence_url, built=now))
        for tb in tables:
            z.writestr(f"{tb.name}.csv", _csv(tb.columns_ja, tb.rows))
    stamp = now.astimezone(JST).strftime("%Y%m%d")
    return Built(data=buf.getvalue(), at=now, kept_at=time.monotonic(),
                 filename=f"opendata-{settings.node_id}-{stamp}.zip")


@router.get("/open-data", response_class=HTMLResponse)
async def page(request: Request, user: OptionalUser) -> Response:
    settings = request.app.state.settings
    built = cache_of(request).fresh()
    return render(request, "open_data/page.html", user=user, contents=CONTENTS, built=built,
                  built_at=built.at.astimezone(JST).strftime("%Y-%m-%d %H:%M") if built else None,
                  licence=settings.open_data_licence, licence_url=settings.open_data_licence_url,
                  below=od.SUPPRESS_BELOW, suppressed=od.SUPPRESSED)


@router.get("/open-data/download")
async def download(request: Request, user: OptionalUser) -> Response:
    try:
        built = await cache_of(request).get(lambda: build(request))
    except errors.ServiceError:
        lang = ps.lang(request)
        return message(request, heading=t("open_data", lang), paragraphs=[t("od_unavailable", lang)], status=503,
                       user=user)
    return Response(built.data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{built.filename}"',
        "Cache-Control": "public, max-age=60",
        "Last-Modified": built.at.strftime("%a, %d %b %Y %H:%M:%S GMT")})


# ---- the staff's figures page: the usage series, unsuppressed -----------------------------------------------------


@dataclass(frozen=True)
class UsageView:
    names: list[tuple[str, str]]  # (Japanese, English) per series shown
    short: list[tuple[str, str]]  # the same, short (the chart's labels)
    rows: list[tuple[str, list[tuple[int | None, int | None]]]]  # month, (new, total) per series
    totals: list[int | None]
    missing: bool  # a service did not answer


async def staff_usage(request: Request, user: Any) -> UsageView:
    wanted = [s for s in USAGE_SERVICES if s in request.app.state.settings.expected_services()]
    answers = await asyncio.gather(*(call(request, s, c.EP_USAGE, c.UsageQuery(actor=actor_of(user)))
                                     for s in wanted), return_exceptions=True)
    series = [c.Usage.model_validate(a) for a in answers if not isinstance(a, BaseException)]
    by = {u.series: u for u in series}
    names = [s for s in SERIES if s in by]
    months = sorted({m.month for u in series for m in u.months}, reverse=True)
    index = {s: {m.month: m for m in by[s].months} for s in names}
    rows = []
    for month in months:
        cells = []
        for s in names:
            m = index[s].get(month)
            cells.append((m.new, m.total) if m else (None, None))
        rows.append((month, cells))
    return UsageView(names=[SERIES[s] for s in names], short=[SHORT[s] for s in names], rows=rows,
                     totals=[by[s].total for s in names],
                     missing=len(series) < len(wanted))


