"""Accounts at a home node, over the bus, on SQLite and PostgreSQL, with a real SMTP server for the mail.

The identity service runs in this process (IdentityService) against a real nats-server; every call goes through
NATS as the gateway's would (svc.<node>.identity.*).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from sqlalchemy import select, update

from identity import passwords
from identity.app import IdentityService
from identity.models import sessions as sessions_table
from identity.models import users
from tests.support.smtp_helpers import Smtp
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import NodeSettings, ServiceSettings
from towntip.kernel.town import town_of

NODE = "testnode"
PW = "correct horse battery"


class Node:
    def __init__(self, nc: nats.NATS, svc: IdentityService, smtp: Smtp) -> None:
        self.nc, self.svc, self.smtp = nc, svc, smtp

    async def call(self, endpoint: str, payload: Any = None) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=15)

    async def mail_to(self, address: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            got = [m for m in self.smtp.handler.parsed() if m["To"] == address]
            if len(got) >= count:
                return got
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail to {address} within {timeout}s")

    async def link_token(self, address: str, kind: str, count: int = 1) -> str:
        mails = await self.mail_to(address, count)
        body = mails[-1].get_body(("plain",)).get_content()
        m = re.search(rf"/{kind}\?token=([A-Za-z0-9_-]+)", body)
        assert m, body
        return m.group(1)

    async def rows(self, table: Any) -> list[Any]:
        async with self.svc.sessions() as s:
            return list((await s.execute(select(table))).all())


@pytest.fixture
async def node(nats_server, database, tmp_path, smtp) -> AsyncIterator[Node]:
    url, schema = database
    settings = ServiceSettings(
        service="identity", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path), database_url=url,
        database_schema=schema or "", public_url="https://tsuru.example.jp",
    )
    smtp.start()
    svc = IdentityService(settings, smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc, smtp)
    finally:
        await nc.close()
        await svc.stop()


async def register(node: Node, handle: str = "hanako", email: str = "hanako@example.jp") -> dict[str, Any]:
    return await node.call(c.EP_REGISTER, c.RegisterIn(handle=handle, display_name="山田 花子", email=email,
                                                       password=PW))


async def login(node: Node, login: str = "hanako", password: str = PW) -> dict[str, Any]:
    return await node.call(c.EP_LOGIN, c.LoginIn(login=login, password=password, client_ip="203.0.113.7"))


async def test_register_verify_login_profile_logout(node):
    reg = await register(node)
    assert reg["user"]["global_handle"] == f"hanako@{NODE}" and reg["user"]["email_verified"] is False
    token = await node.link_token("hanako@example.jp", "verify-email")
    mail = (await node.mail_to("hanako@example.jp"))[0]
    assert "メールアドレスの確認" in mail["Subject"] and "https://tsuru.example.jp/verify-email?token=" in \
        mail.get_body(("plain",)).get_content()
    user = await node.call(c.EP_VERIFY_EMAIL, c.TokenIn(token=token))
    assert user["email_verified"] is True
    with pytest.raises(errors.BadRequest):  # a link works once
        await node.call(c.EP_VERIFY_EMAIL, c.TokenIn(token=token))

    sess = await login(node)
    tok = sess["session_token"]
    assert len(tok) >= 40 and sess["user"]["handle"] == "hanako"
    stored = await node.rows(sessions_table)
    assert [r.token_hash for r in stored] != [tok] and len(stored[0].token_hash) == 64  # only its hash is kept
    assert (await login(node, "HANAKO@example.jp"))["user"]["handle"] == "hanako"  # by e-mail, any case

    me = await node.call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(
        session_token=tok, nickname="はなちゃん", district="鶴ヶ島市 脚折", interests=["npo-3", "pib-2", "npo-3"]))
    assert me["nickname"] == "はなちゃん" and me["interests"] == ["npo-3", "pib-2"]
    with pytest.raises(errors.BadRequest, match="unknown categories"):
        await node.call(c.EP_PROFILE_UPDATE, {"session_token": tok, "interests": ["npo-99"]})
    assert (await node.call(c.EP_SESSION, c.SessionIn(session_token=tok)))["user"]["nickname"] == "はなちゃん"

    await node.call(c.EP_LOGOUT, c.SessionIn(session_token=tok))
    with pytest.raises(errors.Unauthorized):
        await node.call(c.EP_SESSION, c.SessionIn(session_token=tok))


async def test_bad_registrations_are_refused_and_change_nothing(node):
    await register(node)
    before = await node.rows(users)
    for payload, kind in [
        ({"handle": "hanako", "display_name": "x", "email": "other@example.jp", "password": PW}, errors.Conflict),
        ({"handle": "other", "display_name": "x", "email": "Hanako@Example.JP", "password": PW}, errors.Conflict),
        ({"handle": "Bad Handle", "display_name": "x", "email": "b@example.jp", "password": PW}, errors.BadRequest),
        ({"handle": "short", "display_name": "x", "email": "s@example.jp", "password": "123"}, errors.BadRequest),
        ({"handle": "nomail", "display_name": "x", "email": "not-an-address", "password": PW}, errors.BadRequest),
        ({"handle": "extra", "display_name": "x", "email": "e@example.jp", "password": PW, "admin": True},
         errors.BadRequest),
    ]:
        with pytest.raises(kind):
            await node.call(c.EP_REGISTER, payload)
    assert await node.rows(users) == before


async def test_wrong_passwords_lock_the_account_and_say_the_same_for_unknown_handles(node):
    await register(node)
    for _ in range(5):
        with pytest.raises(errors.Unauthorized) as wrong:
            await login(node, password="wrong password")
    with pytest.raises(errors.Unauthorized) as unknown:
        await login(node, login="nobody", password="wrong password")
    assert wrong.value.reason == unknown.value.reason  # no account enumeration
    with pytest.raises(errors.TooManyRequests, match="locked"):
        await login(node)  # even the right password waits out the lockout
    assert not await node.rows(sessions_table)


async def test_password_change_ends_other_sessions(node):
    await register(node)
    a = (await login(node))["session_token"]
    b = (await login(node))["session_token"]
    with pytest.raises(errors.Unauthorized):
        await node.call(c.EP_PASSWORD_CHANGE, c.PasswordChangeIn(
            session_token=a, current_password="not it at all", new_password="a new long password"))
    await node.call(c.EP_PASSWORD_CHANGE, c.PasswordChangeIn(
        session_token=a, current_password=PW, new_password="a new long password"))
    await node.call(c.EP_SESSION, c.SessionIn(session_token=a))
    with pytest.raises(errors.Unauthorized):
        await node.call(c.EP_SESSION, c.SessionIn(session_token=b))
    with pytest.raises(errors.Unauthorized):
        await login(node)
    assert (await login(node, password="a new long password"))["session_token"]


async def test_password_reset_by_mail(node):
    await register(node)
    old = (await login(node))["session_token"]
    for address in ("hanako@example.jp", "nobody@example.jp"):  # the same answer for an unknown address
        done = await node.call(c.EP_RESET_REQUEST, c.EmailIn(email=address))
        assert done["ok"] is True
    token = await node.link_token("hanako@example.jp", "password/reset", count=2)  # verification, then reset
    with pytest.raises(errors.BadRequest):
        await node.call(c.EP_RESET, {"token": token, "new_password": "short"})
    await node.call(c.EP_RESET, c.ResetIn(token=token, new_password="reset long password"))
    with pytest.raises(errors.BadRequest):  # once only
        await node.call(c.EP_RESET, c.ResetIn(token=token, new_password="another long password"))
    with pytest.raises(errors.Unauthorized):
        await node.call(c.EP_SESSION, c.SessionIn(session_token=old))
    sess = await login(node, password="reset long password")
    assert sess["user"]["email_verified"] is True
    assert not [m for m in node.smtp.handler.parsed() if m["To"] == "nobody@example.jp"]


async def test_export_and_delete(node):
    await register(node)
    tok = (await login(node))["session_token"]
    data = await node.call(c.EP_EXPORT, c.SessionIn(session_token=tok))
    assert data["account"]["handle"] == "hanako" and data["node"] == NODE
    assert "password_hash" not in str(data) and "$argon2" not in str(data)
    assert data["sessions"] and data["sessions"][0]["client_ip"] == "203.0.113.7"
    with pytest.raises(errors.Unauthorized):
        await node.call(c.EP_DELETE, c.DeleteIn(session_token=tok, password="not the password"))
    await node.call(c.EP_DELETE, c.DeleteIn(session_token=tok, password=PW))
    assert not await node.rows(users) and not await node.rows(sessions_table)
    with pytest.raises(errors.Unauthorized):
        await login(node)


async def test_admin_users_and_clients(node):
    u = await node.call(c.EP_USER_ADD, c.UserAddIn(handle="taro", email="taro@example.jp", password=PW))
    assert u["email_verified"] is True and u["display_name"] == "taro"
    assert [x["handle"] for x in (await node.call(c.EP_USER_LIST))["users"]] == ["taro"]
    cl = await node.call(c.EP_CLIENT_ADD, c.ClientAddIn(client_id="portal-b", redirect_uris=["https://b.example/cb"]))
    assert cl["public"] is False and len(cl["client_secret"]) >= 40
    listed = (await node.call(c.EP_CLIENT_LIST))["clients"]
    assert [x["client_id"] for x in listed] == ["portal-b"] and listed[0]["client_secret"] == ""
    pub = await node.call(c.EP_CLIENT_ADD, c.ClientAddIn(client_id="spa", redirect_uris=["http://localhost/cb"],
                                                         public=True))
    assert pub["public"] is True and pub["client_secret"] == ""
    with pytest.raises(errors.Conflict):
        await node.call(c.EP_CLIENT_ADD, c.ClientAddIn(client_id="spa", redirect_uris=["http://localhost/cb"]))
    with pytest.raises(errors.BadRequest):
        await node.call(c.EP_CLIENT_ADD, {"client_id": "bad", "redirect_uris": ["javascript:alert(1)"]})
    await node.call(c.EP_CLIENT_REMOVE, c.ClientRef(client_id="spa"))
    with pytest.raises(errors.NotFound):
        await node.call(c.EP_CLIENT_REMOVE, c.ClientRef(client_id="spa"))
    await node.call(c.EP_USER_REMOVE, c.UserRef(handle="taro"))
    with pytest.raises(errors.NotFound):
        await node.call(c.EP_USER_REMOVE, c.UserRef(handle="taro"))


async def test_concurrent_wrong_guesses_all_count(node):
    """Logins are served concurrently (one Argon2id check per request, in threads); the failure count is atomic."""
    await register(node)
    results = await asyncio.gather(*(login(node, password=f"wrong password {i}") for i in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, errors.Unauthorized) for r in results), results
    with pytest.raises(errors.TooManyRequests):
        await login(node)


async def test_a_right_password_clears_the_failures_and_a_clean_login_writes_only_its_session(node):
    """Four wrong guesses, then the right password: the count starts again (four more do not lock); a login with
    nothing to clear leaves the account's row as it was and adds one session."""
    await register(node)
    for _ in range(4):
        with pytest.raises(errors.Unauthorized):
            await login(node, password="wrong password")
    assert (await node.rows(users))[0].failed_logins == 4
    await login(node)
    assert (await node.rows(users))[0].failed_logins == 0
    for _ in range(4):
        with pytest.raises(errors.Unauthorized):
            await login(node, password="wrong password")
    await login(node)  # not locked: the count was cleared
    before = await node.rows(users)
    assert before[0].failed_logins == 0 and before[0].locked_until is None
    sessions_before = len(await node.rows(sessions_table))
    await login(node)
    assert await node.rows(users) == before and len(await node.rows(sessions_table)) == sessions_before + 1


async def test_password_hashing_runs_below_the_event_loop_priority() -> None:
    """Argon2id runs in threads at nice +10 (Linux): a login flood leaves the loop and the node's other processes
    their CPU. The check still gives the right answers there."""
    import os
    import threading

    stored = await passwords.hash_password(PW)
    assert await passwords.verify_password(stored, PW) and not await passwords.verify_password(stored, "wrong")
    nice = await passwords._hashing(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert nice == os.getpriority(os.PRIO_PROCESS, 0) + passwords.HASHING_NICE or nice == 19


async def test_passwords_are_normalised_and_hashes_of_the_text_as_typed_still_work(node):
    """NFKC (NIST SP 800-63B): a password chosen with full-width characters (a Japanese keyboard's 全角) logs in
    typed half-width and the other way round; an account whose hash was made of the text as typed, before passwords
    were normalised, still logs in with that text, and its hash is then made again of the normalised form."""
    wide = "ｃｏｒｒｅｃｔ　ｈｏｒｓｅ　ｂａｔｔｅｒｙ"  # PW typed full-width, with 全角 spaces
    assert passwords.normalise(wide) == PW
    await node.call(c.EP_REGISTER, c.RegisterIn(handle="hanako", display_name="山田 花子", email="hanako@example.jp",
                                                password=wide))
    await login(node, password=PW)
    await login(node, password=wide)
    with pytest.raises(errors.Unauthorized):
        await login(node, password=PW.upper())
    legacy = passwords.hash_sync(wide)  # what the node stored before: the typed text itself
    async with node.svc.sessions() as s, s.begin():
        await s.execute(update(users).values(password_hash=legacy))
    await login(node, password=wide)
    stored = (await node.rows(users))[0].password_hash
    assert stored != legacy and passwords.verify_sync(stored, PW)  # made again, of the normalised form
    await login(node, password=PW)


async def test_people_find_each_other_by_name_only_when_they_chose_to(node):
    """Friend search: findable people of this node by a part of their display name or nickname; nobody is findable
    until they say so; LIKE's wildcards are taken literally; a query shorter than two characters is refused."""
    for handle, name in (("hanako", "山田 花子"), ("taro", "山田 太郎"), ("jiro", "Jiro Yamada"), ("pct", "100% 本気")):
        await node.call(c.EP_USER_ADD, c.UserAddIn(handle=handle, display_name=name, email=f"{handle}@example.jp",
                                                   password=PW))

    async def search(query: str) -> list[str]:
        found = await node.call(c.EP_PEOPLE_SEARCH, c.PeopleSearchIn(query=query))
        return [p["global_handle"] for p in found["people"]]

    assert await search("山田") == []  # nobody chose to be findable yet
    for handle in ("hanako", "jiro", "pct"):
        tok = (await login(node, handle))["session_token"]
        nickname = "はなちゃん" if handle == "hanako" else None
        me = await node.call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=tok, findable=True,
                                                                    nickname=nickname))
        assert me["findable"] is True
    assert await search("山田") == [f"hanako@{NODE}"]  # taro is 山田 too, but did not choose it
    assert await search("はなちゃ") == [f"hanako@{NODE}"]  # by nickname
    assert await search("YAMADA") == await search("ｙａｍａｄａ") == [f"jiro@{NODE}"]  # case and width alike
    assert await search("0%") == [f"pct@{NODE}"] and await search("%%") == [] and await search("_a") == []
    with pytest.raises(errors.BadRequest):
        await node.call(c.EP_PEOPLE_SEARCH, {"query": " 山 "})
    tok = (await login(node, "jiro"))["session_token"]
    await node.call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=tok, findable=False))
    assert await search("yamada") == []


async def test_the_district_is_one_of_the_towns_when_the_node_lists_them(nats_server, database, tmp_path, smtp):
    """A node that lists its districts (TOWNTIP_DISTRICTS; the demo's Tsurugashima: its 小学校区) takes only one of
    them, or none; anything else is refused with a code and changes nothing."""
    assert "杉下小学校区" in town_of(NodeSettings(node_id="tsurugashima")).districts
    url, schema = database
    settings = ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path),
                               database_url=url, database_schema=schema or "", public_url="https://tsuru.example.jp",
                               districts="北地区|南地区")
    smtp.start()
    svc = IdentityService(settings, smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    await svc.start()
    nc = await nats.connect(nats_server.url)
    node = Node(nc, svc, smtp)
    try:
        await node.call(c.EP_USER_ADD, c.UserAddIn(handle="hanako", email="hanako@example.jp", password=PW))
        tok = (await login(node))["session_token"]
        me = await node.call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=tok, district="南地区"))
        assert me["district"] == "南地区"
        with pytest.raises(errors.BadRequest) as refused:
            await node.call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=tok, district="みなみ", nickname="x"))
        assert refused.value.error_code == c.PROFILE_DISTRICT_UNKNOWN.code
        me = (await node.call(c.EP_SESSION, c.SessionIn(session_token=tok)))["user"]
        assert me["district"] == "南地区" and me["nickname"] == ""
        cleared = await node.call(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn(session_token=tok, district=""))
        assert cleared["district"] == ""
    finally:
        await nc.close()
        await svc.stop()
