"""`towntip identity ...` against the real identity service (in this process) on a real nats-server, on SQLite
and PostgreSQL: users with a password from stdin, OIDC clients and their once-shown secret, key rotation, and the
failures (bad input exit 2 with nothing sent, service errors and an unreachable bus exit 1, nothing on stdout)."""

from __future__ import annotations

import base64
import functools
import io
import json
import time
from collections.abc import AsyncIterator

import nats
import pytest
from sqlalchemy import select

from identity.accounts import digest
from identity.app import IdentityService
from identity.models import oauth_clients
from tests.edge.test_cli_edge import cli, run_cli
from tests.support import bus
from towntip.anchor import jwk_thumbprint
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings

NODE = "testnode"
PW = "correct horse battery"


@pytest.fixture
async def service(nats_server, database, tmp_path, smtp) -> AsyncIterator[IdentityService]:
    url, schema = database
    settings = ServiceSettings(
        service="identity", node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path), database_url=url,
        database_schema=schema or "", public_url="https://tsuru.example.jp",
    )
    smtp.start()
    svc = IdentityService(settings, smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


async def identity(nats_server, group: str, verb: str, *argv: str) -> int:
    """`towntip identity GROUP VERB --nats-url <the test server> --node testnode ARGV` (a --node in ARGV wins)."""
    return await cli("identity", group, verb, "--nats-url", nats_server.url, "--node", NODE, *argv)


call = functools.partial(bus.call, service=c.SERVICE, node=NODE)


async def handles(nc: nats.NATS) -> list[str]:
    return [u["handle"] for u in (await call(nc, c.EP_USER_LIST))["users"]]


async def client_ids(nc: nats.NATS) -> list[str]:
    return [k["client_id"] for k in (await call(nc, c.EP_CLIENT_LIST))["clients"]]


def add_user(handle: str, email: str, *extra: str) -> list[str]:
    return ["user", "add", "--handle", handle, "--email", email, *extra, "--password-stdin"]


# ---- users -----------------------------------------------------------------------------------------------------


async def test_user_add_list_remove(service, nats_server, nc, capsys, monkeypatch) -> None:
    stdin(monkeypatch, f"  {PW} \n")  # only the newline goes: the spaces are part of the password
    code = await identity(nats_server, *add_user("hanako", "Hanako@Example.JP", "--display-name", "山田 花子"))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == f"hanako@{NODE}\n"
    assert "山田 花子 <hanako@example.jp>, e-mail confirmed" in err

    sess = await call(nc, c.EP_LOGIN, c.LoginIn(login="hanako", password=f"  {PW} "))
    assert sess["user"]["global_handle"] == f"hanako@{NODE}" and sess["user"]["email_verified"] is True
    with pytest.raises(errors.Unauthorized):
        await call(nc, c.EP_LOGIN, c.LoginIn(login="hanako", password=PW))

    stdin(monkeypatch, PW + "\r\n")
    assert await identity(nats_server, *add_user("bob_2", "bob@example.jp", "--unverified")) == 0
    out, err = capsys.readouterr()
    assert out == f"bob_2@{NODE}\n" and "bob_2 <bob@example.jp>, e-mail not confirmed" in err
    assert (await call(nc, c.EP_LOGIN, c.LoginIn(login="bob@example.jp", password=PW)))["user"]["handle"] == "bob_2"

    assert await identity(nats_server, "user", "list") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["HANDLE", "GLOBAL", "HANDLE", "E-MAIL", "VERIFIED", "ROLES", "CREATED"]
    assert [ln.split()[:5] for ln in lines[1:]] == [
        ["bob_2", f"bob_2@{NODE}", "bob@example.jp", "no", "-"],
        ["hanako", f"hanako@{NODE}", "hanako@example.jp", "yes", "-"],
    ]
    assert lines[1].index(f"bob_2@{NODE}") == lines[0].index("GLOBAL HANDLE")  # columns line up
    assert err.strip() == "2 users"

    assert await identity(nats_server, "user", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["handle"], u["global_handle"], u["email_verified"], u["display_name"]) for u in listed] == [
        ("bob_2", f"bob_2@{NODE}", False, "bob_2"), ("hanako", f"hanako@{NODE}", True, "山田 花子"),
    ]
    assert all(u["created_at"] and u["home_node"] == NODE for u in listed)
    assert not any("password" in key for u in listed for key in u)

    assert await identity(nats_server, "user", "remove", "--handle", "hanako") == 0
    assert capsys.readouterr().out == f"removed user hanako@{NODE}\n"
    assert await handles(nc) == ["bob_2"]
    with pytest.raises(errors.Unauthorized):  # the account and its session are gone
        await call(nc, c.EP_SESSION, c.SessionIn(session_token=sess["session_token"]))

    assert await identity(nats_server, "user", "remove", "--handle", "hanako") == 1
    out, err = capsys.readouterr()
    assert out == "" and "identity service: no user 'hanako' (404)" in err


async def test_user_grant_and_revoke_roles(service, nats_server, nc, capsys, monkeypatch) -> None:
    stdin(monkeypatch, PW + "\n")
    assert await identity(nats_server, *add_user("hanako", "hanako@example.jp")) == 0
    sess = await call(nc, c.EP_LOGIN, c.LoginIn(login="hanako", password=PW))
    assert sess["user"]["roles"] == []
    capsys.readouterr()

    for role in ("staff", "secretariat", "staff"):  # granting twice is no change
        assert await identity(nats_server, "user", "grant", "--handle", "hanako", "--role", role) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"hanako@{NODE}: secretariat, staff"
    # the live session sees the roles at once (the portal asks on every request)
    now = await call(nc, c.EP_SESSION, c.SessionIn(session_token=sess["session_token"]))
    assert now["user"]["roles"] == ["secretariat", "staff"]
    assert await identity(nats_server, "user", "list") == 0
    assert "secretariat,staff" in capsys.readouterr().out

    assert await identity(nats_server, "user", "revoke", "--handle", "hanako", "--role", "staff") == 0
    assert capsys.readouterr().out == f"hanako@{NODE}: secretariat\n"

    # an unknown role is a usage error (nothing sent); an unknown person is the service's 404; nothing changed
    assert await identity(nats_server, "user", "grant", "--handle", "hanako", "--role", "mayor") == 2
    err = capsys.readouterr().err
    assert err.startswith("towntip: ") and "role" in err and "'staff' or 'secretariat'" in err, err
    assert await identity(nats_server, "user", "grant", "--handle", "nobody", "--role", "staff") == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    assert await identity(nats_server, "user", "grant", "--handle", "Bad Name", "--role", "staff") == 2
    with pytest.raises(errors.BadRequest):  # the service checks too (a caller other than the CLI)
        await call(nc, c.EP_USER_GRANT, {"handle": "hanako", "role": "mayor"})
    users = (await call(nc, c.EP_USER_LIST))["users"]
    assert [(u["handle"], u["roles"]) for u in users] == [("hanako", ["secretariat"])]


async def test_user_add_refuses_a_password_that_is_empty_short_or_an_argument(
    service, nats_server, nc, capsys, monkeypatch
) -> None:
    for text in ("", "\n", "\r\n"):
        stdin(monkeypatch, text)
        assert await identity(nats_server, *add_user("hanako", "hanako@example.jp")) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("towntip: ") and "password on stdin is empty" in err

    stdin(monkeypatch, "shortpw\n")
    assert await identity(nats_server, *add_user("hanako", "hanako@example.jp")) == 2
    out, err = capsys.readouterr()
    assert out == "" and "password: String should have at least 10 characters" in err
    assert "shortpw" not in err  # the reason never repeats the password

    stdin(monkeypatch, PW + "\n")
    base = ["identity", "user", "add", "--nats-url", nats_server.url, "--node", NODE, "--handle", "hanako",
            "--email", "hanako@example.jp"]
    for argv in (base + ["--password", PW], base + ["--password-stdin", f"--password={PW}"]):
        with pytest.raises(SystemExit) as exited:
            run_cli(argv)
        out, err = capsys.readouterr()
        assert exited.value.code == 2 and out == ""
        assert "the password is never taken as an argument" in err and PW not in err
    with pytest.raises(SystemExit) as exited:
        run_cli(base)
    assert exited.value.code == 2
    assert "required: --password-stdin" in capsys.readouterr().err

    assert await handles(nc) == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (add_user("Bad Handle", "b@example.jp"), "handle: String should match pattern"),
        (add_user("ab", "b@example.jp"), "handle: String should match pattern"),
        (add_user("hanako", "not-an-address"), "email: not an e-mail address"),
        (add_user("hanako", "hanako@example.jp", "--display-name", ""), "display_name: String should have at least"),
        (["user", "remove", "--handle", "Hanako!"], "handle: String should match pattern"),
        (add_user("hanako", "hanako@example.jp", "--node", "X"), "node id 'X'"),
    ],
)
async def test_bad_user_input_exits_2_and_creates_nothing(
    service, nats_server, nc, capsys, monkeypatch, argv, message
) -> None:
    stdin(monkeypatch, PW + "\n")
    code = await identity(nats_server, *argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == "" and err.startswith("towntip: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert await handles(nc) == []


async def test_duplicate_handle_or_email_exits_1_with_the_services_reason(
    service, nats_server, nc, capsys, monkeypatch
) -> None:
    stdin(monkeypatch, PW + "\n")
    assert await identity(nats_server, *add_user("hanako", "hanako@example.jp")) == 0
    capsys.readouterr()

    stdin(monkeypatch, "another password\n")
    assert await identity(nats_server, *add_user("hanako", "other@example.jp")) == 1
    out, err = capsys.readouterr()
    assert out == "" and "identity service: the handle 'hanako' is taken" in err and err.rstrip().endswith("(409)")

    stdin(monkeypatch, "another password\n")
    assert await identity(nats_server, *add_user("other", "HANAKO@example.jp")) == 1
    out, err = capsys.readouterr()
    assert out == "" and "an account with this e-mail exists" in err and "(409)" in err

    assert await handles(nc) == ["hanako"]
    with pytest.raises(errors.Unauthorized):  # the first account's password is unchanged
        await call(nc, c.EP_LOGIN, c.LoginIn(login="hanako", password="another password"))


# ---- OIDC clients ----------------------------------------------------------------------------------------------


async def test_client_add_confidential_and_public_then_list(service, nats_server, nc, capsys) -> None:
    code = await identity(nats_server, "client", "add", "--client-id", "portal", "--name", "鶴ヶ島ポータル",
                          "--redirect-uri", "https://portal.example.jp/callback",
                          "--redirect-uri", "http://localhost:8080/cb",
                          "--post-logout-redirect-uri", "https://portal.example.jp/")
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "client_id: portal" and lines[1].startswith("client_secret: ") and len(lines) == 2
    secret = lines[1].removeprefix("client_secret: ")
    assert len(secret) >= 32
    assert "shown only this once" in err and secret not in err
    async with service.sessions() as s:  # the node keeps only the hash of the secret it printed
        row = (await s.execute(select(oauth_clients).where(oauth_clients.c.client_id == "portal"))).one()
    assert row.secret_hash == digest(secret)

    code = await identity(nats_server, "client", "add", "--client-id", "city-app", "--public",
                          "--redirect-uri", "https://app.example.jp/cb", "--scope", "openid profile")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "client_id: city-app\n" and "client_secret" not in out
    assert "public client: no secret" in err

    assert await identity(nats_server, "client", "list") == 0
    out, err = capsys.readouterr()
    assert secret not in out and "client_secret" not in out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["CLIENT", "ID", "NAME", "TYPE"]
    assert lines[1].split()[:4] == ["city-app", "city-app", "public", "openid"]
    assert lines[2].split()[:3] == ["portal", "鶴ヶ島ポータル", "confidential"]
    assert "https://portal.example.jp/callback http://localhost:8080/cb" in lines[2]
    # columns line up on a terminal, where each of the name's seven wide characters takes two columns
    assert lines[1].index("public") == lines[2].index("confidential") + 7
    assert err.strip() == "2 clients"

    assert await identity(nats_server, "client", "list", "--json") == 0
    out = capsys.readouterr().out
    assert secret not in out
    listed = {k["client_id"]: k for k in json.loads(out)}
    assert set(listed) == {"portal", "city-app"}
    assert "client_secret" not in listed["portal"]
    assert listed["portal"]["public"] is False and listed["city-app"]["public"] is True
    assert listed["portal"]["redirect_uris"] == ["https://portal.example.jp/callback", "http://localhost:8080/cb"]
    assert listed["portal"]["post_logout_redirect_uris"] == ["https://portal.example.jp/"]
    assert listed["portal"]["name"] == "鶴ヶ島ポータル" and listed["city-app"]["scope"] == "openid profile"

    assert await identity(nats_server, "client", "add", "--client-id", "portal", "--public",
                          "--redirect-uri", "https://other.example.jp/cb") == 1
    out, err = capsys.readouterr()
    assert out == "" and "client 'portal' exists (409)" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--client-id", "evil", "--redirect-uri", "javascript:alert(1)"], "redirect_uris.0: String should match"),
        (["--client-id", "evil", "--redirect-uri", "https://ok.example.jp/cb", "--redirect-uri",
          "https://x.example.jp/#frag"], "redirect_uris.1: String should match"),
        (["--client-id", "evil", "--redirect-uri", "https://ok.example.jp/cb", "--post-logout-redirect-uri",
          "ftp://x.example.jp/"], "post_logout_redirect_uris.0"),
        (["--client-id", "bad/id", "--redirect-uri", "https://ok.example.jp/cb"], "client_id: String should match"),
        (["--client-id", "evil", "--redirect-uri", "https://ok.example.jp/cb", "--scope", "openid; drop"],
         "scope: String should match"),
    ],
)
async def test_bad_client_input_exits_2_and_adds_nothing(service, nats_server, nc, capsys, argv, message) -> None:
    code = await identity(nats_server, "client", "add", *argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == "" and err.startswith("towntip: ") and message in err and "Traceback" not in err
    assert await client_ids(nc) == []


async def test_client_scope_without_openid_is_refused_by_the_service(service, nats_server, nc, capsys) -> None:
    code = await identity(nats_server, "client", "add", "--client-id", "portal", "--scope", "profile email",
                          "--redirect-uri", "https://portal.example.jp/cb")
    out, err = capsys.readouterr()
    assert code == 1
    assert out == "" and "identity service: the client's scope must include openid (400)" in err
    assert await client_ids(nc) == []


async def test_client_remove(service, nats_server, nc, capsys) -> None:
    assert await identity(nats_server, "client", "remove", "--client-id", "nope") == 1
    out, err = capsys.readouterr()
    assert out == "" and "identity service: no client 'nope' (404)" in err

    await call(nc, c.EP_CLIENT_ADD, c.ClientAddIn(client_id="portal", redirect_uris=["https://p.example.jp/cb"]))
    await call(nc, c.EP_CLIENT_ADD, c.ClientAddIn(client_id="other", redirect_uris=["https://o.example.jp/cb"]))
    assert await identity(nats_server, "client", "remove", "--client-id", "portal") == 0
    assert capsys.readouterr().out == "removed client portal\n"
    assert await client_ids(nc) == ["other"]


# ---- signing keys ----------------------------------------------------------------------------------------------


async def test_keys_rotate_keeps_the_retired_key_published(service, nats_server, nc, capsys) -> None:
    def rotated(out: str) -> tuple[set[str], list[str]]:
        kid, at_kid, published = out.splitlines()
        assert kid.startswith("kid: ") and at_kid.startswith("access token kid: ")
        return {kid.removeprefix("kid: "), at_kid.removeprefix("access token kid: ")}, \
            published.removeprefix("published: ").split()

    assert await identity(nats_server, "keys", "rotate") == 0
    out, err = capsys.readouterr()
    first, published = rotated(out)  # an RS256 key (ID tokens) and an ES256 key (access tokens)
    assert len(first) == 2 and set(published) == first
    assert "retired keys stay published for a day" in err

    assert await identity(nats_server, "keys", "rotate") == 0
    second, published = rotated(capsys.readouterr().out)
    assert len(second) == 2 and not second & first
    assert set(published[:2]) == second and set(published[2:]) == first  # newest first; the retired ones stay

    jwks = await call(nc, c.EP_OIDC, c.OidcRequest(endpoint="jwks", method="GET",
                                                  url="https://tsuru.example.jp/oauth/jwks"))
    assert [k["kid"] for k in jwks["body"]["keys"]] == published


async def entity_configuration(nc: nats.NATS) -> tuple[str, list[str], list[str]]:
    """(the kid that signs this node's entity configuration, its jwks' kids, its provider's kids in the metadata)"""
    token = (await call(nc, c.EP_OIDC, c.OidcRequest(endpoint="federation", method="GET",
                                                     url="https://tsuru.example.jp/.well-known/openid-federation")))
    header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
                      for p in token["body"].split(".")[:2])
    for k in claims["jwks"]["keys"]:
        assert jwk_thumbprint(k) == k["kid"]
    return header["kid"], [k["kid"] for k in claims["jwks"]["keys"]], \
        [k["kid"] for k in claims["metadata"]["openid_provider"]["jwks"]["keys"]]


async def test_keys_rotate_leaves_the_federation_key_and_rotate_federation_changes_it_only(
        service, nats_server, nc, capsys) -> None:
    signer, federation, provider = await entity_configuration(nc)
    assert federation == [signer] and signer not in provider  # the federation key signs; it is no provider key

    # `keys rotate`: the provider's keys change, the federation key (what the anchor pinned) does not
    assert await identity(nats_server, "keys", "rotate") == 0
    out, err = capsys.readouterr()
    kid = out.splitlines()[0].removeprefix("kid: ")
    assert f"the federation key {signer} is unchanged" in err
    after = await entity_configuration(nc)
    assert after[:2] == (signer, [signer]) and kid in after[2] and set(provider) <= set(after[2])

    # `keys rotate-federation`: a new federation key, the thumbprint and the anchor's command printed
    assert await identity(nats_server, "keys", "rotate-federation") == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"federation key thumbprint: {out.split()[3]}", f"retired: {signer}"]
    new = out.split()[3]
    assert new != signer
    assert (f"towntip federation anchor rekey --data-dir <the anchor's> --entity-id https://tsuru.example.jp "
            f"--expect-thumbprint={new}") in err
    assert await entity_configuration(nc) == (new, [new], after[2])  # the provider's keys as they were


# ---- no bus, no service ----------------------------------------------------------------------------------------


async def test_unreachable_nats_exits_1_quickly(capsys, monkeypatch) -> None:
    from towntip.node.natsd import free_port

    url = f"nats://127.0.0.1:{free_port()}"
    stdin(monkeypatch, PW + "\n")
    for argv in (add_user("hanako", "hanako@example.jp"), ["user", "list"], ["keys", "rotate"],
                 ["keys", "rotate-federation"], ["client", "remove", "--client-id", "portal"]):
        started = time.monotonic()
        code = await cli("identity", *argv, "--nats-url", url, "--node", NODE)
        elapsed = time.monotonic() - started
        out, err = capsys.readouterr()
        assert code == 1
        assert out == "" and f"cannot reach NATS at {url}" in err and "Traceback" not in err
        assert elapsed < 10, f"{argv} took {elapsed:.1f}s"


async def test_no_identity_service_exits_1(nats_server, capsys, monkeypatch) -> None:
    stdin(monkeypatch, PW + "\n")
    for argv, endpoint in ((add_user("hanako", "hanako@example.jp"), c.EP_USER_ADD), (["user", "list"], c.EP_USER_LIST),
                           (["keys", "rotate"], c.EP_KEY_ROTATE),
                           (["keys", "rotate-federation"], c.EP_FEDERATION_KEY_ROTATE)):
        code = await identity(nats_server, *argv)
        out, err = capsys.readouterr()
        assert code == 1
        assert out == "" and "Traceback" not in err
        assert f"no identity service answers on {subjects.svc(NODE, c.SERVICE, endpoint)}" in err


async def test_staff_look_people_up_by_global_handle_or_email(service, nats_server, nc, monkeypatch) -> None:
    stdin(monkeypatch, PW + "\n")
    assert await identity(nats_server, *add_user("hanako", "hanako@example.jp", "--display-name", "山田 花子")) == 0
    staff = {"user_id": "staff-0001", "global_handle": "suzuki@testnode", "display_name": "鈴木", "roles": ["staff"]}
    for query in (f"hanako@{NODE}", "Hanako@Example.JP", "hanako"):
        found = await call(nc, c.EP_PEOPLE_LOOKUP, {"actor": staff, "query": query})
        assert (found["global_handle"], found["display_name"], found["home_node"]) == (
            f"hanako@{NODE}", "山田 花子", NODE)
        assert set(found) == {"user_id", "global_handle", "display_name", "home_node"}  # nothing private
    with pytest.raises(errors.NotFound):
        await call(nc, c.EP_PEOPLE_LOOKUP, {"actor": staff, "query": "taro@elsewhere"})
    with pytest.raises(errors.Forbidden):  # a citizen may not look people up
        await call(nc, c.EP_PEOPLE_LOOKUP, {"actor": {**staff, "roles": []}, "query": "hanako"})
