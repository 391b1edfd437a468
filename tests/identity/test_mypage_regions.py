"""My Page across regions with three real nodes and a trust anchor (tests/support/federation_nodes.py), on SQLite and
PostgreSQL: each node runs identity, points, projects, sns and its gateway.

hanako's home is tsurugashima (A). She logs in at suginami (B) and shibuya (C) through A; she holds points at B
and takes part in co-creation and a community at C. A knows where she takes part and asks B and C with signed queries; B
asks A with the access token A issued to it. Every refusal is checked to change nothing at the node that refused.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import nats
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from sqlalchemy import func, select, update

from identity import keys
from identity.accounts import digest, new_secret
from identity.models import home_tokens, oauth_refresh_tokens, presence, query_jtis, sessions, users
from services.points.app import PointsService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.support import bus
from tests.support.bus import wait_for
from tests.support.federation_nodes import PW, Browser, Node, federation_of
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as snc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings

# three nodes: one federation at a time (tests/README.md)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("federation")]
A, B, C = "tsurugashima", "suginami", "shibuya"
HANAKO = f"hanako@{A}"
SERVICES = {"points": PointsService,
            "projects": lambda settings: ProjectsService(settings, smtp=SmtpSettings(enabled=False)),
            "sns": SnsService}
CONTENT = {"background": "路線バスが減便された", "target": "75歳以上の方", "desired_outcome": "週2回以上の外出",
           "fields": ["npo-1"], "company_points": "予約システム"}


@pytest.fixture
async def nodes(tmp_path: Path, database: tuple[str, str | None]) -> AsyncIterator[tuple[Any, dict[str, Node]]]:
    async with federation_of(tmp_path, services=SERVICES, database=database) as (anchor, found, _hub):
        yield anchor, found


async def call(node: Node, service: str, endpoint: str, payload: Any) -> Any:
    """support.bus's call to a service of one node of the federation, on a connection of its own."""
    nc = await nats.connect(node.nats.url)
    try:
        return await bus.call(nc, endpoint, payload, service=service, node=node.name)
    finally:
        await nc.close()


async def linked(node: Node, handle: str = HANAKO) -> Any:
    async with node.identity.sessions() as s:
        return (await s.execute(select(users).where(users.c.handle == handle))).one()


async def log_in_everywhere(a: Node, b: Node, cn: Node) -> Browser:
    """At B with her password at A; at C through A's live session."""
    browser = Browser()
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": HANAKO})
    r = await browser.form(str(r.url), "/login", {"login": "hanako", "password": PW})
    assert str(r.url) == f"{b.base}/me", browser.hops
    r = await browser.form(f"{cn.base}/login", "/login/federated", {"target": HANAKO})
    assert str(r.url) == f"{cn.base}/me", browser.hops
    return browser


async def take_part(b: Node, cn: Node) -> dict[str, Any]:
    """40 points at B (the operator posts to her ledger account there); at C a company of hers and a theme of the
    department she was added to."""
    at_b = await linked(b)
    await call(b, "points", lc.EP_LEDGER_POST, {"entries": [{"key": "op-award-regions-01", "legs": [
        {"account": "system:issuance", "asset": "machi-point", "amount": -40},
        {"account": f"person:{at_b.id}", "asset": "machi-point", "amount": 40}]}]})
    at_c = await linked(cn)
    her = Actor(user_id=at_c.id, global_handle=HANAKO, display_name="山田 花子").model_dump(mode="json")
    staff = Actor(user_id="user-kikaku-shibuya", global_handle=f"kikaku@{C}", display_name="企画 太郎",
                  roles=("staff",)).model_dump(mode="json")
    company = await call(cn, "projects", prc.EP_ORG_CREATE, {"actor": her, "kind": "company", "name": "はなこ商店"})
    dept = await call(cn, "projects", prc.EP_ORG_CREATE, {"actor": staff, "kind": "department", "name": "交通政策課"})
    await call(cn, "projects", prc.EP_ORG_MEMBER_ADD, {"actor": staff, "org_id": dept["id"], "global_handle": HANAKO})
    theme = await call(cn, "projects", prc.EP_THEME_CREATE, {"actor": staff, "owner_department_id": dept["id"],
                                                             "title": "高齢者の移動手段の確保", **CONTENT})
    # and at C's SNS: a community she leads, and a friend request waiting for her answer
    community = await call(cn, "sns", snc.EP_COMMUNITY_OPEN, {"actor": her, "name": "子育てサロン",
                                                              "categories": ["npo-13"]})
    await call(cn, "sns", snc.EP_FRIEND_REQUEST, {"actor": staff, "to": HANAKO, "to_name": "山田 花子"})
    return {"company": company, "dept": dept, "theme": theme, "community": community}


def region(regions: list[dict[str, Any]], node: str) -> dict[str, Any]:
    return next(r for r in regions if r["node"] == node)


JIRO, SABURO = f"jiro@{C}", f"saburo@{C}"


async def befriend_at(cn: Node, browser: Browser) -> Browser:
    """Two people of C; through C's portal she asks both to be friends (C's identity service knows them: the
    gateway's people.profile look-up), jiro accepts at C with his password, saburo never answers."""
    for handle, name in (("jiro", "渋谷 次郎"), ("saburo", "渋谷 三郎")):
        await call(cn, "identity", ic.EP_USER_ADD, ic.UserAddIn(handle=handle, display_name=name,
                                                                email=f"{handle}@example.jp", password=PW))
    for handle in (JIRO, SABURO):
        r = await browser.form(f"{cn.base}/friends", "/friends/request", {"handle": handle})
        assert str(r.url) == f"{cn.base}/friends?sent=1", (r.status_code, browser.hops)
    jiro = Browser()
    r = await jiro.form(f"{cn.base}/login", "/login", {"login": "jiro", "password": PW})
    assert r.status_code == 200 and str(r.url) == f"{cn.base}/me", jiro.hops
    page = (await jiro.go("GET", f"{cn.base}/friends")).text
    (rid,) = re.findall(r'action="/friends/([0-9a-f-]{36})/accept"', page)  # hers, the one request he got
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    r = await jiro.go("POST", f"{cn.base}/friends/{rid}/accept", data={"csrf": csrf})
    assert str(r.url) == f"{cn.base}/friends?saved=1" and r.status_code == 200, jiro.hops
    return jiro


def friends_of(summary: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["global_handle"], f["display_name"]) for f in summary["sns"]["friends"]]


def section_of(page: str, node: str) -> str:
    """My Page's section for one region (HTML)."""
    start = page.index(f'id="region-{node}"')
    return page[start:page.index("</section>", start)]


@pytest.mark.timeout(300)  # three nodes and their anchor: over 120 s with the whole suite on two cores
async def test_my_page_at_home_and_at_another_node_shows_every_region(nodes) -> None:
    _anchor, found = nodes
    a, b, cn = found[A], found[B], found[C]
    browser = await log_in_everywhere(a, b, cn)
    made = await take_part(b, cn)

    # A knows where she takes part: B and C (the member nodes it issued codes to for her), nobody else.
    async with a.identity.sessions() as s:
        places = {r.node: r for r in (await s.execute(select(presence))).all()}
    assert set(places) == {B, C} and places[B].entity_id == b.base

    # At home: her regions as JSON (session cookie), home first, B's points and C's co-creation.
    r = await browser.http.get(f"{a.base}/api/v1/me/regions")
    assert r.status_code == 200, r.text
    mine = r.json()
    assert mine["global_handle"] == HANAKO and [v["node"] for v in mine["regions"]] == [A, C, B]
    assert mine["regions"][0]["home"] and all(v["state"] == "ok" for v in mine["regions"]), mine["regions"]
    at_b = region(mine["regions"], B)["summary"]
    assert at_b["points"] == {"asset": "machi-point", "balance": 40, "cards": 0}
    assert at_b["global_handle"] == HANAKO and at_b["unavailable"] == []
    assert at_b["sns"] == {"communities": [], "friends": [], "friend_requests": 0,
                           "unread_messages": 0}
    at_c = region(mine["regions"], C)["summary"]
    assert {(o["name"], o["role"]) for o in at_c["projects"]["organisations"]} == {("はなこ商店", "admin"),
                                                                                    ("交通政策課", "member")}
    assert at_c["projects"]["themes"] == [{"id": made["theme"]["id"], "title": "高齢者の移動手段の確保", "phase": 1,
                                           "status": "draft", "role": "owner_department"}]
    assert [(g["id"], g["name"], g["category"], g["role"], g["members"]) for g in at_c["sns"]["communities"]] == [
        (made["community"]["id"], "子育てサロン", "npo-13", "leader", 1)]
    assert at_c["sns"]["friends"] == [] and at_c["sns"]["friend_requests"] == 1

    # At C she becomes friends with jiro (her request, his answer, both through C's portal); her request to saburo
    # waits for his answer. A's answer lists jiro under C, by his handle and name; the requests still waiting (hers
    # to saburo, kikaku's to her) make no friends, and only the one waiting for her answer is counted for her.
    asked = utcnow()
    jiro = await befriend_at(cn, browser)
    r = await browser.http.get(f"{a.base}/api/v1/me/regions")
    assert r.status_code == 200, r.text
    mine = r.json()
    assert [v["node"] for v in mine["regions"]] == [A, C, B] and all(v["state"] == "ok" for v in mine["regions"])
    at_c = region(mine["regions"], C)["summary"]
    assert friends_of(at_c) == [(JIRO, "渋谷 次郎")] and at_c["sns"]["friend_requests"] == 1
    since = datetime.fromisoformat(at_c["sns"]["friends"][0]["since"])
    assert asked - timedelta(seconds=5) <= since <= utcnow() + timedelta(seconds=5), since
    assert [g["name"] for g in at_c["sns"]["communities"]] == ["子育てサロン"]
    assert friends_of(region(mine["regions"], B)["summary"]) == []  # a friendship at C is C's
    assert friends_of(region(mine["regions"], A)["summary"]) == []
    # jiro's home is C: his own regions (C alone) list her, by her handle and name
    r = await jiro.http.get(f"{cn.base}/api/v1/me/regions")
    assert r.status_code == 200, r.text
    assert [(v["node"], v["home"]) for v in r.json()["regions"]] == [(C, True)]
    assert friends_of(r.json()["regions"][0]["summary"]) == [(HANAKO, "山田 花子")]
    await jiro.aclose()

    # My Page at A shows the same, one section per region.
    page = (await browser.http.get(f"{a.base}/me")).text
    assert 'id="region-suginami" data-state="ok"' in page and 'id="region-shibuya" data-state="ok"' in page
    assert "杉並区" in page and "渋谷区" in page and "はなこ商店" in page and "高齢者の移動手段の確保" in page
    assert "担当部署" in page and '<strong class="points">40</strong>' in page
    assert "子育てサロン" in page and "リーダー" in page and "承認待ちの友だち申請: 1" in page
    shibuya = section_of(page, C)
    assert '<ul class="friends"><li>渋谷 次郎 <small>jiro@shibuya</small></li></ul>' in shibuya
    assert "承認待ちの友だち申請: 1" in shibuya and "渋谷 三郎" not in page and SABURO not in page
    assert "jiro@shibuya" not in section_of(page, B) and "jiro@shibuya" not in section_of(page, A)

    # My Page at B: A's answer through B's access token (A asks C; B shows its own part itself).
    page = (await browser.http.get(f"{b.base}/me")).text
    assert 'id="region-tsurugashima" data-state="ok"' in page and 'id="region-shibuya" data-state="ok"' in page
    assert '<strong id="my-points">40</strong>' in page and "高齢者の移動手段の確保" in page
    assert page.index("region-tsurugashima") < page.index("region-shibuya") < page.index("region-suginami")
    assert '<li>渋谷 次郎 <small>jiro@shibuya</small></li>' in section_of(page, C) and "渋谷 三郎" not in page

    # Concurrent loads at B with an expired access token: one refresh at A, no family revoked.
    async with b.identity.sessions() as s, s.begin():
        await s.execute(update(home_tokens).values(access_expires_at=utcnow() - timedelta(minutes=1)))
    pages = await asyncio.gather(*(browser.http.get(f"{b.base}/me") for _ in range(6)))
    assert all('id="region-tsurugashima" data-state="ok"' in p.text for p in pages)
    async with a.identity.sessions() as s:
        family = (await s.execute(select(oauth_refresh_tokens).where(
            oauth_refresh_tokens.c.client_id == b.base))).all()
    assert len(family) == 2 and len({t.family_id for t in family}) == 1, family  # the first and one rotation
    assert all(t.revoked_at is None for t in family) and sum(t.used_at is None for t in family) == 1

    # Two identity processes at B (each with its own lock) renewing the same session at once: the lease in the
    # database lets one of them refresh; the other waits for it and takes the new token.
    cookie = next(ck for ck in browser.http.cookies.jar if ck.name == "tt_session" and ck.domain.startswith(b.host))
    other = dataclasses.replace(b.identity.regions, _locks={})
    async with b.identity.sessions() as s, s.begin():
        await s.execute(update(home_tokens).values(access_expires_at=utcnow() - timedelta(minutes=1)))
    both = await asyncio.gather(*(r.home_token(ic.SessionIn(session_token=cookie.value))
                                  for r in (b.identity.regions, other)))
    assert both[0].access_token == both[1].access_token and both[0].url == a.base
    async with a.identity.sessions() as s:
        family = (await s.execute(select(oauth_refresh_tokens).where(
            oauth_refresh_tokens.c.client_id == b.base))).all()
    assert len(family) == 3 and all(t.revoked_at is None for t in family), family

    # C's site goes down: A's My Page still comes, with C marked unreachable and the time. (How long A waits for
    # a region that does not answer is the next test's; bench, not tests, say how fast.)
    await cn.stop_gateway()
    r = await browser.http.get(f"{a.base}/me")
    assert r.status_code == 200
    assert 'id="region-shibuya" data-state="unreachable"' in r.text and "応答がありませんでした" in r.text
    assert 'id="region-suginami" data-state="ok"' in r.text
    await cn.start_gateway()

    # A down: B shows its own part and says the home region did not answer.
    await a.stop_gateway()
    r = await browser.http.get(f"{b.base}/me")
    assert r.status_code == 200 and 'id="region-tsurugashima" data-state="unreachable"' in r.text
    assert '<strong id="my-points">40</strong>' in r.text
    await a.start_gateway()

    # Logging out at B drops A's tokens kept with that session, and A revokes the refresh token it gave B (RFC 7009,
    # B's client authenticated through the trust chain): a copy of it is worth nothing at A any more.
    async with b.identity.sessions() as s:
        (held,) = (await s.execute(select(home_tokens.c.refresh_token))).scalars().all()
    page = (await browser.http.get(f"{b.base}/me")).text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    await browser.go("POST", f"{b.base}/logout", data={"csrf": csrf})
    async with b.identity.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(home_tokens))).scalar_one() == 0

    async def revoked_at_a() -> bool:
        async with a.identity.sessions() as s:
            row = (await s.execute(select(oauth_refresh_tokens.c.revoked_at)
                                   .where(oauth_refresh_tokens.c.token_hash == digest(held)))).first()
        return row is not None and row.revoked_at is not None

    assert await wait_for(revoked_at_a), "A did not revoke the refresh token B held for the session"
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{a.base}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": held,
                                                           "client_id": b.base})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

    # Back at B (A's session: no password). Her password changes at home, which revokes the refresh tokens A
    # issued: A refuses B's next refresh, B forgets the tokens, and My Page asks her to log in with her home again.
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": HANAKO})
    assert str(r.url) == f"{b.base}/me" and 'id="region-tsurugashima" data-state="ok"' in r.text
    at_home = await call(a, "identity", ic.EP_LOGIN, ic.LoginIn(login="hanako", password=PW))
    await call(a, "identity", ic.EP_PASSWORD_CHANGE, ic.PasswordChangeIn(
        session_token=at_home["session_token"], current_password=PW, new_password=PW + " again"))
    async with b.identity.sessions() as s, s.begin():
        await s.execute(update(home_tokens).values(access_expires_at=utcnow() - timedelta(minutes=1)))
    r = await browser.http.get(f"{b.base}/me")
    assert r.status_code == 200 and 'id="region-tsurugashima" data-state="refused"' in r.text
    assert "ログインし直す" in r.text and '<strong id="my-points">40</strong>' in r.text
    async with b.identity.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(home_tokens))).scalar_one() == 0
    await browser.aclose()


# ---- refusals --------------------------------------------------------------------------------------------------


async def signed(signer: Node, *, typ: str = ic.PERSON_QUERY_TYP, federation_key: bool = False,
                 **claims: Any) -> str:
    """A query signed with `signer`'s own provider RS256 key (what its identity service signs), or with its
    federation key (which signs its entity configuration only)."""
    async with signer.identity.sessions() as s, s.begin():
        key = await keys.federation_key(s) if federation_key else await keys.active_key(s)
    now = int(time.time())
    body = {"iss": signer.base, "sub": HANAKO, "iat": now, "exp": now + 60, "jti": new_secret(), **claims}
    return jwt.encode({"alg": keys.ALG, "kid": key.kid, "typ": typ}, body, key.key, [keys.ALG])


async def snapshot(node: Node) -> dict[str, Any]:
    async with node.identity.sessions() as s:
        return {t.name: sorted(map(tuple, (await s.execute(select(t))).all()), key=repr)
                for t in (users, query_jtis, sessions, home_tokens, presence)}


async def ask(node: Node, token: str | bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=15) as http:
        return await http.post(f"{node.base}/federation/person-summary", content=token,
                               headers={"Content-Type": "application/jwt"})


def tampered(token: str, **changes: Any) -> str:
    header, payload, sig = token.split(".")
    claims = {**json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))), **changes}
    return f"{header}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{sig}"


async def profiles_settled(node: Node, home: Node) -> None:
    """Until `node` has taken in every identity event of `home` (the link made at login sources them, and their
    profiles then update the linked row a moment later): a snapshot taken before that would see them land."""
    nc_node, nc_home = await nats.connect(node.nats.url), await nats.connect(home.nats.url)
    try:
        js_node, js_home = nc_node.jetstream(), nc_home.jetstream()

        async def caught_up() -> bool:
            want = (await js_home.stream_info(subjects.evt_stream(home.name, "identity"))).state.messages
            have = (await js_node.stream_info(subjects.fed_stream(node.name))).state.messages
            info = await js_node.consumer_info(subjects.fed_stream(node.name), "identity-peer-profiles")
            return have >= want and info.num_pending == 0 and info.num_ack_pending == 0

        assert await wait_for(caught_up), f"{node.name} never took in {home.name}'s identity events"
    finally:
        await nc_node.close()
        await nc_home.close()


async def test_queries_and_tokens_are_refused_unless_they_hold_and_nothing_changes(nodes) -> None:
    anchor, found = nodes
    a, b, cn = found[A], found[B], found[C]
    browser = await log_in_everywhere(a, b, cn)
    await profiles_settled(cn, a)
    before = await snapshot(cn)

    async def refused(token: str | bytes, status: int, words: str) -> None:
        r = await ask(cn, token)
        assert r.status_code == status and words in r.json()["detail"], (r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")

    now = int(time.time())
    await refused(await signed(b, aud=cn.base), 403, "only the person's home node")  # B asks about A's person
    good = await signed(a, aud=cn.base)
    await refused(tampered(good, sub=f"taro@{A}"), 401, "does not verify")
    await refused(await signed(a, aud=cn.base, federation_key=True), 401, "does not verify")  # no provider key
    await refused(await signed(a, aud=cn.base, iat=now - 120, exp=now - 60), 401, "expired")
    await refused(await signed(a, aud=b.base), 403, "meant for another node")
    await refused(await signed(a, aud=cn.base, exp=now + 3600), 400, "60 s at most")
    await refused(await signed(a, aud=cn.base, typ="JWT"), 400, "not a person query")
    await refused(await signed(a, aud=cn.base, sub=f"nobody@{A}"), 404, "nobody known here")
    await refused(b"not a token", 400, "signed query")
    await refused(b"x" * 9000, 413, "too large")
    assert await snapshot(cn) == before

    # A good query is answered once; the same jti again is refused.
    r = await ask(cn, good)
    assert r.status_code == 200 and r.json()["global_handle"] == HANAKO and r.json()["node"] == C
    after_one = await snapshot(cn)
    assert len(after_one["query_jtis"]) == 1
    await refused(good, 401, "answered already")
    assert await snapshot(cn) == after_one

    # A third-party client of A asking for `regions` gets invalid_scope; one an admin allowed it gets it. A bearer
    # token without the scope is refused by /api/v1/me/regions, one with it is served.
    clients = {}
    for client_id, scope in (("rp-plain", "openid profile"), ("rp-regions", "openid profile regions")):
        clients[client_id] = await call(a, "identity", ic.EP_CLIENT_ADD, ic.ClientAddIn(
            client_id=client_id, redirect_uris=["https://rp.example.org/cb"], scope=scope))
    verifier = "v" * 50

    async def authorize(client_id: str, scope: str) -> dict[str, list[str]]:
        r = await browser.http.get(f"{a.base}/oauth/authorize", params={
            "response_type": "code", "client_id": client_id, "redirect_uri": "https://rp.example.org/cb",
            "scope": scope, "state": "s", "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256"})
        assert r.status_code == 302, r.text
        return parse_qs(urlsplit(r.headers["location"]).query)

    async def access_token(client_id: str, scope: str) -> str:
        code = (await authorize(client_id, scope))["code"][0]
        r = await browser.http.post(f"{a.base}/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "https://rp.example.org/cb",
            "code_verifier": verifier}, auth=(client_id, clients[client_id]["client_secret"]))
        return r.json()["access_token"]

    async with a.identity.sessions() as s:
        codes_before = (await s.execute(select(func.count()).select_from(presence))).scalar_one()
    assert (await authorize("rp-plain", "openid regions"))["error"] == ["invalid_scope"]
    plain = await access_token("rp-plain", "openid profile")
    allowed = await access_token("rp-regions", "openid regions")
    async with httpx.AsyncClient(timeout=20) as http:
        for token, status in ((plain, 403), ("x" * 40, 401), (allowed, 200)):
            r = await http.get(f"{a.base}/api/v1/me/regions", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == status, r.text
        assert {v["node"] for v in r.json()["regions"]} == {A, B, C}
        # B's token at A is no token at C (only the home node serves a person's regions)
        r = await http.get(f"{cn.base}/api/v1/me/regions", headers={"Authorization": f"Bearer {allowed}"})
        assert r.status_code == 401
    async with a.identity.sessions() as s:  # a third-party client is no region
        assert (await s.execute(select(func.count()).select_from(presence))).scalar_one() == codes_before

    # C's site accepts connections and never answers: A's answer still comes when its wait is over, C unreachable
    # and B (which answers) ok. The wait is shorter than the browser's 60 s but leaves B time on a busy machine.
    a.app.state.settings.regions_wait = a.identity.regions.resolve_timeout = 8.0
    await cn.stop_gateway()

    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await release.wait()  # until A has answered: only A's own deadline can end its wait
        writer.close()

    hang = await asyncio.start_server(silent, cn.host, cn.port)
    r = await browser.http.get(f"{a.base}/api/v1/me/regions")
    assert r.status_code == 200 and region(r.json()["regions"], C)["state"] == "unreachable", r.text
    assert region(r.json()["regions"], B)["state"] == "ok"
    release.set()
    hang.close()
    await cn.start_gateway()

    # The anchor removes C: C is no longer asked (shown as removed) and its queries are refused at B.
    assert anchor.remove(cn.base)
    r = await browser.http.get(f"{a.base}/api/v1/me/regions")
    assert region(r.json()["regions"], C)["state"] == "removed" and region(r.json()["regions"], B)["state"] == "ok"
    before_b = await snapshot(b)
    r = await ask(b, await signed(cn, aud=b.base, sub=f"someone@{C}"))
    assert r.status_code == 403 and "not trusted" in r.json()["detail"]
    assert await snapshot(b) == before_b
    page = (await browser.http.get(f"{a.base}/me")).text
    assert 'id="region-shibuya" data-state="removed"' in page
    await browser.aclose()


async def test_a_member_node_without_a_login_there_is_never_asked(nodes) -> None:
    """Presence comes from codes issued to member nodes only: a person who never logged in at C is not asked
    about at C, and C learns nothing of her."""
    _anchor, found = nodes
    a, b, cn = found[A], found[B], found[C]
    browser = Browser()
    r = await browser.form(f"{b.base}/login", "/login/federated", {"target": HANAKO})
    await browser.form(str(r.url), "/login", {"login": "hanako", "password": PW})
    before = await snapshot(cn)
    r = await browser.http.get(f"{a.base}/api/v1/me/regions")
    assert [v["node"] for v in r.json()["regions"]] == [A, B]
    assert await snapshot(cn) == before
    # a session at B is not a way to ask B for the regions of a person of A
    r = await browser.http.get(f"{b.base}/api/v1/me/regions")
    assert r.status_code == 403 and "home node" in r.json()["detail"]
    await browser.aclose()

    # She leaves her home node: A forgets where she took part; B, hearing UserDeleted, unlinks her and drops the
    # tokens A had issued to it for her.
    async def count(node: Node, table: Any) -> int:
        async with node.identity.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table))).scalar_one()

    assert await count(b, home_tokens) == 1 and await count(a, presence) == 1
    at_home = await call(a, "identity", ic.EP_LOGIN, ic.LoginIn(login="hanako", password=PW))
    exported = await call(a, "identity", ic.EP_EXPORT, ic.SessionIn(session_token=at_home["session_token"]))
    assert [(r["node"], r["url"]) for r in exported["regions"]] == [(B, b.base)]  # what A keeps, in her export
    await call(a, "identity", ic.EP_USER_REMOVE, ic.UserRef(handle="hanako"))
    assert await count(a, presence) == 0

    async def unlinked() -> bool:
        return await count(b, home_tokens) == 0 and not await b_has_her()

    async def b_has_her() -> bool:
        async with b.identity.sessions() as s:
            return (await s.execute(select(users.c.id).where(users.c.handle == HANAKO))).first() is not None

    assert await wait_for(unlinked, timeout=30), "B kept her tokens after she was deleted at home"
