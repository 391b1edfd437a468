"""Every form of the portal refuses a POST without its CSRF token, with a forged one, with another browser's or from
another site, and changes nothing; and the portal's per-address login throttle, apart from the account lockout.

One node for the module: a real nats-server, the identity service (SQLite) and the gateway app. Only identity runs:
a refused form must not ask any service anything but who is logged in, and a bus monitor answers every other
service's request with an error and records it, so a form that did work before checking its token fails here
whatever that work was. Every refusal is also checked against a snapshot of the identity service's tables.
The list of forms is explicit: a POST route that appears in the app without being listed here fails the test.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.portal import session as ps
from gateway.portal import sns, sns_blogs, sns_messages
from gateway.portal.i18n import t
from gateway.portal.session import LoginThrottle
from gateway.words import words
from identity import models
from identity.accounts import MAX_FAILED_LOGINS
from identity.app import IdentityService
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import GatewaySettings, ServiceSettings
from towntip.node.natsd import NatsServer

# one node for the module, so one worker for it (the suite runs with --dist loadgroup)
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("portal-forms")]

NODE = "tsuru"
BASE = "https://tsuru.example.jp"
PW = "correct horse battery"
NEW_PW = "another horse battery"
SESSION = "__Host-tt_session"
CSRF_REASON = t("csrf", "ja")
ASKS_ALLOWED = {subjects.svc(NODE, c.SERVICE, c.EP_SESSION)}  # who is logged in (read only)
# POST routes that are not portal forms: the provider's endpoints for relying parties (client authentication,
# PKCE, state) and the signed node-to-node query of My Page across regions. /oauth/logout is a form too: the
# answer to its "log out?" question (listed below).
NOT_FORMS = {"/oauth/authorize", "/oauth/token", "/oauth/revoke", "/oauth/userinfo", "/federation/person-summary"}
# The identity service's tables and the columns a refused form must leave as they were: all of them, but for what
# changes on its own (a session's last_seen_at is a read's touch; the relay marks events published).
IGNORED = {"sessions": {"last_seen_at"}, "outbox": {"published_at"}}


@dataclass
class Portal:
    app: Any
    svc: IdentityService
    nc: nats.NATS
    asked: list[str] = field(default_factory=list)  # subjects requested on the bus while recording
    recording: bool = False
    serial: itertools.count = field(default_factory=itertools.count)
    staff: httpx.AsyncClient | None = None  # logged in, both roles: the forms that touch no account

    def browser(self, client: tuple[str, int] = ("127.0.0.1", 123), app: Any = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app or self.app, client=client)
        return httpx.AsyncClient(transport=transport, base_url=BASE, follow_redirects=False)

    async def admin(self, endpoint: str, payload: Any = None) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)

    async def person(self, *, roles: tuple[str, ...] = (), verified: bool = True) -> str:
        handle = f"p{next(self.serial)}_{'v' if verified else 'u'}"
        if verified:
            await self.admin(c.EP_USER_ADD, c.UserAddIn(handle=handle, display_name="山田 花子",
                                                         email=f"{handle}@example.jp", password=PW))
        else:
            await self.admin(c.EP_REGISTER, c.RegisterIn(handle=handle, display_name="山田 花子",
                                                          email=f"{handle}@example.jp", password=PW))
        for role in roles:
            await self.admin(c.EP_USER_GRANT, c.RoleIn(handle=handle, role=role))
        return handle

    async def user_row(self, handle: str) -> Any:
        async with self.svc.sessions() as s:
            return (await s.execute(select(models.users).where(models.users.c.handle == handle))).first()

    async def count(self, table: Any, *where: Any) -> int:
        async with self.svc.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        got = {}
        async with self.svc.sessions() as s:
            for name, table in sorted(models.metadata.tables.items()):
                cols = [col for col in table.c if col.name not in IGNORED.get(name, ())]
                got[name] = sorted(tuple(map(repr, row)) for row in (await s.execute(select(*cols))).all())
        return got


async def _monitor(portal: Portal, url: str) -> nats.NATS:
    """Records every request on svc.<node>.>; answers those to services that do not run here with an error at once
    (identity answers its own: this subscription only listens there)."""
    mon = await nats.connect(url)
    identity = subjects.svc_group(NODE, c.SERVICE) + "."

    async def seen(msg: Any) -> None:
        if portal.recording:
            portal.asked.append(msg.subject)
        if not msg.subject.startswith(identity) and msg.reply:
            await msg.respond(b"", headers={subjects.HDR_SERVICE_ERROR_CODE: "503",
                                            subjects.HDR_SERVICE_ERROR: "not running in this test"})

    await mon.subscribe(f"svc.{NODE}.>", cb=seen)
    await mon.flush()
    return mon


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Portal]:
    tmp: Path = tmp_path_factory.mktemp("portal_forms")
    server = NatsServer(node_id="testnode", data_dir=tmp / "nats")
    server.start()
    svc = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=server.url, data_dir=str(tmp),
                                          public_url=BASE), smtp=SmtpSettings(enabled=False))
    await svc.start()
    # many logins from one address here: the throttle has its own test below, with its own app
    app = create_app(GatewaySettings(node_id=NODE, nats_url=server.url, services="identity", data_dir=str(tmp),
                                     public_url=BASE, request_timeout=15, login_limit=100_000))
    nc = await nats.connect(server.url)
    portal = Portal(app, svc, nc)
    mon = await _monitor(portal, server.url)
    try:
        async with app.router.lifespan_context(app):
            portal.staff = portal.browser()
            await portal_login(portal.staff, await portal.person(roles=c.ROLES))
            yield portal
            await portal.staff.aclose()
    finally:
        await mon.close()
        await nc.close()
        await svc.stop()
        server.stop()


def csrf_of(page: httpx.Response) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert m, page.text[-500:]
    return m.group(1)


async def portal_login(browser: httpx.AsyncClient, login: str, password: str = PW) -> httpx.Response:
    csrf = csrf_of(await browser.get("/login"))
    return await browser.post("/login", data={"csrf": csrf, "login": login, "password": password, "next": "/me"})


async def logged_in(browser: httpx.AsyncClient) -> bool:
    r = await browser.get("/settings/profile")
    assert r.status_code in (200, 303), r.status_code
    return r.status_code == 200


async def password_works(portal: Portal, handle: str, password: str) -> bool:
    try:
        token = (await portal.admin(c.EP_LOGIN, c.LoginIn(login=handle, password=password)))["session_token"]
    except errors.Unauthorized:
        return False
    await portal.admin(c.EP_LOGOUT, {"session_token": token})
    return True


async def refusals(portal: Portal, browser: httpx.AsyncClient, path: str, fields: dict[str, str]) -> None:
    """The form without its token, with a forged one, with another browser's token, with its own token from another
    site: each 403 with the reason, no redirect, no cookie set, nothing asked of any service, no table changed."""
    own = csrf_of(await browser.get("/login"))  # the nonce cookie, and this browser's token
    async with portal.browser() as other:
        others = csrf_of(await other.get("/login"))
    before = await portal.snapshot()
    for data, headers in ((fields, {}), ({**fields, "csrf": "0" * 64}, {}), ({**fields, "csrf": others}, {}),
                          ({**fields, "csrf": own}, {"Origin": "https://evil.example"})):
        portal.asked.clear()
        portal.recording = True
        try:
            r = await browser.post(path, data=data, headers=headers)
            await portal.nc.flush()
        finally:
            portal.recording = False
        assert r.status_code == 403 and CSRF_REASON in r.text, (path, headers, r.status_code, r.text[-600:])
        assert "location" not in r.headers and SESSION not in r.headers.get("set-cookie", ""), (path, r.headers)
        assert set(portal.asked) <= ASKS_ALLOWED, (path, portal.asked)
    assert await portal.snapshot() == before, path


# ---- the forms of the identity service: refused, then the same form with its token does what it says ----------


async def _logout(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    await refusals(portal, browser, "/logout", {})
    assert await logged_in(browser)
    r = await browser.post("/logout", data={"csrf": csrf_of(await browser.get("/settings/profile"))})
    assert r.status_code == 303 and not await logged_in(browser)


async def _oauth_logout(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    await refusals(portal, browser, "/oauth/logout", {"confirm": "yes"})
    assert await logged_in(browser)
    r = await browser.post("/oauth/logout", data={"csrf": csrf_of(await browser.get("/oauth/logout")),
                                                  "confirm": "yes"})
    assert r.status_code == 303 and not await logged_in(browser)


async def _profile(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    fields = {"display_name": "Mallory", "nickname": "m", "district": "x", "lang": "en"}
    await refusals(portal, browser, "/settings/profile", fields)
    row = await portal.user_row(handle)
    assert (row.display_name, row.nickname, row.district, row.lang) == ("山田 花子", "", "", "ja")
    r = await browser.post("/settings/profile",
                           data={**fields, "csrf": csrf_of(await browser.get("/settings/profile"))})
    assert r.status_code == 200 and (await portal.user_row(handle)).nickname == "m"


async def _password(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    other_session = (await portal.admin(c.EP_LOGIN, c.LoginIn(login=handle, password=PW)))["session_token"]
    fields = {"current_password": PW, "new_password": NEW_PW}
    await refusals(portal, browser, "/settings/password", fields)
    assert await password_works(portal, handle, PW) and not await password_works(portal, handle, NEW_PW)
    await portal.admin(c.EP_SESSION, {"session_token": other_session})  # other sessions did not end
    r = await browser.post("/settings/password",
                           data={**fields, "csrf": csrf_of(await browser.get("/settings/profile"))})
    assert r.status_code == 200 and await password_works(portal, handle, NEW_PW)


async def _delete(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    await refusals(portal, browser, "/settings/delete", {"password": PW})
    assert await portal.user_row(handle) is not None and await logged_in(browser)
    assert await password_works(portal, handle, PW)
    r = await browser.post("/settings/delete",
                           data={"password": PW, "csrf": csrf_of(await browser.get("/settings/profile"))})
    assert r.status_code == 200 and await portal.user_row(handle) is None


async def _resend(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    row = await portal.user_row(handle)
    tokens = models.one_time_tokens.c
    before = await portal.count(models.one_time_tokens, tokens.user_id == row.id, tokens.purpose == "verify")
    await refusals(portal, browser, "/verify-email/resend", {})
    r = await browser.post("/verify-email/resend", data={"csrf": csrf_of(await browser.get("/settings/profile"))})
    assert r.status_code == 200
    assert await portal.count(models.one_time_tokens, tokens.user_id == row.id, tokens.purpose == "verify") > before


async def _login(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    await refusals(portal, browser, "/login", {"login": handle, "password": PW, "next": "/me"})
    assert not await logged_in(browser) and (await portal.user_row(handle)).failed_logins == 0
    r = await portal_login(browser, handle)
    assert r.status_code == 303 and await logged_in(browser)


async def _login_federated(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    # this node belongs to no federation: the form with its token gets as far as the identity service's refusal
    await refusals(portal, browser, "/login/federated", {"target": "hanako@suginami", "next": "/me"})
    r = await browser.post("/login/federated", data={"target": "hanako@suginami",
                                                     "csrf": csrf_of(await browser.get("/login"))})
    # the refusal's code (federation.none) in the page's words, not the service's English reason
    assert r.status_code == 503 and words(c.FEDERATION_NONE.code, "ja") in r.text and "no federation" not in r.text


async def _register(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    fields = {"handle": f"{handle}_new", "display_name": "新人", "email": f"{handle}_new@example.jp", "password": PW}
    await refusals(portal, browser, "/register", fields)
    assert await portal.user_row(f"{handle}_new") is None
    r = await browser.post("/register", data={**fields, "csrf": csrf_of(await browser.get("/register"))})
    assert r.status_code == 200 and await portal.user_row(f"{handle}_new") is not None


async def _forgot(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    tokens = models.one_time_tokens.c
    row = await portal.user_row(handle)
    await refusals(portal, browser, "/password/forgot", {"email": f"{handle}@example.jp"})
    before = await portal.count(models.one_time_tokens, tokens.user_id == row.id, tokens.purpose == "reset")
    assert before == 0
    r = await browser.post("/password/forgot", data={"email": f"{handle}@example.jp",
                                                     "csrf": csrf_of(await browser.get("/password/forgot"))})
    assert r.status_code == 200
    assert await portal.count(models.one_time_tokens, tokens.user_id == row.id, tokens.purpose == "reset") == before + 1


async def _reset(portal: Portal, browser: httpx.AsyncClient, handle: str) -> None:
    await portal.admin(c.EP_RESET_REQUEST, c.EmailIn(email=f"{handle}@example.jp"))
    async with portal.svc.sessions() as s:
        text = (await s.execute(select(models.mail.c.body_text).where(
            models.mail.c.to_addr == f"{handle}@example.jp", models.mail.c.key.like("reset:%")))).scalar_one()
    token = re.search(r"/password/reset\?token=([A-Za-z0-9_-]+)", text).group(1)  # type: ignore[union-attr]
    await refusals(portal, browser, "/password/reset", {"token": token, "new_password": NEW_PW})
    assert await password_works(portal, handle, PW) and not await password_works(portal, handle, NEW_PW)
    r = await browser.post("/password/reset", data={"token": token, "new_password": NEW_PW,
                                                    "csrf": csrf_of(await browser.get(
                                                        f"/password/reset?token={token}"))})
    assert r.status_code == 200 and await password_works(portal, handle, NEW_PW)  # the token was still good


# (path, logged in first, a verified address, the check)
ACCOUNT_FORMS: list[tuple[str, bool, bool, Callable[[Portal, httpx.AsyncClient, str], Awaitable[None]]]] = [
    ("/login", False, True, _login),
    ("/login/federated", False, True, _login_federated),
    ("/logout", True, True, _logout),
    ("/oauth/logout", True, True, _oauth_logout),
    ("/register", False, True, _register),
    ("/verify-email/resend", True, False, _resend),
    ("/settings/profile", True, True, _profile),
    ("/settings/password", True, True, _password),
    ("/password/forgot", False, True, _forgot),
    ("/password/reset", False, True, _reset),
    ("/settings/delete", True, True, _delete),
]


@pytest.mark.parametrize(("path", "log_in", "verified", "check"), ACCOUNT_FORMS, ids=[f[0] for f in ACCOUNT_FORMS])
async def test_account_forms_refuse_a_post_without_their_token_and_change_nothing(portal, path, log_in, verified,
                                                                                 check) -> None:
    handle = await portal.person(verified=verified)
    async with portal.browser() as browser:
        if log_in:
            assert (await portal_login(browser, handle)).status_code == 303 and await logged_in(browser)
        await check(portal, browser, handle)


# ---- every other form: refused, nothing asked of any service, no identity table changed -------------------------

# Each route of the portal's features that takes a POST, as the app declares it; path values are made up (the
# refusal comes before anything looks at them). {what}: every action the route knows.
OTHER_FORMS = [
    "/settings/cards/bind", "/settings/cards/code", "/settings/cards/unbind",
    # co-creation (projects)
    "/themes/new", "/themes/{theme_id}/edit", "/themes/{theme_id}/publish", "/themes/{theme_id}/call",
    "/themes/{theme_id}/phase", "/themes/{theme_id}/requirements", "/hearings", "/orgs/new", "/orgs/{org_id}",
    "/orgs/{org_id}/members", "/contact", "/secretariat/inquiries/{inquiry_id}/status",
    "/themes/{theme_id}/briefings", "/themes/{theme_id}/briefings/{briefing_id}/register",
    "/themes/{theme_id}/briefings/{briefing_id}/cancel", "/themes/{theme_id}/proposals/new",
    "/proposals/{proposal_id}/edit", "/proposals/{proposal_id}/withdraw", "/proposals/{proposal_id}/partner",
    "/themes/{theme_id}/evaluate/{proposal_id}/declare", "/themes/{theme_id}/evaluate/{proposal_id}/score",
    "/themes/{theme_id}/selection/evaluators", "/themes/{theme_id}/selection/close",
    "/themes/{theme_id}/selection/publish",
    "/themes/{theme_id}/pilot/roles", "/themes/{theme_id}/pilot/roles/{role_id}/remove",
    "/themes/{theme_id}/pilot/milestones", "/themes/{theme_id}/pilot/milestones/{milestone_id}/status",
    "/themes/{theme_id}/pilot/milestones/{milestone_id}/remove", "/themes/{theme_id}/pilot/kpis",
    "/themes/{theme_id}/pilot/kpis/{kpi_id}/remove", "/themes/{theme_id}/pilot/plan",
    "/themes/{theme_id}/pilot/agreements", "/themes/{theme_id}/pilot/advance",
    "/themes/{theme_id}/agreements/{agreement_id}/sign", "/themes/{theme_id}/agreements/{agreement_id}/revise",
    "/themes/{theme_id}/results/actuals", "/themes/{theme_id}/results/report", "/themes/{theme_id}/results/budget",
    "/themes/{theme_id}/results/decision", "/themes/{theme_id}/results/case",
    "/themes/{theme_id}/results/case/publish",
    # across the federation
    "/federation/follow", "/federation/themes/{origin}/{theme_id}/participate",
    "/federation/cases/{origin}/{case_id}/adopt", "/themes/{theme_id}/wide-area",
    # points, coupons and the currency
    "/points/coupons/buy", "/staff/coupons/types", "/staff/coupons/redeem", "/staff/currency/award",
    # courses and certificates
    "/staff/courses", "/staff/certifications", "/staff/courses/{code}/complete",
    "/staff/certificates/{cert_id}/revoke", "/certificates/verify",
    # donations
    "/donations/projects/{code}/pledge", "/staff/donations/projects", "/staff/donations/projects/{code}/certify",
    "/staff/donations/rules", "/staff/donations/projects/{code}/uses",
    "/staff/donations/pledges/{reference}/confirm", "/staff/donations/pledges/{reference}/cancel",
    # a booking's life: the approval queue, paying one booking
    "/staff/bookings/{booking_id}/approve", "/staff/bookings/{booking_id}/reject", "/bookings/{booking_id}/pay",
    # the notebook's figures
    "/staff/figures/event",
    # events: sign-up, cancellation, the staff's form
    "/events/{code}/signup", "/events/{code}/cancel", "/staff/events",
    # communities and friends (sns)
    "/communities", "/communities/{cid}/join", "/communities/{cid}/leave", "/communities/{cid}/close",
    "/communities/{cid}/remove", "/communities/{cid}/hand_over", "/communities/{cid}/posts",
    "/communities/{cid}/posts/{pid}/{what}", "/friends/request", "/friends/remove", "/friends/{rid}/{what}",
    # facility bookings (bookings.py, bookings_staff.py)
    "/bookings/new", "/bookings/feed", "/bookings/{booking_id}/cancel", "/staff/bookings/facility",
    "/staff/bookings/counter", "/staff/bookings/facility/photos", "/staff/bookings/facility/photos/remove",
    # the bookings' waitlist and recurring series
    "/bookings/waitlist/join", "/bookings/waitlist/{entry_id}/leave", "/bookings/waitlist/offers/{booking_id}/accept",
    "/bookings/waitlist/offers/{booking_id}/decline", "/bookings/series/new", "/bookings/series/{series_id}/change",
    # notices: the inbox, life stage, staff notices, the calendar's private feed, collected feeds
    "/inbox/{item_id}/mark", "/me/life", "/me/life/delete", "/staff/notices", "/staff/notices/preview",
    "/staff/notices/{notice_id}/approve", "/staff/notices/{notice_id}/correct", "/staff/notices/{notice_id}/withdraw",
    "/calendar/private", "/staff/feeds", "/staff/feeds/rules", "/staff/feeds/{feed_id}/{action}",
    # signage (staff)
    "/staff/signage/content", "/staff/signage/content/{item_id}/{action}", "/staff/signage/emergency",
    "/staff/signage/emergency/{emergency_id}/clear", "/staff/signage/playlists",
    "/staff/signage/slides", "/staff/signage/federation/offer/{item_id}", "/staff/signage/federation/adopt",
    # lotteries and registered groups (bookings)
    "/lottery/{round_id}/enter", "/lottery/entries/{entry_id}/withdraw", "/groups", "/staff/lottery",
    "/staff/lottery/{round_id}/draw", "/staff/groups/{group_id}/decide",
    # activity notifications (notices): read all, settings, push in this browser (posted by the page's script)
    "/notifications/read", "/notifications/settings", "/notifications/push", "/notifications/push/remove",
    # other towns' public notices (notices): follow or stop
    "/me/towns",
    # 共感 on themes and cases; moderation of the SNS (the person's appeal, the staff's queue and block list)
    "/themes/{theme_id}/like", "/cases/{case_id}/like", "/moderation/{aid}/appeal", "/communities/{cid}/report",
    "/staff/moderation/reports/{rid}", "/staff/moderation/appeals/{aid}", "/staff/moderation/blocks",
    # direct messages (sns_messages)
    "/messages", "/messages/{handle}", "/messages/{handle}/{what}",
    # blogs (sns_blogs): an entry with its pictures (multipart), and what is done on an entry's page
    "/blogs", "/blogs/{eid}/{what}",
    # matching (sns_matching): skills, posting, applying, withdrawing, closing, the organiser's answer
    "/openings/skills", "/openings/new", "/openings/{opening_id}/apply", "/openings/{opening_id}/withdraw",
    "/openings/{opening_id}/close", "/openings/{opening_id}/decide",
]
WHATS = {
    "/communities/{cid}/posts/{pid}/{what}": ["delete", *sns.POST_ACTIONS],  # every action
    "/friends/{rid}/{what}": list(sns.ANSWERS),
    "/messages/{handle}/{what}": list(sns_messages.PEER_ACTIONS),
    "/blogs/{eid}/{what}": list(sns_blogs.ENTRY_ACTIONS),
}
# Fields a person would send: the refusal must not depend on them, and they must be harmless were it not refused.
FIELDS = {"title": "t", "body": "b", "name": "n", "handle": "someone", "person": "someone@tsuru", "code": "ABCD1234",
          "card_idm": "0123456789abcdef", "amount": "1", "points": "1", "note": "n", "status": "done"}


def _filled(template: str, what: str | None) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: what if m.group(1) == "what" and what else f"{m.group(1)}-1", template)


OTHER_CASES = [(p, w) for p in OTHER_FORMS for w in WHATS.get(p, [None])]


@pytest.mark.parametrize(("template", "what"), OTHER_CASES,
                         ids=[_filled(p, w) for p, w in OTHER_CASES])
async def test_every_other_form_refuses_a_post_without_its_token(portal, template, what) -> None:
    assert portal.staff is not None
    await refusals(portal, portal.staff, _filled(template, what), FIELDS)
    assert await logged_in(portal.staff)


def _post_routes(app: Any) -> set[str]:
    """The path of every route of the app that takes a POST (routers included at any depth)."""
    def walk(routes: list[Any], prefix: str) -> Any:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps included routers whole
            if inner is not None:
                yield from walk(inner.routes, prefix + route.include_context.prefix)
            elif "POST" in (getattr(route, "methods", None) or ()):
                yield prefix + route.path

    return set(walk(app.routes, ""))


# The HTTP API (gateway/api/) takes a bearer token in the Authorization header and never reads the session cookie,
# so a cross-site page cannot post to it on a person's behalf: no CSRF token there (tests/gateway/test_api_*.py).
API_PREFIX = "/api/v1/"


async def test_the_list_of_forms_is_every_post_route_of_the_portal(portal) -> None:
    declared = {path for path in _post_routes(portal.app) if not path.startswith(API_PREFIX)}
    assert "/login" in declared and "/oauth/token" in declared and len(declared) > 50  # the walk sees them all
    listed = {f[0] for f in ACCOUNT_FORMS} | set(OTHER_FORMS)
    assert declared - NOT_FORMS - listed == set(), "a POST route without a CSRF test: add it to this file"
    assert listed - declared == set(), "a route listed here is gone: take it out"
    assert not NOT_FORMS - declared


# ---- the login throttle: per client address, before the password is checked; the lockout is per account ------


async def test_login_throttle_per_account_and_address_and_the_account_lockout_apart(portal, tmp_path) -> None:
    defaults = GatewaySettings.model_fields
    limit, window = defaults["login_limit"].default, defaults["login_window"].default
    assert (limit, window) == (10, 300.0)  # TOWNTIP_LOGIN_LIMIT, TOWNTIP_LOGIN_WINDOW
    app = create_app(GatewaySettings(node_id=NODE, nats_url=portal.svc.settings.nats_url, services="identity",
                                     data_dir=str(tmp_path), public_url=BASE, request_timeout=15,
                                     login_limit=limit, login_window=window))
    hanako, taro = await portal.person(), await portal.person()
    sessions = models.sessions.c
    too_many = t("too_many", "ja")
    async with app.router.lifespan_context(app), portal.browser(("10.0.0.1", 1000), app) as here, \
            portal.browser(("10.0.0.2", 1000), app) as there, portal.browser(("10.0.0.3", 1000), app) as third:
        row = await portal.user_row(hanako)
        # Ten attempts from one address in the window: wrong ones (fewer than the lockout's), then right ones.
        for i in range(limit):
            r = await portal_login(here, hanako, "wrong password!" if i < MAX_FAILED_LOGINS - 1 else PW)
            assert r.status_code == (401 if i < MAX_FAILED_LOGINS - 1 else 303), (i, r.text[-400:])
        assert (await portal.user_row(hanako)).failed_logins == 0
        here.cookies.clear()
        opened = await portal.count(models.sessions, sessions.user_id == row.id)
        # The eleventh, with the right password: refused before the password is looked at; nothing is asked of
        # the identity service (no session, no failure counted), and the twelfth, wrong, counts no failure either.
        for password in (PW, "wrong password!"):
            portal.asked.clear()
            portal.recording = True
            try:
                r = await portal_login(here, hanako, password)
                await portal.nc.flush()
            finally:
                portal.recording = False
            assert r.status_code == 429 and too_many in r.text and SESSION not in r.headers.get("set-cookie", "")
            assert subjects.svc(NODE, c.SERVICE, c.EP_LOGIN) not in portal.asked, portal.asked
        assert await portal.count(models.sessions, sessions.user_id == row.id) == opened
        assert (await portal.user_row(hanako)).failed_logins == 0 and not await logged_in(here)
        # Another address is not throttled: the same person logs in there.
        assert (await portal_login(there, hanako)).status_code == 303 and await logged_in(there)
        # Nor is someone else at the same address (a 公民館's PC room behind one address): the throttle counts
        # an account's attempts from an address, not everyone's.
        assert (await portal_login(here, taro)).status_code == 303 and await logged_in(here)
        here.cookies.clear()
        # The window slides: once the first attempts are older than it, the address may try again.
        attempts = app.state.login_throttle.attempts.seen[LoginThrottle.key("10.0.0.1", hanako)]
        for i in range(len(attempts)):
            attempts[i] -= window + 1
        assert (await portal_login(here, hanako)).status_code == 303

        # The lockout is the identity service's, per account, from any address: five wrong passwords for taro from
        # three addresses (none near its limit), then the right one from a fourth: refused with the account's reason.
        for i in range(MAX_FAILED_LOGINS):
            r = await portal_login((there, third, here)[i % 3], taro, "wrong password!")
            assert r.status_code == 401, r.text[-400:]
        async with portal.browser(("10.0.0.4", 1000), app) as fourth:
            r = await portal_login(fourth, taro)
            assert r.status_code == 429 and "ロック" in r.text and too_many not in r.text
            assert not await logged_in(fourth)
            # that address may still log in someone else: the lockout is the account's, the throttle the address's
            assert (await portal_login(fourth, hanako)).status_code == 303
        assert (await portal.user_row(taro)).locked_until is not None


async def test_one_address_guessing_across_accounts_is_slowed(portal, tmp_path) -> None:
    """Failed logins from one address across many accounts: after the address's failure budget (ten times the
    per-account limit; here 3 × 2 = 6) even a new account's attempt from there waits for the window, while
    another address is not touched; right passwords never use the budget."""
    app = create_app(GatewaySettings(node_id=NODE, nats_url=portal.svc.settings.nats_url, services="identity",
                                     data_dir=str(tmp_path), public_url=BASE, request_timeout=15, login_limit=3,
                                     login_window=300.0))
    app.state.login_throttle = LoginThrottle(3, 300.0, address_failures=6)
    people = [await portal.person() for _ in range(4)]
    too_many = t("too_many", "ja")
    async with app.router.lifespan_context(app), portal.browser(("10.0.0.9", 1000), app) as here, \
            portal.browser(("10.0.0.8", 1000), app) as there:
        for person in people[:2]:  # right passwords use none of the budget
            assert (await portal_login(here, person)).status_code == 303
            here.cookies.clear()
        for person in people[:3]:
            for _ in range(2):
                assert (await portal_login(here, person, "wrong password!")).status_code == 401
        r = await portal_login(here, people[3])
        assert r.status_code == 429 and too_many in r.text and not await logged_in(here)
        assert (await portal_login(there, people[3])).status_code == 303 and await logged_in(there)


async def test_a_browser_gets_a_page_for_an_unknown_address_and_a_machine_a_problem(portal) -> None:
    """An address that is not there, asked by a browser (Accept: text/html): a Japanese page with the site's header
    and a way home, status 404; asked by a script, or under /api/, the problem document (RFC 9457) as before."""
    html = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with portal.browser() as browser:
        for path in ("/nowhere", "/staff/nothing-here"):
            r = await browser.get(path, headers=html)
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), r.text[:200]
            assert t("page_404", "ja") in r.text and 'href="/"' in r.text and "urn:towntip:problem" not in r.text
        browser.cookies.set(ps.LANG_COOKIE, "en")
        assert t("page_404", "en") in (await browser.get("/nowhere", headers=html)).text
        r = await browser.get("/nowhere")
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        r = await browser.get("/api/v1/nowhere", headers=html)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        r = await browser.put("/login", headers=html)  # not a GET: a machine's question, a machine's answer
        assert r.status_code == 405 and r.headers["content-type"].startswith("application/problem+json")
