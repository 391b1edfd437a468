"""`towntip federation anchor ...`: the anchor's key, its members and their pinned federation keys, refusals of
bad input and of configurations that do not hold, and what the anchor vouches for afterwards (the pinned key only,
with no request to the member: an impostor at the member's URL is refused by the relying node's TrustResolver)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey

from identity.federation import (
    WELL_KNOWN,
    TrustError,
    TrustResolver,
    entity_configuration,
    sign_statement,
    unverified_claims,
)
from towntip.anchor import TrustAnchor
from towntip.anchor.app import anchor_app
from towntip.cli import main

HUB = "https://hub.example.jp"
NODE = "tsurugashima"


def _public(key: RSAKey, kid: str | None = None) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": kid or key.thumbprint(), "use": "sig", "alg": "RS256"}


@functools.cache
def provider_key() -> RSAKey:
    """The member provider's own signing key (ID tokens), not its federation key."""
    return RSAKey.generate_key(2048)


def configuration(entity_id: str, key: RSAKey, *, node: str = NODE, sub: str | None = None,
                  published: list[dict[str, Any]] | None = None) -> str:
    """A node's entity configuration as identity/oidc.py makes it: signed by its federation key `key`, which is its
    `jwks`; its provider's keys in metadata.openid_provider.jwks (`sub` and `published` bend it for the refusals)."""
    token = entity_configuration(entity_id=sub or entity_id, node=node, key=key, kid=key.thumbprint(),
                                 jwks=published if published is not None else [_public(key)],
                                 provider={"issuer": sub or entity_id,
                                           "authorization_endpoint": f"{sub or entity_id}/oauth/authorize",
                                           "jwks_uri": f"{sub or entity_id}/oauth/jwks"},
                                 provider_jwks=[_public(provider_key())], anchor=HUB)
    return token


class Member:
    """A member's site: answers /.well-known/openid-federation with whatever `body` is now (an impostor too)."""

    def __init__(self) -> None:
        self.body = ""
        self.hits = 0
        member = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                member.hits += 1
                ok = self.path == WELL_KNOWN and member.body
                data = (member.body if ok else "no").encode()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/entity-statement+jwt")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def member() -> Iterator[Member]:
    m = Member()
    yield m
    m.close()


@pytest.fixture(scope="module")
def keys() -> list[RSAKey]:
    return [RSAKey.generate_key(2048) for _ in range(3)]


def run(*argv: str) -> int:
    return main(["federation", "anchor", *argv])


def members_bytes(d: str) -> bytes | None:
    path = Path(d) / "members.json"
    return path.read_bytes() if path.exists() else None


def test_anchor_init_add_list_remove(tmp_path, capsys, member, keys) -> None:
    d = str(tmp_path / "anchor")
    assert main(["federation", "anchor", "init", "--data-dir", d, "--entity-id", "https://hub.example.jp/"]) == 0
    jwks_path = capsys.readouterr().out.strip()
    anchor_keys = json.loads(open(jwks_path).read())["keys"]
    assert len(anchor_keys) == 1 and anchor_keys[0]["kty"] == "RSA" and "d" not in anchor_keys[0]
    assert (tmp_path / "anchor" / "anchor-key.pem").stat().st_mode & 0o077 == 0

    member.body = configuration(member.url, keys[0])
    assert run("add", "--data-dir", d, "--entity-id", member.url, "--node", NODE) == 0
    out, err = capsys.readouterr()
    assert f"federation key of {NODE} at {member.url}: {keys[0].thumbprint()}" in out
    assert "compare this thumbprint" in err
    assert run("add", "--data-dir", d, "--entity-id", "https://other.example.jp", "--node", NODE) == 1  # one node
    assert run("add", "--data-dir", d, "--entity-id", "not a url", "--node", "x1") == 2
    assert run("add", "--data-dir", d, "--entity-id", "https://x.example.jp", "--node", "Bad Node") == 2
    capsys.readouterr()
    assert run("list", "--data-dir", d) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == {member.url: {"node": NODE, "thumbprints": [keys[0].thumbprint()],
                                   "pinned_at": listed[member.url]["pinned_at"]}}
    assert listed[member.url]["pinned_at"]
    stored = json.loads((tmp_path / "anchor" / "members.json").read_text())[member.url]
    assert stored["node"] == NODE and stored["jwks"] == {"keys": [_public(keys[0])]}

    assert run("remove", "--data-dir", d, "--entity-id", member.url) == 0
    assert run("remove", "--data-dir", d, "--entity-id", member.url) == 1
    capsys.readouterr()
    run("list", "--data-dir", d)
    assert json.loads(capsys.readouterr().out) == {}
    # init again keeps the same key: nodes holding the JWKS keep trusting the anchor
    main(["federation", "anchor", "init", "--data-dir", d, "--entity-id", "https://hub.example.jp"])
    assert json.loads(open(jwks_path).read())["keys"] == anchor_keys


def test_expect_thumbprint_refuses_another_key_and_saves_nothing(tmp_path, capsys, member, keys) -> None:
    d = str(tmp_path / "anchor")
    member.body = configuration(member.url, keys[0])
    wrong = keys[1].thumbprint()
    assert run("add", "--data-dir", d, "--entity-id", member.url, "--node", NODE, f"--expect-thumbprint={wrong}") == 1
    err = capsys.readouterr().err
    assert "nothing saved" in err and keys[0].thumbprint() in err and wrong in err
    assert members_bytes(d) is None or json.loads(members_bytes(d) or b"{}") == {}
    # A thumbprint may begin with "-" (base64url): written with "=", it is a value, not an option (1 in 64 keys).
    assert run("add", "--data-dir", d, "--entity-id", member.url, "--node", NODE,
               "--expect-thumbprint=-" + wrong[1:]) == 1
    assert "-" + wrong[1:] in capsys.readouterr().err
    assert members_bytes(d) is None or json.loads(members_bytes(d) or b"{}") == {}

    right = keys[0].thumbprint()
    assert run("add", "--data-dir", d, "--entity-id", member.url, "--node", NODE,
               f"--expect-thumbprint= {right} ,") == 0  # a comma list, blanks ignored
    assert "compare this thumbprint" not in capsys.readouterr().err
    before = members_bytes(d)
    # Two thumbprints where one key is pinned: they differ, refused; and a wrong one on a re-pin leaves the pin.
    assert run("add", "--data-dir", d, "--entity-id", member.url, "--node", NODE,
               f"--expect-thumbprint={right}", f"--expect-thumbprint={wrong}") == 1
    member.body = configuration(member.url, keys[1])
    assert run("rekey", "--data-dir", d, "--entity-id", member.url, f"--expect-thumbprint={right}") == 1
    assert members_bytes(d) == before


@pytest.mark.parametrize("case", ["not self-signed", "kid not published", "no keys", "sub", "node id",
                                  "not a jwt", "expired", "unreachable", "404"])
def test_a_configuration_that_does_not_hold_is_refused(tmp_path, capsys, member, keys, case) -> None:
    d = str(tmp_path / "anchor")
    url = member.url
    # one member already enrolled: a refusal must leave members.json as it was
    enrolled = Member()
    try:
        enrolled.body = configuration(enrolled.url, keys[2], node="suginami")
        assert run("add", "--data-dir", d, "--entity-id", enrolled.url, "--node", "suginami") == 0
    finally:
        enrolled.close()
    before = members_bytes(d)
    capsys.readouterr()
    if case == "not self-signed":  # signed by a key whose public half is not the one published under that kid
        member.body = configuration(url, keys[1], published=[_public(keys[0], kid=keys[1].thumbprint())])
    elif case == "kid not published":
        member.body = configuration(url, keys[1], published=[_public(keys[0])])
    elif case == "no keys":
        member.body = configuration(url, keys[0], published=[])
    elif case == "sub":  # a configuration of another entity served at this URL
        member.body = configuration(url, keys[0], sub="https://elsewhere.example.jp")
    elif case == "node id":
        member.body = configuration(url, keys[0], node="suginami")
    elif case == "not a jwt":
        member.body = "hello"
    elif case == "expired":
        member.body = sign_statement(keys[0], keys[0].thumbprint(), {
            **unverified_claims(configuration(url, keys[0])), "exp": 1})
    elif case == "unreachable":
        url = "http://127.0.0.1:9"
    elif case == "404":
        member.body = ""
    assert run("add", "--data-dir", d, "--entity-id", url, "--node", NODE) == 1
    out, err = capsys.readouterr()
    assert "not enrolled, nothing saved" in err, err
    assert {"sub": "elsewhere.example.jp", "node id": "'suginami'", "not self-signed": "signature",
            "kid not published": "not signed by one of the keys", "no keys": "not signed by one of the keys",
            "expired": "expired", "unreachable": "--configuration-file", "404": "404",
            "not a jwt": "not a JWT"}[case] in err, err
    assert "vouching" not in out
    assert members_bytes(d) == before


def test_a_configuration_handed_over_when_the_member_is_not_reachable(tmp_path, capsys, keys) -> None:
    d = str(tmp_path / "anchor")
    entity = "https://tsuru.example.jp"  # not reachable from here
    file = tmp_path / "tsuru.jwt"
    file.write_text(configuration(entity, keys[0]) + "\n")
    assert run("add", "--data-dir", d, "--entity-id", entity, "--node", NODE, "--configuration-file", str(file),
               f"--expect-thumbprint={keys[0].thumbprint()}") == 0
    assert TrustAnchor(Path(d), HUB).thumbprints(entity) == [keys[0].thumbprint()]
    assert run("add", "--data-dir", d, "--entity-id", entity, "--node", NODE, "--configuration-file",
               str(tmp_path / "missing.jwt")) == 1
    assert "--configuration-file" in capsys.readouterr().err
    # the member operator's side: the thumbprint of its own key, from the file or its local address
    assert main(["federation", "thumbprint", "--configuration-file", str(file)]) == 0
    out = capsys.readouterr().out
    assert f"federation key thumbprint: {keys[0].thumbprint()}" in out and entity in out and NODE in out


def test_the_member_operator_reads_its_thumbprint(capsys, member, keys) -> None:
    member.body = configuration(member.url, keys[0])
    assert main(["federation", "thumbprint", "--url", member.url]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"federation key thumbprint: {keys[0].thumbprint()}"
    member.body = configuration(member.url, keys[1], published=[_public(keys[0], kid=keys[1].thumbprint())])
    assert main(["federation", "thumbprint", "--url", member.url]) == 1


def routed(anchor: TrustAnchor, member: Member, answer: str | None = None) -> httpx.AsyncClient:
    """A relying node's HTTP client: the anchor's app in process; the member's URL is the member's site, or
    `answer` when set (what an impostor there serves: a hijacked name, a proxy)."""
    anchor_http = TestClient(anchor_app(anchor), base_url=anchor.entity_id)

    def handle(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith(anchor.entity_id):
            r = anchor_http.get(request.url.path, params=dict(request.url.params))
            return httpx.Response(r.status_code, content=r.content)
        if answer is not None and url == member.url + WELL_KNOWN:
            return httpx.Response(200, text=answer)
        r = httpx.get(url)
        return httpx.Response(r.status_code, content=r.content)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_the_anchor_vouches_for_the_pinned_key_only_and_an_impostor_is_refused(tmp_path, member,
                                                                                      keys) -> None:
    anchor = TrustAnchor(tmp_path / "anchor", HUB)
    member.body = configuration(member.url, keys[0])
    assert run("add", "--data-dir", str(anchor.data_dir), "--entity-id", member.url, "--node", NODE) == 0
    hits = member.hits

    # The anchor answers from what it pinned: no request to the member (its site may be down, or someone else's).
    member.body = configuration(member.url, keys[1])  # whoever answers at the member's URL now, with their key
    statement = unverified_claims(anchor.subordinate(member.url) or "")
    assert [k["kid"] for k in statement["jwks"]["keys"]] == [keys[0].thumbprint()]
    assert statement["jwks"] == {"keys": [_public(keys[0])]} and statement["sub"] == member.url
    assert member.hits == hits

    # A relying node: the genuine configuration resolves; the impostor's (signed with its own key, naming it in
    # its jwks, same entity id and node id, its own endpoints) fails the signature with the pinned key.
    genuine = configuration(member.url, keys[0])
    resolver = TrustResolver(HUB, json.loads(anchor.jwks_path.read_text()), 0, routed(anchor, member, answer=genuine))
    trusted = await resolver.resolve(member.url)
    assert trusted.node == NODE
    # the provider's keys (for its ID tokens and queries) come from the verified metadata, apart from the federation
    # key; the provider's metadata carries its keys by value, not a jwks_uri beside them
    assert trusted.provider_jwks == {"keys": [_public(provider_key())]}
    assert trusted.federation_jwks == {"keys": [_public(keys[0])]}
    assert "jwks_uri" not in trusted.provider and trusted.provider["jwks"] == trusted.provider_jwks
    resolver.client = routed(anchor, member, answer=configuration(member.url, keys[1]))
    with pytest.raises(TrustError, match="signature"):
        await resolver.resolve(member.url)
    with pytest.raises(TrustError):
        await resolver.by_node(NODE)  # a login/query for name@tsurugashima finds no trusted node
    # Even an impostor reusing the pinned key's kid: the signature does not verify with the pinned key.
    forged = entity_configuration(entity_id=member.url, node=NODE, key=keys[1], kid=keys[0].thumbprint(),
                                  jwks=[_public(keys[1], kid=keys[0].thumbprint())], provider={},
                                  provider_jwks=[_public(keys[1])], anchor=HUB)
    resolver.client = routed(anchor, member, answer=forged)
    with pytest.raises(TrustError, match="signature"):
        await resolver.resolve(member.url)

    # The member rotated its key for real: refused until the anchor's operator re-pins; then trusted again.
    resolver.client = routed(anchor, member)  # member.body: signed with keys[1]
    with pytest.raises(TrustError, match="signature"):
        await resolver.resolve(member.url)
    d = str(anchor.data_dir)
    assert run("rekey", "--data-dir", d, "--entity-id", member.url, f"--expect-thumbprint={keys[1].thumbprint()}") == 0
    assert anchor.thumbprints(member.url) == [keys[1].thumbprint()]
    assert (await resolver.resolve(member.url)).node == NODE
    assert run("rekey", "--data-dir", d, "--entity-id", "https://never.example.jp") == 1  # rekey: members only


async def test_an_old_members_file_is_read_but_not_vouched_for_until_rekey(tmp_path, capsys, member,
                                                                           keys) -> None:
    anchor = TrustAnchor(tmp_path / "anchor", HUB)
    anchor.members_path.write_text(json.dumps({member.url: NODE}))  # members.json of an earlier version
    member.body = configuration(member.url, keys[0])
    assert anchor.members() == {member.url: NODE} and anchor.unpinned() == [member.url]
    with pytest.raises(TrustError, match="no pinned keys"):
        anchor.subordinate(member.url)
    http = TestClient(anchor_app(anchor), base_url=HUB)
    r = http.get("/federation/fetch", params={"sub": member.url})
    assert r.status_code == 404 and "no pinned keys" in r.json()["error_description"]
    assert "anchor rekey" in r.json()["error_description"]
    assert http.get("/federation/list").json() == []
    assert member.hits == 0  # nothing fetched to fill the gap

    d = str(anchor.data_dir)
    assert run("list", "--data-dir", d) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {member.url: {"node": NODE, "thumbprints": [], "pinned_at": None}}
    assert "no pinned keys" in err and "rekey" in err

    assert run("rekey", "--data-dir", d, "--entity-id", member.url, f"--expect-thumbprint={keys[0].thumbprint()}") == 0
    assert http.get("/federation/list").json() == [member.url]
    r = http.get("/federation/fetch", params={"sub": member.url})
    assert r.status_code == 200 and unverified_claims(r.text)["jwks"]["keys"][0]["kid"] == keys[0].thumbprint()
    assert http.get("/federation/fetch", params={"sub": "https://stranger.example.jp"}).status_code == 404


async def test_add_and_enrol_pin_or_raise_and_save_nothing(tmp_path, member, keys) -> None:
    """`add` (no event loop needed: it fetches once, blocking) and `enrol` (awaited) pin the key, or raise and save
    nothing; neither leaves anything to wait for."""
    anchor = TrustAnchor(tmp_path / "anchor", HUB)
    member.body = configuration(member.url, keys[0])
    assert anchor.add(member.url, NODE).thumbprints == [keys[0].thumbprint()]
    assert anchor.thumbprints(member.url) == [keys[0].thumbprint()]
    member.body = configuration(member.url, keys[1], node="other")
    with pytest.raises(TrustError, match="cannot reach"):
        anchor.add("http://127.0.0.1:9", "x")
    with pytest.raises(TrustError, match="node id"):
        anchor.add(member.url, NODE)
    with pytest.raises(TrustError, match="node id"):
        await anchor.enrol(member.url, NODE)
    assert anchor.members() == {member.url: NODE}  # all failed: nothing saved
    assert anchor.thumbprints(member.url) == [keys[0].thumbprint()]
    assert (await anchor.enrol(member.url, "other", configuration=configuration(member.url, keys[1],
                                                                                  node="other"))).node == "other"
    with pytest.raises(TrustError, match="thumbprint"):
        await anchor.enrol(member.url, "other", configuration=configuration(member.url, keys[1], node="other"),
                           expect=[keys[0].thumbprint()])


def test_the_anchor_runs_as_its_own_process(tmp_path, member, keys) -> None:
    """`python -m towntip.anchor` serves the anchor as a process of its own: its configuration (signed by the key
    in its JWKS file) and its statement about a member the CLI enrolled; a bad entity id is refused at start."""
    import subprocess
    import sys
    import time

    from towntip.kernel.trust import verify_statement
    from towntip.node.natsd import free_port

    bad = subprocess.run([sys.executable, "-m", "towntip.anchor", "--data-dir", str(tmp_path / "x"),
                          "--entity-id", "not a url"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--entity-id must be a URL" in bad.stderr
    assert not (tmp_path / "x").exists()

    d, port = tmp_path / "anchor", free_port()
    entity = f"http://127.0.0.1:{port}"
    member.body = configuration(member.url, keys[0])
    assert run("add", "--data-dir", str(d), "--entity-id", member.url, "--node", NODE) == 0
    proc = subprocess.Popen([sys.executable, "-m", "towntip.anchor", "--data-dir", str(d), "--entity-id", entity,
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{entity}{WELL_KNOWN}", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "the anchor did not start"
                time.sleep(0.2)
        anchor_jwks = json.loads((d / "anchor-jwks.json").read_text())
        assert r.status_code == 200 and verify_statement(r.text, anchor_jwks)["sub"] == entity
        fetched = httpx.get(f"{entity}/federation/fetch", params={"sub": member.url}, timeout=5)
        assert fetched.status_code == 200
        assert verify_statement(fetched.text, anchor_jwks)["jwks"] == {"keys": [_public(keys[0])]}
        assert httpx.get(f"{entity}/federation/list", timeout=5).json() == [member.url]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
