"""The portal's directory of communities in other towns (issue 20 point 6): /communities/towns lists the open
communities other member towns announce (the sns service keeps them: services/sns/directory.py), filtered by town
and category, each linking to its page at its own node's portal, where the person joins after signing in there
with their home ID (federated login). Public, read-only: no form, nothing posted here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway.deps import OptionalUser
from gateway.portal import session as ps
from gateway.portal.common import call, error_status, message, render, why
from gateway.portal.i18n import add_words, t
from gateway.portal.projects_common import jst
from towntip.kernel import categories, errors
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.town import demo_towns

router = APIRouter(include_in_schema=False)

add_words({
    "sd_title": ("他のまちのコミュニティ", "Communities in other towns"),
    "sd_intro": ("連携している他のまちで活動中のコミュニティです。参加は、そのまちのポータルで"
                 "ホームID（このまちのID）でログインして行います。",
                 "Active communities of the other member towns. You join at that town's portal, logging in there "
                 "with your home ID (your ID here)."),
    "sd_tab_here": ("このまちのコミュニティ", "Communities of this town"),
    "sd_town": ("まち", "Town"),
    "sd_all_towns": ("すべてのまち", "All towns"),
    "sd_join_there": ("このまちで参加する（ホームIDでログイン）", "Join in this town (log in with your home ID)"),
    "sd_members_few": ("メンバー{n}人未満", "Fewer than {n} members"),
    "sd_members_about": ("メンバー{n}人以上", "{n} members or more"),
    "sd_none": ("他のまちのコミュニティはまだ届いていません。", "No community of another town has arrived yet."),
    "sd_none_filtered": ("条件に合うコミュニティはありません。", "No community matches."),
    "sd_how": ("参加のしかた", "How to join"),
    "sd_how_steps": ("リンク先のまちのポータルで「ホームIDでログイン」を選び、あなたのID（例: hanako@{node}）を"
                     "入力します。このまちでログインし直して戻ると、そのコミュニティに参加できます。",
                     "At that town's portal choose \"log in with your home ID\" and give your ID (e.g. "
                     "hanako@{node}); you sign in here and go back, and can join the community there."),
    "sd_other_towns": ("他のまちのコミュニティを見る", "Communities in other towns"),
})


def town_name(node: str, lang: str) -> str:
    """A member town's name (杉並区) from the towns table (towntip/kernel/towns.csv); a node not in it, its id."""
    known = demo_towns().get(node)
    return known.name(lang) if known else node


@router.get("/communities/towns", response_class=HTMLResponse)
async def directory_page(request: Request, user: OptionalUser) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    town = q.get("town") or None
    category = q.get("category") or None
    if category is not None and category not in categories.codes():
        category = None
    try:
        query = d.DirectoryQuery(town=town, category=category)
    except ValidationError:  # a town that is no node id: the whole directory
        return RedirectResponse("/communities/towns", status_code=303)
    try:
        found = d.Directory.model_validate(await call(request, d.SERVICE, d.EP_DIRECTORY_LIST, query))
        towns = found.towns
        if town or category:  # the filter offers every town, whatever the page shows now
            towns = d.Directory.model_validate(await call(request, d.SERVICE, d.EP_DIRECTORY_LIST,
                                                          d.DirectoryQuery(limit=1))).towns
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=error_status(exc),
                       user=user, link=("/communities", t("sn_communities", lang)))
    return render(request, "sns/communities_towns.html", user=user, jst=jst, entries=found.entries, towns=towns,
                  chosen_town=town or "", category=category or "", filtered=bool(town or category),
                  category_names=categories.labels(lang), step=d.MEMBERS_STEP,
                  town_name=lambda n: town_name(n, lang))
