"""The node's public notices as Atom (/notices.atom, written with feedgen) and as a page (/notices), and the staff's
page of collected feeds (/staff/feeds, issue 18 point 7): register a site's feed, see each one's state and why one
is broken (in words, from its code), read one now, pause it, and set the rules that sort collected items into
categories."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from feedgen.feed import FeedGenerator
from pydantic import ValidationError

from gateway import words
from gateway.deps import CsrfForm, OptionalUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import actor_of, add_nav, bad_status, call, error_status, render, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.categories import FAMILIES
from towntip.kernel.categories import labels as category_labels
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts.notices import SERVICE

router = APIRouter(include_in_schema=False)

add_words(
    {
        "coll_title": ("外部サイトの情報の取り込み", "Collected feeds"),
        "coll_intro": (
            "市のサイト・社会福祉協議会・商店会などの RSS / Atom / iCalendar / JSON を登録すると、"
            "定期的に読み込み、お知らせやカレンダーに載せます。",
            "Register the RSS, Atom, iCalendar or JSON feeds of the city's site, the welfare council, shops and "
            "partners: they are read on a schedule and shown as notices or on the calendar.",
        ),
        "coll_add": ("取り込み先を登録", "Register a feed"),
        "coll_url": ("フィードのURL", "Feed URL"),
        "coll_name": ("名前（表示用）", "Name (shown)"),
        "coll_category": ("分類", "Category"),
        "coll_every": ("読み込む間隔（分）", "Read every (minutes)"),
        "coll_community": (
            "コミュニティID（そのカレンダーにも載せる・任意）",
            "Community id (its calendar too; optional)",
        ),
        "coll_register": ("登録して読み込む", "Register and read"),
        "coll_feeds": ("登録済みの取り込み先", "Registered feeds"),
        "coll_none": ("まだ登録はありません。", "No feed yet."),
        "coll_state_new": ("未読込", "Not read yet"),
        "coll_state_ok": ("正常", "OK"),
        "coll_state_broken": ("エラー", "Broken"),
        "coll_state_paused": ("停止中", "Paused"),
        "coll_items": ("取り込んだ件数", "Items"),
        "coll_last": ("最後に読み込んだ日時", "Last read"),
        "coll_poll": ("今すぐ読み込む", "Read now"),
        "coll_pause": ("停止する", "Pause"),
        "coll_resume": ("再開する", "Resume"),
        "coll_rules": ("分類のルール", "Sorting rules"),
        "coll_rules_help": (
            "1行に1つ「キーワード,分類」。上から順に、タイトル・本文・元サイトの分類にキーワードを含む"
            "最初のルールの分類になります。どれにも当たらなければ取り込み先の分類です。",
            "One a line: keyword,category. The first rule whose keyword is in the title, text or the "
            "site's own category decides; with none, the feed's category.",
        ),
        "coll_rules_save": ("ルールを保存", "Save the rules"),
        "coll_rules_saved": ("ルールを保存しました。", "The rules are saved."),
        "coll_registered": ("登録しました。", "Registered."),
        "coll_atom": ("公開のお知らせ（Atom）", "Public notices (Atom)"),
        "nav_staff_feeds": ("外部情報の取り込み", "Collected feeds"),
        "pn_title": ("お知らせ一覧", "Public notices"),
        "pn_intro": (
            "市からみなさんへのお知らせと、市のサイト・社会福祉協議会・商店会などから集めた新着情報です。",
            "Notices from the town to everyone, and news collected from the city's site, the welfare council, "
            "shops and partners.",
        ),
        "pn_none": ("まだお知らせはありません。", "No notice yet."),
        "pn_own": ("市からのお知らせ", "From the town"),
        "pn_from": ("{source} より", "From {source}"),
        "pn_site": ("元のページを開く", "Open the original page"),
        "pn_inbox": ("電子私書箱で読む", "Read it in my inbox"),
        "pn_atom": ("フィードで購読（Atom）", "Subscribe (Atom feed)"),
        "pn_unavailable": (
            "お知らせを読み込めませんでした。しばらくしてからもう一度お試しください。",
            "The notices could not be read. Please try again later.",
        ),
    }
)
add_nav("nav_staff_feeds", "/staff/feeds", "staff")
add_nav("pn_title", "/notices", "all")


# ---- Atom --------------------------------------------------------------------------------------------------------


def atom(notices: list[f.PublicNotice], *, node: str, base: str, now: datetime) -> bytes:
    host = urlsplit(base).hostname or node
    fg = FeedGenerator()
    fg.id(f"tag:{host},2026:{node}/notices")
    fg.title(f"{node} お知らせ")
    fg.author({"name": node})
    fg.link(href=f"{base}/notices.atom", rel="self", type="application/atom+xml")
    fg.link(href=f"{base}/", rel="alternate", type="text/html")
    fg.language("ja")
    fg.updated(max((n.updated_at for n in notices), default=now))
    for n in notices:
        fe = fg.add_entry(order="append")
        fe.id(f"tag:{host},2026:{node}/notices/{n.id}")
        fe.title(n.title)
        fe.summary(n.summary or n.title)
        fe.link(href=n.link or f"{base}/notices#n-{n.id}", rel="alternate")  # the public page: anyone may read
        fe.published(n.published_at)
        fe.updated(n.updated_at)
        if n.category:
            fe.category(term=n.category)
        if n.source:
            fe.author({"name": n.source})
    body: bytes = fg.atom_str(pretty=False)
    return body


@router.get("/notices.atom")
async def notices_atom(request: Request) -> Response:
    """The node's public notices (what staff sent to everyone, and collected ones) for feed readers."""
    try:
        got = f.PublicNotices.model_validate(await call(request, SERVICE, f.EP_PUBLIC, f.PublicQuery()))
    except errors.ServiceError as exc:
        return Response(why(exc, "en"), status_code=error_status(exc), media_type="text/plain")
    settings = request.app.state.settings
    body = atom(got.notices, node=settings.node_id, base=settings.public_url.rstrip("/"), now=datetime.now(JST))
    return Response(
        body, media_type="application/atom+xml; charset=utf-8", headers={"Cache-Control": "public, max-age=300"}
    )


# ---- the public page --------------------------------------------------------------------------------------------


@router.get("/notices", response_class=HTMLResponse)
async def notices_page(request: Request, user: OptionalUser) -> Response:
    """The node's public notices for people (issue 18 point 7: collected items published as notices): the same
    list as /notices.atom, newest first, a collected one linking to its site."""
    lang = ps.lang(request)
    labels = category_labels(lang)
    try:
        got = f.PublicNotices.model_validate(await call(request, SERVICE, f.EP_PUBLIC, f.PublicQuery()))
        listed, status, error = got.notices, 200, None
    except errors.ServiceError as exc:
        listed, status, error = [], error_status(exc), t("pn_unavailable", lang)
    return render(
        request,
        "notices/public.html",
        status=status,
        user=user,
        notices=listed,
        error=error,
        label=lambda code: labels.get(code, code),
        jst=lambda x: x.astimezone(JST).strftime("%Y-%m-%d %H:%M"),
    )


# ---- the staff's page --------------------------------------------------------------------------------------------


def _rules_text(rules: list[f.Rule]) -> str:
    return "\n".join(f"{r.keyword},{r.category}" for r in rules)


def _parse_rules(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, category = line.rpartition(",")
            out.append({"keyword": keyword.strip(), "category": category.strip()})
    return out


async def _page(
    request: Request,
    user: ic.User,
    *,
    status: int = 200,
    error: str | None = None,
    done: str | None = None,
    form: dict[str, Any] | None = None,
    rules_text: str | None = None,
) -> Response:
    lang = ps.lang(request)
    actor = actor_of(user)
    labels = {k: ja if lang == "ja" else en for k, ja, en in FAMILIES} | category_labels(lang)
    listed = f.FeedList.model_validate(await call(request, SERVICE, f.EP_FEED_LIST, f.FeedListQuery(actor=actor)))
    rules = f.Rules.model_validate(await call(request, SERVICE, f.EP_FEED_RULES, f.RulesQuery(actor=actor)))
    return render(
        request,
        "notices/feeds_staff.html",
        status=status,
        user=user,
        feeds=listed.feeds,
        error=error,
        notice=done,
        form=form or {},
        families=[(k, ja if lang == "ja" else en) for k, ja, en in FAMILIES],
        rules_text=_rules_text(rules.rules) if rules_text is None else rules_text,
        label=lambda code: labels.get(code, code),
        reason=lambda code: words.words(code, lang) if code and words.has_words(code) else (code or ""),
        jst=lambda x: x.astimezone(JST).strftime("%Y-%m-%d %H:%M") if x else "—",
    )


@router.get("/staff/feeds", response_class=HTMLResponse)
async def feeds_page(request: Request, user: StaffUser) -> Response:
    return await _page(request, user)


@router.post("/staff/feeds", response_class=HTMLResponse)
async def feeds_add(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    data = {k: str(form.get(k, "")).strip() for k in ("url", "title", "category", "every_minutes", "community_id")}
    try:
        made = f.FeedCreate(
            actor=actor_of(user),
            url=data["url"],
            title=data["title"],
            category=data["category"] or "town",
            every_minutes=int(data["every_minutes"] or 60),
            community_id=data["community_id"] or None,
        )
        await call(request, SERVICE, f.EP_FEED_REGISTER, made, timeout=30.0)
    except (errors.ServiceError, ValidationError, ValueError) as exc:
        return await _page(request, user, status=bad_status(exc), error=why(exc, lang), form=data)
    return await _page(request, user, done=t("coll_registered", lang))


@router.post("/staff/feeds/rules", response_class=HTMLResponse)
async def rules_save(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    text = str(form.get("rules", ""))
    try:
        await call(request, SERVICE, f.EP_FEED_RULES_PUT, f.RulesPut(actor=actor_of(user), rules=_parse_rules(text)))
    except (errors.ServiceError, ValidationError) as exc:
        return await _page(request, user, status=bad_status(exc), error=why(exc, lang), rules_text=text)
    return await _page(request, user, done=t("coll_rules_saved", lang))


@router.post("/staff/feeds/{feed_id}/{action}")
async def feed_action(request: Request, feed_id: str, action: str, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        if action == "poll":
            await call(
                request, SERVICE, f.EP_FEED_POLL, f.FeedAction(actor=actor_of(user), feed_id=feed_id), timeout=30.0
            )
        elif action in ("pause", "resume"):
            await call(
                request,
                SERVICE,
                f.EP_FEED_PAUSE,
                f.FeedPause(actor=actor_of(user), feed_id=feed_id, paused=action == "pause"),
            )
        else:
            return Response("unknown action", status_code=404, media_type="text/plain")
    except (errors.ServiceError, ValidationError) as exc:
        return await _page(request, user, status=bad_status(exc), error=why(exc, lang))
    return RedirectResponse(f"/staff/feeds#feed-{feed_id}", status_code=303)
