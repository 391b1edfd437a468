"""Every route of the portal (the web pages, the OpenID provider's relay, My Page across regions, the node's status)
with what it requires before it runs, read from the dependencies in its signature (gateway/deps.py) through
FastAPI's dependant tree, against the table below. A route added without a decision, or whose check changed, fails
here: write its line in the table (and a form's CSRF case in tests/gateway/test_portal_forms.py).

What a route requires: "public" (anyone; OptionalUser only shows who is logged in), "user" (logged in, else the
login page), or the roles it admits ("staff", "secretariat", "staff|secretariat"); ", form" when it takes a
posted form whose CSRF token is checked first (CsrfForm). The services decide the rest (a theme's department, a
proposal's authors ...) with the person inside each request.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from gateway.app import create_app
from towntip.kernel.settings import GatewaySettings

PORTAL_MODULES = ("gateway.portal.", "gateway.oidc", "gateway.regions", "gateway.app", "gateway.metrics")

ROLES = {
    # the node's status
    "GET /healthz": "public",
    "GET /status": "public",
    "GET /asyncapi.json": "public",  # the bus contracts (AsyncAPI 3), beside FastAPI's own /openapi.json
    "GET /metrics": "admin",  # every process's Prometheus metrics: the node's admin token only (gateway/metrics.py)
    # the OpenID provider (gateway/oidc.py): the provider itself authenticates clients and asks who is logged in;
    # /oauth/logout's answer to its "log out?" question checks the CSRF token by hand (only a confirmed post)
    "GET /.well-known/openid-configuration": "public",
    "GET /.well-known/openid-federation": "public",
    "GET /oauth/jwks": "public",
    "GET,POST /oauth/authorize": "public",
    "POST /oauth/token": "public",
    "POST /oauth/revoke": "public",
    "GET,POST /oauth/userinfo": "public",
    "GET,POST /oauth/logout": "public",
    # accounts (pages.py)
    "GET /": "public",
    "GET /town/emblem": "public",  # the town's emblem (gateway/portal/home.py)
    "GET /lang/{code}": "public",
    # the navigation (navigation.py): the tab bar's group pages, the staff area, the stylesheet
    "GET /join": "public",
    "GET /mine": "public",  # without a session it says what logging in brings
    "GET /menu": "public",
    "GET /staff": "staff|secretariat",
    "GET /static/towntip.css": "public",
    "GET /static/pictures/{family}.svg": "public",  # the cards' illustrations (pictures.py)
    "GET /login": "public",
    "POST /login": "public, form",
    "POST /login/federated": "public, form",
    "GET /login/federated/callback": "public",
    "POST /logout": "public, form",
    "GET /register": "public",
    "POST /register": "public, form",
    "GET /verify-email": "public",
    "POST /verify-email/resend": "user, form",
    "GET /me": "user",
    "GET /settings/cards": "user",
    "POST /settings/cards/bind": "user, form",
    "POST /settings/cards/code": "user, form",
    "POST /settings/cards/unbind": "user, form",
    "GET /settings/profile": "user",
    "POST /settings/profile": "user, form",
    "GET /settings/password": "user",
    "POST /settings/password": "user, form",
    "GET /password/forgot": "public",
    "POST /password/forgot": "public, form",
    "GET /password/reset": "public",
    "POST /password/reset": "public, form",
    "GET /settings/export": "user",
    "GET /settings/mydata": "user",  # a person's data everywhere (mydata.py)
    "GET /settings/delete": "user",
    "POST /settings/delete": "user, form",
    # My Page across regions (regions.py): a signed node-to-node query; the session or a bearer token, checked there
    "POST /federation/person-summary": "public",
    "GET /api/v1/me/regions": "public",
    # co-creation, phase 1 (projects.py)
    "GET /themes": "public",
    "GET /themes/new": "staff|secretariat",
    "POST /themes/new": "user, form",
    "GET /themes/{theme_id}": "public",
    "GET /themes/{theme_id}/edit": "staff|secretariat",
    "POST /themes/{theme_id}/edit": "user, form",
    "POST /themes/{theme_id}/publish": "user, form",
    "GET /themes/{theme_id}/publish": "user",  # the question before publishing
    "POST /themes/{theme_id}/call": "user, form",
    "POST /themes/{theme_id}/phase": "user, form",
    "GET /themes/{theme_id}/requirements": "staff|secretariat",
    "POST /themes/{theme_id}/requirements": "user, form",
    "GET /themes/{theme_id}/history": "staff|secretariat",
    "GET /hearings": "staff|secretariat",
    "POST /hearings": "user, form",
    "GET /orgs": "user",
    "GET /orgs/new": "user",
    "POST /orgs/new": "user, form",
    "GET /orgs/{org_id}": "public",
    "POST /orgs/{org_id}": "user, form",
    "POST /orgs/{org_id}/members": "user, form",
    "GET /contact": "public",
    "POST /contact": "public, form",
    "GET /secretariat/inquiries": "secretariat",
    "POST /secretariat/inquiries/{inquiry_id}/status": "user, form",
    # phase 2 (projects_calls.py)
    "GET /themes/{theme_id}/partners": "public",
    "POST /themes/{theme_id}/briefings": "user, form",
    "POST /themes/{theme_id}/briefings/{briefing_id}/register": "user, form",
    "POST /themes/{theme_id}/briefings/{briefing_id}/cancel": "user, form",
    "GET /themes/{theme_id}/matching": "user",
    "GET /orgs/{org_id}/themes": "user",
    "GET /themes/{theme_id}/proposals/new": "user",
    "POST /themes/{theme_id}/proposals/new": "user, form",
    "GET /proposals/{proposal_id}": "user",
    "GET /proposals/{proposal_id}/edit": "user",
    "POST /proposals/{proposal_id}/edit": "user, form",
    "POST /proposals/{proposal_id}/withdraw": "user, form",
    "POST /proposals/{proposal_id}/partner": "user, form",
    "GET /themes/{theme_id}/proposals": "user",
    "GET /themes/{theme_id}/evaluate": "user",
    "POST /themes/{theme_id}/evaluate/{proposal_id}/declare": "user, form",
    "POST /themes/{theme_id}/evaluate/{proposal_id}/score": "user, form",
    "GET /themes/{theme_id}/selection": "user",
    "POST /themes/{theme_id}/selection/evaluators": "user, form",
    "POST /themes/{theme_id}/selection/close": "user, form",
    "POST /themes/{theme_id}/selection/publish": "user, form",
    "GET /themes/{theme_id}/result": "public",
    # phases 3 and 4, and the public cases (projects_pilots.py)
    "GET /themes/{theme_id}/pilot": "user",
    "POST /themes/{theme_id}/pilot/roles": "user, form",
    "POST /themes/{theme_id}/pilot/roles/{role_id}/remove": "user, form",
    "POST /themes/{theme_id}/pilot/milestones": "user, form",
    "POST /themes/{theme_id}/pilot/milestones/{milestone_id}/status": "user, form",
    "POST /themes/{theme_id}/pilot/milestones/{milestone_id}/remove": "user, form",
    "POST /themes/{theme_id}/pilot/kpis": "user, form",
    "POST /themes/{theme_id}/pilot/kpis/{kpi_id}/remove": "user, form",
    "POST /themes/{theme_id}/pilot/plan": "user, form",
    "POST /themes/{theme_id}/pilot/agreements": "user, form",
    "POST /themes/{theme_id}/pilot/advance": "user, form",
    "GET /themes/{theme_id}/agreements/{agreement_id}": "user",
    "POST /themes/{theme_id}/agreements/{agreement_id}/sign": "user, form",
    "POST /themes/{theme_id}/agreements/{agreement_id}/revise": "user, form",
    "GET /themes/{theme_id}/results": "user",
    "POST /themes/{theme_id}/results/actuals": "user, form",
    "POST /themes/{theme_id}/results/report": "user, form",
    "POST /themes/{theme_id}/results/budget": "user, form",
    "POST /themes/{theme_id}/results/decision": "user, form",
    "POST /themes/{theme_id}/results/case": "user, form",
    "POST /themes/{theme_id}/results/case/publish": "user, form",
    "GET /cases": "public",
    "GET /cases/{case_id}": "public",
    # other towns (federation.py)
    "GET /federation/themes": "public",
    "GET /federation/themes/{origin}/{theme_id}": "public",
    "GET /federation/cases": "public",
    "GET /federation/cases/{origin}/{case_id}": "public",
    "POST /federation/follow": "user, form",
    "GET /federation/following": "user",
    "POST /federation/themes/{origin}/{theme_id}/participate": "user, form",
    "GET /federation/cases/{origin}/{case_id}/adopt": "staff|secretariat",
    "POST /federation/cases/{origin}/{case_id}/adopt": "user, form",
    "GET /themes/{theme_id}/wide-area": "staff|secretariat",
    "POST /themes/{theme_id}/wide-area": "user, form",
    # points, coupons and the currency (wallet.py)
    "GET /points": "user",
    "POST /points/coupons/buy": "user, form",
    "GET /staff/coupons": "staff",
    "POST /staff/coupons/types": "staff, form",
    "POST /staff/coupons/redeem": "staff, form",
    "POST /staff/currency/award": "staff, form",
    # events: list, sign-up and cancellation, the iCalendar feed, the staff's form (events.py)
    "GET /events": "public",
    "GET /events.ics": "public",
    "GET /events/{code}": "public",
    "POST /events/{code}/signup": "user, form",
    "POST /events/{code}/cancel": "user, form",
    "GET /staff/events": "staff",
    "POST /staff/events": "staff, form",
    # courses and certificates (courses.py)
    "GET /courses": "public",
    "GET /credits": "user",
    "GET /staff/courses": "staff",
    "POST /staff/courses": "user, form",
    "POST /staff/certifications": "user, form",
    "GET /staff/courses/{code}": "staff",
    "POST /staff/courses/{code}/complete": "user, form",
    "GET /staff/certificates": "staff",
    "POST /staff/certificates/{cert_id}/revoke": "user, form",
    "GET /certificates/jwks.json": "public",
    "GET /certificates/verify": "public",
    "POST /certificates/verify": "public, form",
    "GET /certificates/{cert_id}": "public",
    "GET /certificates/{cert_id}/token": "user",
    "GET /certificates/{cert_id}/print": "user",
    "GET /certificates/{cert_id}/pdf": "user",
    # a booking's life (bookings_life.py): the approval queue, paying one booking
    "GET /staff/bookings/approvals": "staff",
    "POST /staff/bookings/{booking_id}/approve": "user, form",
    "POST /staff/bookings/{booking_id}/reject": "user, form",
    "GET /bookings/{booking_id}/pay": "user",
    "POST /bookings/{booking_id}/pay": "user, form",
    # donations (donations.py)
    "GET /donations": "public",
    "GET /donations/projects/{code}": "public",
    "POST /donations/projects/{code}/pledge": "user, form",
    "GET /donations/mine": "user",
    "GET /donations/receipts/{reference}.pdf": "user",
    "GET /staff/donations": "staff",
    "POST /staff/donations/projects": "user, form",
    "POST /staff/donations/projects/{code}/certify": "user, form",
    "POST /staff/donations/rules": "user, form",
    "GET /staff/donations/projects/{code}": "staff",
    "POST /staff/donations/projects/{code}/uses": "user, form",
    "GET /staff/donations/pledges": "staff",
    "GET /staff/donations/pledges/{reference}/confirm": "staff",  # the question before the payment is recorded
    "POST /staff/donations/pledges/{reference}/confirm": "user, form",
    "POST /staff/donations/pledges/{reference}/cancel": "user, form",
    # the notebook and the staff's figures (notebook.py)
    "GET /notebook": "user",
    "GET /notebook/export.{fmt}": "user",
    "GET /staff/figures": "staff",
    "GET /staff/figures/{table}.csv": "staff",
    "POST /staff/figures/event": "staff, form",
    # オープンデータ (open_data.py): the page and its zip, public (aggregates only, small counts withheld)
    "GET /open-data": "public",
    "GET /open-data/download": "public",
    # communities and friends (sns.py)
    "GET /communities": "public",
    "POST /communities": "user, form",
    "GET /communities/towns": "public",  # other towns' communities (sns_directory.py)
    "GET /communities/{cid}": "public",
    "POST /communities/{cid}/join": "user, form",
    "POST /communities/{cid}/leave": "user, form",
    "POST /communities/{cid}/close": "user, form",
    "GET /communities/{cid}/close": "user",  # the question before closing (gateway/portal/confirm.py)
    "GET /communities/{cid}/posts/{pid}/delete": "user",  # the question before deleting a post
    "POST /communities/{cid}/remove": "user, form",
    "POST /communities/{cid}/hand_over": "user, form",
    "POST /communities/{cid}/posts": "user, form",
    "GET /communities/{cid}/posts/{pid}": "public",
    "POST /communities/{cid}/posts/{pid}/{what}": "user, form",
    "GET /friends": "user",
    "GET /friends/qr": "user",
    "GET /friends/add": "user",
    "POST /friends/request": "user, form",
    "POST /friends/remove": "user, form",
    "POST /friends/{rid}/{what}": "user, form",
    # 共感 on themes and cases, moderation of the SNS (likes.py, sns_moderation.py)
    "POST /themes/{theme_id}/like": "user, form",
    "POST /cases/{case_id}/like": "user, form",
    "GET /moderation": "user",
    "POST /communities/{cid}/report": "user, form",
    "POST /moderation/{aid}/appeal": "user, form",
    "GET /staff/moderation": "staff",
    "POST /staff/moderation/reports/{rid}": "staff, form",
    "POST /staff/moderation/appeals/{aid}": "staff, form",
    "POST /staff/moderation/blocks": "staff, form",
    # blogs (sns_blogs.py): the service decides who sees an entry and its pictures
    "GET /blogs": "public",
    "GET /blogs/mine": "user",
    "GET /blogs/new": "user",
    "POST /blogs": "user, form",
    "GET /blogs/{eid}": "public",
    "GET /blogs/{eid}/pictures/{pid}": "public",
    "GET /blogs/{eid}/delete": "user",  # the question before deleting an entry (gateway/portal/confirm.py)
    "POST /blogs/{eid}/{what}": "user, form",
    # direct messages (sns_messages.py): the person's own only
    "GET /messages": "user",
    "POST /messages": "user, form",
    "GET /messages/{handle}": "user",
    "POST /messages/{handle}": "user, form",
    "POST /messages/{handle}/{what}": "user, form",
    # matching (sns_matching.py): openings, applications, the organiser's answers
    "GET /openings": "user",
    "POST /openings/skills": "user, form",
    "GET /openings/new": "user",
    "POST /openings/new": "user, form",
    "GET /openings/{opening_id}": "user",
    "POST /openings/{opening_id}/apply": "user, form",
    "POST /openings/{opening_id}/withdraw": "user, form",
    "POST /openings/{opening_id}/close": "user, form",
    "GET /openings/{opening_id}/applicants": "user",
    "POST /openings/{opening_id}/decide": "user, form",
    # facility bookings (bookings.py): facilities and their feed are public; a person's feed is opened by its
    # private token alone (no session: a calendar app fetches it)
    "GET /facilities": "public",
    "GET /facilities/{facility_id}.ics": "public",
    "GET /facilities/{facility_id}": "public",
    "GET /bookings/new": "user",
    "POST /bookings/new": "user, form",
    "GET /bookings": "user",
    "GET /bookings/feed": "user",
    "POST /bookings/feed": "user, form",
    "GET /bookings/feed/{token}.ics": "public",
    "GET /bookings/{booking_id}": "user",
    "GET /bookings/{booking_id}/cancel": "user",
    "POST /bookings/{booking_id}/cancel": "user, form",
    # the bookings staff (bookings_staff.py)
    "GET /staff/bookings": "staff",
    "GET /staff/bookings/facility": "staff",
    "POST /staff/bookings/facility": "staff, form",
    # the calendar and collected feeds (notices): the private feed is opened by its token alone
    "GET /calendar": "public",
    "GET /calendar.ics": "public",
    "GET /calendar/private": "user",
    "POST /calendar/private": "user, form",
    "GET /calendar/private/{token}.ics": "public",
    "GET /communities/{community_id}/calendar.ics": "public",
    "GET /notices.atom": "public",
    "GET /notices": "public",
    "GET /staff/feeds": "staff",
    "POST /staff/feeds": "staff, form",
    "POST /staff/feeds/rules": "staff, form",
    "POST /staff/feeds/{feed_id}/{action}": "staff, form",
    "GET /facilities/{facility_id}/photos/{photo_id}": "public",  # photos of public buildings
    "GET /staff/bookings/facility/photos": "staff",
    "POST /staff/bookings/facility/photos": "staff, form",  # multipart: a picture (CsrfUpload)
    "POST /staff/bookings/facility/photos/remove": "staff, form",
    "GET /staff/bookings/counter": "staff",
    "POST /staff/bookings/counter": "staff, form",
    "GET /staff/bookings/day": "staff",
    "GET /staff/bookings/usage": "staff",
    "GET /staff/bookings/usage.csv": "staff",
    # サイネージ (signage.py): staff only; the signage service decides the rest
    "GET /staff/signage": "staff",
    "GET /staff/signage/screens/{name}": "staff",
    "GET /staff/signage/content": "staff",
    "POST /staff/signage/content": "staff, form",
    "POST /staff/signage/content/{item_id}/{action}": "staff, form",
    "GET /staff/signage/playlists": "staff",
    "POST /staff/signage/playlists": "staff, form",
    "GET /staff/signage/plays": "staff",
    "GET /staff/signage/emergency": "staff",
    "POST /staff/signage/emergency": "staff, form",
    "POST /staff/signage/emergency/{emergency_id}/clear": "staff, form",
    # shared with other towns (signage_federation.py); the media of an offered item is public, as on the screens
    "GET /staff/signage/federation": "staff",
    "POST /staff/signage/federation/adopt": "staff, form",
    "POST /staff/signage/federation/offer/{item_id}": "staff, form",
    "GET /signage/federation/media/{item_id}": "public",
    "GET /staff/signage/slides": "staff",  # signage_slides.py: slides from the node's own data
    "POST /staff/signage/slides": "staff, form",
    # キャンセル待ち and 定期予約 (bookings_waitlist.py): the person's own; the bookings service decides the rest
    "GET /bookings/waitlist": "user",
    "POST /bookings/waitlist/join": "user, form",
    "POST /bookings/waitlist/{entry_id}/leave": "user, form",
    "POST /bookings/waitlist/offers/{booking_id}/accept": "user, form",
    "POST /bookings/waitlist/offers/{booking_id}/decline": "user, form",
    "GET /bookings/series/new": "user",
    "POST /bookings/series/new": "user, form",
    "GET /bookings/series/{series_id}": "user",
    "POST /bookings/series/{series_id}/change": "user, form",
    # 受信箱 and ライフステージ (notices.py): the person's own; お知らせ配信 (notices_staff.py): staff, and the notices
    # service checks the role again
    "GET /inbox": "user",
    "GET /inbox/{item_id}": "user",
    "POST /inbox/{item_id}/mark": "user, form",
    "GET /me/life": "user",
    "POST /me/life": "user, form",
    "POST /me/life/delete": "user, form",
    "GET /me/towns": "user",  # other towns' public notices: the person's own follows (home node: the service)
    "POST /me/towns": "user, form",
    "GET /staff/notices": "staff",
    "POST /staff/notices": "staff, form",
    "POST /staff/notices/preview": "staff, form",
    "GET /staff/notices/{notice_id}": "staff",
    "POST /staff/notices/{notice_id}/approve": "staff, form",
    "POST /staff/notices/{notice_id}/withdraw": "staff, form",
    "POST /staff/notices/{notice_id}/correct": "staff, form",
    # lotteries (抽選) and registered groups (団体登録) (bookings_lottery.py): the bookings service decides who
    # enters, draws and decides; a drawn lottery's verification page is public
    "GET /lottery": "public",
    "GET /lottery/{round_id}": "public",
    "POST /lottery/{round_id}/enter": "user, form",
    "GET /lottery/mine/entries": "user",
    "POST /lottery/entries/{entry_id}/withdraw": "user, form",
    "GET /lottery/{round_id}/verify": "public",
    "GET /groups": "user",
    "POST /groups": "user, form",
    "GET /staff/lottery": "staff",
    "POST /staff/lottery": "user, form",
    "GET /staff/lottery/{round_id}": "staff",
    "POST /staff/lottery/{round_id}/draw": "user, form",
    "GET /staff/groups": "staff",
    "POST /staff/groups/{group_id}/decide": "user, form",
    # activity notifications (notices_activity.py): the person's own; /sw.js is the service worker, public
    "GET /sw.js": "public",
    "GET /notifications": "user",
    "POST /notifications/read": "user, form",
    "GET /notifications/settings": "user",
    "POST /notifications/settings": "user, form",
    "POST /notifications/push": "user, form",
    "POST /notifications/push/remove": "user, form",
    # まちづくりナビ (navi.py): the person's suggestions and the counting redirect; counts for staff
    "GET /navi": "user",
    "GET /navi/go": "user",
    "GET /staff/navi": "staff",
}


def _api_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute of the app with its full path (routers included at any depth)."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers whole
        if inner is not None:
            yield from _api_routes(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def _marks(dependant: Any) -> Iterator[Any]:
    """The dependencies of a route, at any depth of its dependant tree."""
    for dep in dependant.dependencies:
        yield dep.call
        yield from _marks(dep)


def requirement(route: APIRoute) -> str:
    """What a route requires, from its dependencies: the strongest of "public" < "user" < a role; ", form" if it
    checks a posted form's CSRF token."""
    calls = list(_marks(route.dependant))
    found = {getattr(call, "requirement", None) for call in calls} - {None}
    roles = found - {"public", "user"}
    assert len(roles) <= 1, (route.path, roles)
    needed = roles.pop() if roles else "user" if "user" in found else "public"
    return needed + (", form" if any(getattr(call, "checks_csrf", False) for call in calls) else "")


def decisions(app: Any) -> dict[str, str]:
    """The portal's routes (not the HTTP API's: gateway/api has its own checks) and what each requires."""
    out = {}
    for path, route in _api_routes(app.routes):
        if route.endpoint.__module__.startswith(PORTAL_MODULES):
            out[f"{','.join(sorted(route.methods - {'HEAD'}))} {path}"] = requirement(route)
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp: Path = tmp_path_factory.mktemp("portal_roles")
    return create_app(GatewaySettings(node_id="tsuru", nats_url="nats://127.0.0.1:1", data_dir=str(tmp),
                                      public_url="https://tsuru.example.jp"))


def test_every_portal_route_requires_what_the_table_says(app) -> None:
    got = decisions(app)
    assert len(got) > 150 and {"user", "staff", "user, form"} <= set(got.values())  # the walk sees routes and checks
    assert sorted(set(got) - set(ROLES)) == [], "a portal route without a decision: add it to ROLES with its check"
    assert sorted(set(ROLES) - set(got)) == [], "a route in ROLES is gone: take it out"
    assert {k: v for k, v in got.items() if ROLES[k] != v} == {}, "a route's check is not the table's"


def test_every_form_of_the_portal_checks_its_token(app) -> None:
    """A POST route without CsrfForm is one of the provider's (which authenticate their clients themselves), the
    signed node-to-node query, or /oauth/logout (its confirmed answer checks the token by hand)."""
    not_forms = {"POST /oauth/token", "POST /oauth/revoke", "POST /federation/person-summary",
                 "GET,POST /oauth/authorize", "GET,POST /oauth/userinfo", "GET,POST /oauth/logout"}
    unchecked = {k for k, v in decisions(app).items() if "POST" in k.split()[0] and not v.endswith(", form")}
    assert unchecked == not_forms


def test_the_gateway_has_no_import_circle_and_imports_no_private_name() -> None:
    """Every import in gateway/ (inside functions too): no module imports another's `_name`, and no circle (a
    lazy import inside a function was how the portal hid four before)."""
    root = Path(__file__).resolve().parents[2]
    modules = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (root / "gateway").rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gateway":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    target = full if full in modules else node.module
                    if target in modules and target != name:
                        graph[name].add(target)
                    if alias.name.startswith("_") and full not in modules:
                        private.append(f"{name}: from {node.module} import {alias.name}")
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in modules and a.name != name}
    assert private == []
    circles = [scc for scc in _strongly_connected(graph) if len(scc) > 1]
    assert circles == [], "modules that import each other (directly or around a circle)"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.append(member)
                    if member == node:
                        break
                out.append(sorted(scc))
    return out
