"""The community SNS pages over HTTP (the gateway app in-process, httpx), with the real identity and sns services on
a real nats-server: public reading, who may write, refusals shown on the form's page with the service's status and
nothing changed, CSRF on every form, user text escaped, friend requests only to people known at this node, and a
person of another node logged in here (a linked profile and a session, as a cross-node login leaves them)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import func, select

from identity.app import IdentityService
from services.sns.app import SnsService
from services.sns.models import communities, friend_requests, posts
from tests.projects.test_projects_portal import csrf_of, post
from tests.support.nodes import add_people, gateway_app, started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.settings import ServiceSettings

NODE = "tsurugashima"
BASE = "http://portal.test"
PW = "correct horse battery"


class Portal:
    def __init__(self, app: Any, sns: SnsService, identity: IdentityService) -> None:
        self.app, self.sns, self.identity = app, sns, identity

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False)

    async def count(self, table: Any) -> int:
        async with self.sns.sessions() as s:
            return (await s.execute(select(func.count()).select_from(table))).scalar_one()


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[Portal]:
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=BASE))
    sns = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url,
                                     data_dir=str(tmp_path / "sns"), public_url=BASE))
    async with started(ident, sns):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, [(handle, f"{handle} さん", None) for handle in ("hanako", "taro")])
        await nc.close()
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=BASE)
        async with app.router.lifespan_context(app):
            yield Portal(app, sns, ident)


async def logged_in(portal: Portal, handle: str) -> httpx.AsyncClient:
    client = portal.client()
    r = await post(client, "/login", {"login": handle, "password": PW, "next": "/communities"})
    assert r.status_code == 303 and r.headers["location"] == "/communities", r.text
    return client


async def test_communities_posts_refusals_and_escaping(portal: Portal) -> None:
    hanako = await logged_in(portal, "hanako")
    # A refusal shows the form again with the reason and the status; nothing is stored.
    r = await post(hanako, "/communities", {"name": "x", "description": ""}, form_page="/communities")
    assert r.status_code == 400 and "categories" in r.text and 'value="x"' in r.text
    assert await portal.count(communities) == 0
    page = await hanako.get("/communities")
    r = await hanako.post("/communities", data={"csrf": csrf_of(page), "name": "<b>菜園</b>の会",
                                                "description": "<script>alert(1)</script>",
                                                "categories": ["npo-3", "pib-19"]})
    assert r.status_code == 303
    cid = r.headers["location"].rsplit("/", 1)[1]
    r = await post(hanako, "/communities", {"name": "<B>菜園</B>の会", "categories": "npo-1"},
                   form_page="/communities")
    assert r.status_code == 409 and "同じ名前" in r.text and await portal.count(communities) == 1

    visitor = portal.client()
    about = await visitor.get(f"/communities/{cid}")
    assert about.status_code == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in about.text
    assert "<script>alert(1)" not in about.text and "&lt;b&gt;菜園&lt;/b&gt;の会" in about.text
    assert 'id="post-form"' not in about.text and "ログイン" in about.text
    listed = await visitor.get("/communities?category=pib-19&q=菜園")
    assert f"/communities/{cid}" in listed.text
    assert f"/communities/{cid}" not in (await visitor.get("/communities?category=npo-1")).text
    assert (await visitor.get("/communities/not-an-id")).status_code == 404

    # A signed-in non-member: joins by the button; before that, a crafted post is refused (403) and stores nothing.
    taro = await logged_in(portal, "taro")
    page = await taro.get(f"/communities/{cid}")
    assert 'id="join"' in page.text and 'id="post-form"' not in page.text
    r = await taro.post(f"/communities/{cid}/posts", data={"csrf": csrf_of(page), "title": "t", "body": "b"})
    assert r.status_code == 403 and "メンバー" in r.text and await portal.count(posts) == 0
    r = await taro.post(f"/communities/{cid}/join", data={})  # no CSRF token
    assert r.status_code == 403 and "フォーム" in r.text
    r = await post(taro, f"/communities/{cid}/join", {}, form_page=f"/communities/{cid}")
    assert r.status_code == 303
    r = await post(taro, f"/communities/{cid}/posts", {"title": "はじめまして", "body": "<i>よろしく</i>"},
                   form_page=f"/communities/{cid}")
    assert r.status_code == 303
    post_url = r.headers["location"]
    r = await post(taro, f"/communities/{cid}/posts", {"title": "", "body": "本文だけ"},
                   form_page=f"/communities/{cid}")
    assert r.status_code == 400 and "本文だけ" in r.text and await portal.count(posts) == 1
    r = await post(taro, f"{post_url}/comments", {"body": "自分でコメント"}, form_page=post_url)
    assert r.status_code == 303
    shown = await visitor.get(post_url)
    assert "&lt;i&gt;よろしく&lt;/i&gt;" in shown.text and "自分でコメント" in shown.text

    # A member cannot hide; the leader can, and the reason is kept.
    r = await post(taro, f"{post_url}/hide", {"reason": "x"}, form_page=post_url)
    assert r.status_code == 403
    r = await post(hanako, f"{post_url}/hide", {"reason": "テスト"}, form_page=post_url)
    assert r.status_code == 303
    shown = await visitor.get(post_url)
    assert "リーダーにより非表示" in shown.text and "よろしく" not in shown.text
    # The leader cannot leave without handing over.
    r = await post(hanako, f"/communities/{cid}/leave", {}, form_page=f"/communities/{cid}")
    assert r.status_code == 409 and "引き継" in r.text


async def test_friend_requests_need_a_person_known_here(portal: Portal) -> None:
    hanako = await logged_in(portal, "hanako")
    assert (await portal.client().get("/friends")).headers["location"].startswith("/login")
    for handle, status in (("nobody@tsurugashima", 404), ("someone@elsewhere", 404), ("not a handle", 400),
                           (f"hanako@{NODE}", 400)):
        r = await post(hanako, "/friends/request", {"handle": handle}, form_page="/friends")
        assert r.status_code == status, (handle, r.status_code)
    assert await portal.count(friend_requests) == 0
    r = await post(hanako, "/friends/request", {"handle": f"TARO@{NODE}"}, form_page="/friends")
    assert r.status_code == 303 and await portal.count(friend_requests) == 1
    assert "taro さん" in (await hanako.get("/friends")).text
    taro = await logged_in(portal, "taro")
    page = await taro.get("/friends")
    rid = re.search(r'action="/friends/([0-9a-f-]{36})/accept"', page.text).group(1)  # type: ignore[union-attr]
    # Hanako cannot accept the request she sent (it is addressed to Taro).
    r = await post(hanako, f"/friends/{rid}/accept", {}, form_page="/friends")
    assert r.status_code == 403 and await portal.count(friend_requests) == 1
    r = await taro.post(f"/friends/{rid}/accept", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    assert "hanako さん" in (await taro.get("/friends")).text


async def test_leader_tools_hand_over_remove_and_close(portal: Portal) -> None:
    hanako = await logged_in(portal, "hanako")
    r = await post(hanako, "/communities", {"name": "防災の会", "categories": "pib-5"}, form_page="/communities")
    cid = r.headers["location"].rsplit("/", 1)[1]
    taro = await logged_in(portal, "taro")
    assert (await post(taro, f"/communities/{cid}/join", {}, form_page=f"/communities/{cid}")).status_code == 303
    # Taro (a member) sees no leader's tools and a crafted post of one is refused.
    page = await taro.get(f"/communities/{cid}")
    assert 'id="close"' not in page.text and "/hand_over" not in page.text
    r = await taro.post(f"/communities/{cid}/close", data={"csrf": csrf_of(page), "confirmed": "yes"})
    assert r.status_code == 403 and "リーダー" in r.text
    page = await hanako.get(f"/communities/{cid}")
    assert 'id="close"' in page.text and "/hand_over" in page.text
    r = await post(hanako, f"/communities/{cid}/hand_over", {"member": f"taro@{NODE}"}, form_page=f"/communities/{cid}")
    assert r.status_code == 303
    page = await taro.get(f"/communities/{cid}")
    assert "あなたはこのコミュニティのリーダーです" in page.text and 'id="close"' in page.text
    r = await post(taro, f"/communities/{cid}/remove", {"member": f"hanako@{NODE}"}, form_page=f"/communities/{cid}")
    assert r.status_code == 303 and "1人" in (await taro.get(f"/communities/{cid}")).text
    # Closing is asked first: a post without the confirmation goes to the page that says what closing means.
    r = await post(taro, f"/communities/{cid}/close", {}, form_page=f"/communities/{cid}")
    assert r.status_code == 303 and r.headers["location"] == f"/communities/{cid}/close"
    ask = await taro.get(f"/communities/{cid}/close")
    assert "再開できません" in ask.text and 'name="confirmed" value="yes"' in ask.text and "防災の会" in ask.text
    assert "終了（閲覧のみ）" not in (await taro.get(f"/communities/{cid}")).text  # nothing done yet
    r = await post(taro, f"/communities/{cid}/close", {"confirmed": "yes"}, form_page=f"/communities/{cid}/close")
    assert r.status_code == 303 and r.headers["location"].endswith("saved=1")
    page = await hanako.get(f"/communities/{cid}")
    assert "終了（閲覧のみ）" in page.text and 'id="join"' not in page.text and 'id="post-form"' not in page.text
    r = await hanako.post(f"/communities/{cid}/join", data={"csrf": csrf_of(page)})
    assert r.status_code == 409 and "終了" in r.text


async def test_deleting_a_post_is_asked_first_and_only_its_author_may(portal: Portal) -> None:
    hanako = await logged_in(portal, "hanako")
    r = await post(hanako, "/communities", {"name": "図書館まつりの会", "categories": "npo-2"},
                   form_page="/communities")
    cid = r.headers["location"].rsplit("/", 1)[1]
    r = await post(hanako, f"/communities/{cid}/posts", {"title": "しおりづくり", "body": "材料を持ち寄ります"},
                   form_page=f"/communities/{cid}")
    post_url = r.headers["location"]
    page = await hanako.get(post_url)
    assert f'href="{post_url}/delete"' in page.text  # a link to the question, not a button that deletes
    r = await post(hanako, f"{post_url}/delete", {}, form_page=post_url)  # an old form, or a stray post
    assert r.status_code == 303 and r.headers["location"] == f"{post_url}/delete" and await portal.count(posts) == 1
    ask = await hanako.get(f"{post_url}/delete")
    assert ask.status_code == 200 and "しおりづくり" in ask.text and "元に戻せません" in ask.text
    assert f'action="{post_url}/delete"' in ask.text and f'href="{post_url}"' in ask.text  # "no" goes back
    taro = await logged_in(portal, "taro")
    r = await post(taro, f"{post_url}/delete", {"confirmed": "yes"}, form_page=f"/communities/{cid}")
    assert r.status_code == 403 and await portal.count(posts) == 1  # not his post
    r = await post(hanako, f"{post_url}/delete", {"confirmed": "yes"}, form_page=f"{post_url}/delete")
    assert r.status_code == 303 and await portal.count(posts) == 0
    assert (await hanako.get(f"{post_url}/delete")).status_code == 404


async def linked_remote_person(portal: Portal, handle: str, name: str) -> httpx.AsyncClient:
    """A person of another node, as a finished cross-node login leaves them here: a linked local profile (handle
    name@home, no password, no e-mail) and a login session at this node (identity's own new_session)."""
    from identity.accounts import new_session
    from identity.models import users
    from towntip.kernel.bus.envelope import new_id, utcnow

    ident = portal.identity
    now = utcnow()
    home = handle.split("@", 1)[1]
    async with ident.sessions() as s, s.begin():
        await s.execute(users.insert().values(
            id=new_id(), handle=handle, display_name=name, email=None, email_verified=False, password_hash="!",
            district="", interests=[], lang="ja", failed_logins=0, locked_until=None, password_changed_at=now,
            created_at=now, updated_at=now, home_node=home, home_issuer=f"https://{home}.example.jp",
            home_sub=new_id()))
        row = (await s.execute(select(users).where(users.c.handle == handle))).one()
        got = await new_session(s, node=NODE, row=row, client_ip="127.0.0.1", user_agent="test")
    client = portal.client()
    client.cookies.set("tt_session", got.session_token)
    return client


async def test_a_person_of_another_node_logged_in_here_opens_a_community_and_is_befriended(portal: Portal) -> None:
    aki = await linked_remote_person(portal, "aki@suginami", "杉並 亜希")
    page = await aki.get("/communities")
    assert page.status_code == 200 and 'id="open-form"' in page.text
    r = await post(aki, "/communities", {"name": "越境サイクリング", "categories": "npo-2"}, form_page="/communities")
    assert r.status_code == 303
    about = await portal.client().get(r.headers["location"])
    assert "杉並 亜希" in about.text and "aki@suginami" in about.text
    hanako = await logged_in(portal, "hanako")
    r = await post(hanako, "/friends/request", {"handle": "aki@suginami"}, form_page="/friends")
    assert r.status_code == 303
    page = await aki.get("/friends")
    assert "hanako さん" in page.text
    rid = re.search(r'action="/friends/([0-9a-f-]{36})/accept"', page.text).group(1)  # type: ignore[union-attr]
    assert (await aki.post(f"/friends/{rid}/accept", data={"csrf": csrf_of(page)})).status_code == 303
    assert "杉並 亜希" in (await hanako.get("/friends")).text


async def test_identity_answers_a_public_profile_by_handle_only(portal: Portal, nats_server) -> None:
    """people.profile (what the gateway asks before a friend request): name and handle, never the user id, never a
    search by e-mail; the staff's people.lookup stays staff-only."""
    from towntip.kernel import errors
    from towntip.kernel.contracts.actor import Actor

    nc = await nats.connect(nats_server.url)
    try:
        def ask(endpoint: str, payload: dict[str, Any]) -> Any:
            return rpc.call(nc, subjects.svc(NODE, ic.SERVICE, endpoint), payload, timeout=15)
        got = await ask(ic.EP_PEOPLE_PROFILE, {"handle": f"taro@{NODE}"})
        assert got == {"global_handle": f"taro@{NODE}", "display_name": "taro さん"}
        with pytest.raises(errors.BadRequest):
            await ask(ic.EP_PEOPLE_PROFILE, {"handle": "taro@example.jp"})
        with pytest.raises(errors.NotFound):
            await ask(ic.EP_PEOPLE_PROFILE, {"handle": "taro@suginami"})
        citizen = Actor(user_id="user-citizen-1", global_handle=f"hanako@{NODE}", display_name="花子")
        with pytest.raises(errors.Forbidden):
            await ask(ic.EP_PEOPLE_LOOKUP, {"actor": citizen.model_dump(mode="json"), "query": f"taro@{NODE}"})
    finally:
        await nc.close()


async def test_friends_found_by_name_by_id_alone_and_by_qr_code(portal: Portal) -> None:
    """Friend search finds only people who chose to be findable (a box on their profile page); a bare ID means a
    person of this town; the QR code a person shows leads to a confirmation page, and only its button sends."""
    hanako, taro = await logged_in(portal, "hanako"), await logged_in(portal, "taro")
    r = await hanako.get("/friends", params={"q": "taro"})
    assert r.status_code == 200 and "見つかりませんでした" in r.text  # taro has not chosen to be findable
    form = await taro.get("/settings/profile")
    assert 'name="findable"' in form.text
    r = await taro.post("/settings/profile", data={"csrf": csrf_of(form), "display_name": "taro さん",
                                                   "nickname": "たろう", "lang": "ja", "findable": "1"})
    assert r.status_code == 200 and 'name="findable" value="1" checked' in r.text
    for query in ("taro", "たろう"):
        page = await hanako.get("/friends", params={"q": query})
        assert f'name="handle" value="taro@{NODE}"' in page.text, query
    page = await hanako.get("/friends", params={"q": "t"})
    assert "2文字以上" in page.text
    r = await hanako.get("/friends", params={"q": "hanako"})
    assert f'value="hanako@{NODE}"' not in r.text  # not findable; and never oneself

    # The QR code: an SVG of the request address; opening it shows who, and sends nothing by itself.
    qr = await taro.get("/friends/qr")
    assert qr.status_code == 200 and "<svg" in qr.text and f"/friends/add?h=taro%40{NODE}" in qr.text
    add = await hanako.get("/friends/add", params={"h": f"taro@{NODE}"})
    assert add.status_code == 200 and "taro さん" in add.text and await portal.count(friend_requests) == 0
    assert (await hanako.get("/friends/add", params={"h": "nobody@x"})).status_code == 404
    r = await hanako.post("/friends/request", data={"csrf": csrf_of(add), "handle": "taro"})  # the bare ID
    assert r.status_code == 303 and await portal.count(friend_requests) == 1
