"""Certified courses, credits and certifications over a real nats-server, on SQLite and PostgreSQL: credits once per
course through the ledger, a certification granted exactly when its rule's threshold is reached and once, a
certificate whose signature verifies (and fails when tampered with), revocation, staff-only changes refused with 403
and nothing changed, bad input refused with its reason."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.points.documents.certificate import b64u, b64u_decode, sign
from tests.support.bus import call
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import courses as c
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts.actor import Actor

NODE = "testnode"
STAFF = Actor(user_id=str(uuid.uuid4()), global_handle=f"shokuin@{NODE}", display_name="職員 一郎", roles=("staff",))
HANAKO = Actor(user_id=str(uuid.uuid4()), global_handle=f"hanako@{NODE}", display_name="鶴ヶ島 花子")
TARO = Actor(user_id=str(uuid.uuid4()), global_handle=f"taro@{NODE}", display_name="坂戸 太郎")


def a(actor: Actor) -> dict[str, Any]:
    return actor.model_dump(mode="json")


async def credit_of(nc: nats.NATS, actor: Actor) -> int:
    out = await call(nc, lc.EP_LEDGER_BALANCE, {"account": f"person:{actor.user_id}", "asset": "credit"})
    return out["balance"]


async def setup_courses(nc: nats.NATS) -> None:
    for code, title, field, credits in [("machi-101", "まちづくり入門", "npo-1", 2),
                                        ("kankyo-201", "環境保全の実践", "npo-8", 3),
                                        ("fukushi-110", "地域福祉の基礎", "npo-1", 1)]:
        out = await call(nc, c.EP_COURSE_PUT, {"actor": a(STAFF), "code": code, "title": title, "field": field,
                                               "credits": credits, "starts_on": "2026-04-01",
                                               "ends_on": "2026-06-30", "description": "認定講座"})
        assert (out["code"], out["credits"], out["field"]) == (code, credits, field)
    # any course, 5 credits; and: field npo-1 only, 3 credits
    await call(nc, c.EP_CERTIFICATION_PUT, {"actor": a(STAFF), "code": "leader", "title": "まちづくりリーダー",
                                            "credits_required": 5})
    await call(nc, c.EP_CERTIFICATION_PUT, {"actor": a(STAFF), "code": "fukushi", "title": "地域福祉サポーター",
                                            "credits_required": 3, "fields": ["npo-1"]})


async def complete(nc: nats.NATS, course: str, person: str, actor: Actor = STAFF) -> dict[str, Any]:
    return await call(nc, c.EP_COURSE_COMPLETE, {"actor": a(actor), "course": course, "person": person,
                                                 "completed_on": "2026-06-30"})


async def events_of(nc: nats.NATS, types: set[str], want: int) -> list[dict[str, Any]]:
    """The points service's events of these types as published to its stream (through the outbox)."""
    js = nc.jetstream()
    found: list[dict[str, Any]] = []
    for _ in range(50):
        sub = await js.subscribe(subjects.evt_all(NODE, "points"), ordered_consumer=True)
        found = []
        try:
            while True:
                msg = await sub.next_msg(timeout=0.5)
                env = json.loads(msg.data)
                if env["type"] in types:
                    found.append(env)
        except nats.errors.TimeoutError:
            pass
        await sub.unsubscribe()
        if len(found) >= want:
            return found
        await asyncio.sleep(0.2)
    return found


async def test_credits_once_per_course_and_certification_exactly_at_threshold(
        nc: nats.NATS, points_service) -> None:
    await setup_courses(nc)
    mine = await call(nc, c.EP_COURSE_MINE, {"actor": a(HANAKO)})  # hanako opens マイ単位: known here from now on
    assert mine["credits"] == 0 and [p["counted"] for p in mine["progress"]] == [0, 0]

    first = await complete(nc, "machi-101", "hanako")  # by this node's handle
    assert first["status"] == "credited" and first["certificates"] == []
    assert first["completion"]["journal_key"] == f"course:machi-101:{HANAKO.user_id}"
    assert await credit_of(nc, HANAKO) == 2
    again = await complete(nc, "machi-101", HANAKO.global_handle)  # the same person by global handle
    assert again["status"] == "duplicate" and again["completion"]["id"] == first["completion"]["id"]
    again = await complete(nc, "machi-101", HANAKO.user_id)  # and by user id
    assert again["status"] == "duplicate"
    assert await credit_of(nc, HANAKO) == 2  # credited once

    fukushi = await complete(nc, "fukushi-110", HANAKO.global_handle)  # npo-1: 2 + 1 = 3 -> 地域福祉サポーター
    assert fukushi["status"] == "credited"
    assert [x["certification"] for x in fukushi["certificates"]] == ["fukushi"]
    assert await credit_of(nc, HANAKO) == 3  # 3 < 5: no まちづくりリーダー yet
    mine = await call(nc, c.EP_COURSE_MINE, {"actor": a(HANAKO)})
    assert {p["certification"]: (p["counted"], p["required"], p["certificate_id"] is not None)
            for p in mine["progress"]} == {"leader": (3, 5, False), "fukushi": (3, 3, True)}

    leader = await complete(nc, "kankyo-201", HANAKO.global_handle)  # 3 + 3 = 6 >= 5 (fukushi counts only npo-1)
    assert [x["certification"] for x in leader["certificates"]] == ["leader"]
    cert = leader["certificates"][0]
    assert (cert["name"], cert["global_handle"], cert["credits"], cert["node"], cert["status"]) == \
        ("鶴ヶ島 花子", HANAKO.global_handle, 6, NODE, "valid")
    assert cert["token"]  # the holder gets the signed token

    # Nothing is granted twice: a new course and a lowered threshold add no certificate for hanako.
    await call(nc, c.EP_COURSE_PUT, {"actor": a(STAFF), "code": "bosai-120", "title": "防災", "field": "npo-1",
                                     "credits": 1})
    again = await complete(nc, "bosai-120", HANAKO.global_handle)
    assert again["status"] == "credited" and again["certificates"] == []
    await call(nc, c.EP_CERTIFICATION_PUT, {"actor": a(STAFF), "code": "leader", "title": "まちづくりリーダー",
                                            "credits_required": 4})
    mine = await call(nc, c.EP_COURSE_MINE, {"actor": a(HANAKO)})
    assert mine["credits"] == 7 and sorted(x["certification"] for x in mine["certificates"]) == ["fukushi", "leader"]
    listed = (await call(nc, c.EP_CERTIFICATE_LIST, {"actor": a(STAFF)}))["certificates"]
    assert sorted(x["certification"] for x in listed) == ["fukushi", "leader"]
    assert {x["code"]: x["granted"] for x in (await call(nc, c.EP_CERTIFICATION_LIST))["certifications"]} \
        == {"fukushi": 1, "leader": 1}
    assert (await call(nc, c.EP_COURSE_GET, {"code": "machi-101"}))["completions"] == 1

    # The ledger: credits came from system:issuance; the asset sums to zero.
    totals = (await call(nc, lc.EP_LEDGER_TOTALS))["totals"]
    assert totals["credit"] == 0
    assert (await call(nc, lc.EP_LEDGER_BALANCE, {"account": "system:issuance", "asset": "credit"}))["balance"] == -7

    # The facts went out through the outbox: four completions, two grants.
    evs = await events_of(nc, {"CourseCompleted", "CertificationGranted"}, 6)
    assert sorted(e["type"] for e in evs) == ["CertificationGranted"] * 2 + ["CourseCompleted"] * 4
    assert {e["data"]["certificate_id"] for e in evs if e["type"] == "CertificationGranted"} == \
        {x["id"] for x in listed}


async def test_a_person_not_seen_yet_is_credited_when_they_open_their_credits(
        nc: nats.NATS, points_service) -> None:
    await setup_courses(nc)
    out = await complete(nc, "kankyo-201", TARO.global_handle)
    assert out["status"] == "pending" and out["completion"]["person"] is None
    assert (await complete(nc, "kankyo-201", "taro"))["status"] == "duplicate"  # the same handle, short form
    out = await complete(nc, "machi-101", TARO.user_id)  # by user id: also waits (never seen here)
    assert out["status"] == "pending"
    assert await credit_of(nc, TARO) == 0

    mine = await call(nc, c.EP_COURSE_MINE, {"actor": a(TARO)})  # taro logs in and opens マイ単位
    assert mine["credits"] == 5 and sorted(x["status"] for x in mine["completions"]) == ["credited", "credited"]
    assert [x["certification"] for x in mine["certificates"]] == ["leader"]
    assert (await call(nc, c.EP_COURSE_MINE, {"actor": a(TARO)}))["credits"] == 5  # once
    assert (await complete(nc, "machi-101", "taro"))["status"] == "duplicate"
    # Hanako sees only her own: nothing of taro's.
    hers = await call(nc, c.EP_COURSE_MINE, {"actor": a(HANAKO)})
    assert hers["credits"] == 0 and hers["completions"] == [] and hers["certificates"] == []

    # Staff's page looks the person up at the identity service first: then the credits go at once.
    jiro = Actor(user_id=str(uuid.uuid4()), global_handle="jiro@kawagoe", display_name="川越 次郎")
    known = {"user_id": jiro.user_id, "global_handle": jiro.global_handle, "display_name": jiro.display_name}
    out = await call(nc, c.EP_COURSE_COMPLETE, {"actor": a(STAFF), "course": "machi-101", "person": "jiro@kawagoe",
                                                "known": known})
    assert out["status"] == "credited" and out["completion"]["display_name"] == "川越 次郎"
    assert await credit_of(nc, jiro) == 2
    with pytest.raises(errors.BadRequest, match="someone else"):
        await call(nc, c.EP_COURSE_COMPLETE, {"actor": a(STAFF), "course": "kankyo-201", "person": "taro",
                                              "known": known})
    assert await credit_of(nc, jiro) == 2


async def test_certificate_verifies_tampering_fails_revocation_shows(
        nc: nats.NATS, points_service) -> None:
    await setup_courses(nc)
    await call(nc, c.EP_COURSE_MINE, {"actor": a(HANAKO)})
    await complete(nc, "machi-101", "hanako")
    cert = (await complete(nc, "fukushi-110", "hanako"))["certificates"][0]
    token = cert["token"]

    ok = await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": token})
    assert ok["status"] == "valid" and ok["certificate"]["name"] == "鶴ヶ島 花子"
    assert ok["certificate"]["title"] == "地域福祉サポーター" and ok["certificate"]["token"] is None

    # The signature checks with the published key alone (anyone can do this offline).
    keys = (await call(nc, c.EP_CERTIFICATE_JWKS))["keys"]
    header_b64, claims_b64, sig_b64 = token.split(".")
    header = json.loads(b64u_decode(header_b64))
    assert header == {"alg": "EdDSA", "kid": keys[0]["kid"], "typ": c.CERT_TYP} and len(keys) == 1
    Ed25519PublicKey.from_public_bytes(b64u_decode(keys[0]["x"])).verify(
        b64u_decode(sig_b64), f"{header_b64}.{claims_b64}".encode())
    claims = json.loads(b64u_decode(claims_b64))
    assert {k: claims[k] for k in ("iss", "jti", "sub", "name", "credits", "node")} == {
        "iss": NODE, "jti": cert["id"], "sub": HANAKO.global_handle, "name": "鶴ヶ島 花子", "credits": 3,
        "node": NODE}
    assert claims["certification"] == {"code": "fukushi", "title": "地域福祉サポーター"}

    # Tampered: another name under the same signature; a flipped signature; a look-alike signed by another key.
    forged_claims = b64u(json.dumps({**claims, "name": "偽物 次郎"}, separators=(",", ":")).encode())
    bad = await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": f"{header_b64}.{forged_claims}.{sig_b64}"})
    assert bad["status"] == "invalid" and "signature" in bad["reason"] and bad["certificate"] is None
    flipped = sig_b64[:-2] + ("A" if sig_b64[-2] != "A" else "B") + sig_b64[-1]
    assert (await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": f"{header_b64}.{claims_b64}.{flipped}"}))["status"] \
        == "invalid"
    other = sign(claims, header["kid"], Ed25519PrivateKey.generate())
    assert (await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": other}))["status"] == "invalid"
    for junk in ["not-a-token-at-all", "aaaa.bbbb.cccc", base64.b64encode(b"x" * 40).decode()]:
        out = await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": junk})
        assert out["status"] == "invalid" and out["reason"]

    # The public page: what the certificate states; the token only for its holder and staff.
    public = await call(nc, c.EP_CERTIFICATE_GET, {"id": cert["id"]})
    assert public["status"] == "valid" and public["token"] is None and public["name"] == "鶴ヶ島 花子"
    assert (await call(nc, c.EP_CERTIFICATE_GET, {"id": cert["id"], "actor": a(TARO)}))["token"] is None
    assert (await call(nc, c.EP_CERTIFICATE_GET, {"id": cert["id"], "actor": a(HANAKO)}))["token"] == token

    # Revocation: not by the holder (403, nothing changed); by staff with a reason; then verification says so.
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_CERTIFICATE_REVOKE, {"actor": a(HANAKO), "id": cert["id"], "reason": "自分で取消"})
    assert (await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": token}))["status"] == "valid"
    with pytest.raises(errors.BadRequest, match="reason"):
        await call(nc, c.EP_CERTIFICATE_REVOKE, {"actor": a(STAFF), "id": cert["id"], "reason": ""})
    revoked = await call(nc, c.EP_CERTIFICATE_REVOKE, {"actor": a(STAFF), "id": cert["id"],
                                                       "reason": "受講記録の誤り"})
    assert revoked["status"] == "revoked" and revoked["revoke_reason"] == "受講記録の誤り"
    out = await call(nc, c.EP_CERTIFICATE_VERIFY, {"token": token})
    assert out["status"] == "revoked" and out["certificate"]["revoked_at"]
    public = await call(nc, c.EP_CERTIFICATE_GET, {"id": cert["id"]})
    assert public["status"] == "revoked" and public["revoke_reason"] is None  # the reason is for staff
    with pytest.raises(errors.Conflict):
        await call(nc, c.EP_CERTIFICATE_REVOKE, {"actor": a(STAFF), "id": cert["id"], "reason": "二度目"})
    evs = await events_of(nc, {"CertificateRevoked"}, 1)
    assert [e["data"]["certificate_id"] for e in evs] == [cert["id"]]


async def test_non_staff_are_refused_and_nothing_changes(nc: nats.NATS, points_service) -> None:
    await setup_courses(nc)
    await call(nc, c.EP_COURSE_MINE, {"actor": a(HANAKO)})
    before_courses = await call(nc, c.EP_COURSE_LIST)
    before_certs = await call(nc, c.EP_CERTIFICATION_LIST)
    attempts = [
        (c.EP_COURSE_PUT, {"actor": a(HANAKO), "code": "machi-101", "title": "書き換え", "field": "npo-2",
                           "credits": 50}),
        (c.EP_COURSE_PUT, {"actor": a(HANAKO), "code": "new-course", "title": "新講座", "field": "npo-2",
                           "credits": 50}),
        (c.EP_CERTIFICATION_PUT, {"actor": a(HANAKO), "code": "leader", "title": "x", "credits_required": 1}),
        (c.EP_COURSE_COMPLETE, {"actor": a(HANAKO), "course": "kankyo-201", "person": HANAKO.global_handle}),
        (c.EP_COURSE_COMPLETIONS, {"actor": a(HANAKO)}),
        (c.EP_CERTIFICATE_LIST, {"actor": a(HANAKO)}),
    ]
    for endpoint, payload in attempts:
        with pytest.raises(errors.Forbidden) as exc:
            await call(nc, endpoint, payload)
        assert exc.value.code == 403
    assert await call(nc, c.EP_COURSE_LIST) == before_courses
    assert await call(nc, c.EP_CERTIFICATION_LIST) == before_certs
    assert await credit_of(nc, HANAKO) == 0
    assert (await call(nc, c.EP_COURSE_COMPLETIONS, {"actor": a(STAFF)}))["completions"] == []


BAD_INPUT = [
    (c.EP_COURSE_PUT, {"code": "x1", "title": "t", "field": "npo-1", "credits": 0}, 400, "credits"),
    (c.EP_COURSE_PUT, {"code": "x1", "title": "t", "field": "npo-99", "credits": 1}, 400, "unknown field"),
    (c.EP_COURSE_PUT, {"code": "x1", "title": "t", "field": "npo-1", "credits": 1.5}, 400, "credits"),
    (c.EP_COURSE_PUT, {"code": "X Y", "title": "t", "field": "npo-1", "credits": 1}, 400, "code"),
    (c.EP_COURSE_PUT, {"code": "x1", "title": "", "field": "npo-1", "credits": 1}, 400, "title"),
    (c.EP_COURSE_PUT, {"code": "x1", "title": "t", "field": "npo-1", "credits": 1, "starts_on": "2026-05-01",
                       "ends_on": "2026-04-01"}, 400, "before"),
    (c.EP_COURSE_PUT, {"code": "x1", "title": "t", "field": "npo-1", "credits": 1, "extra": 1}, 400, "extra"),
    (c.EP_CERTIFICATION_PUT, {"code": "c1", "title": "t", "credits_required": 3, "courses": ["nothing-here"]},
     422, "unknown courses"),
    (c.EP_CERTIFICATION_PUT, {"code": "c1", "title": "t", "credits_required": 0}, 400, "credits_required"),
    (c.EP_CERTIFICATION_PUT, {"code": "c1", "title": "t", "credits_required": 2, "fields": ["zzz"]}, 400, "field"),
    (c.EP_COURSE_COMPLETE, {"course": "nothing-here", "person": "hanako"}, 404, "no course"),
    (c.EP_COURSE_COMPLETE, {"course": "machi-101", "person": "Hanako Smith!"}, 400, "person"),
    (c.EP_COURSE_COMPLETE, {"course": "machi-101", "person": "hanako", "completed_on": "yesterday"}, 400,
     "completed_on"),
]


async def test_bad_input_is_refused_with_its_reason(nc: nats.NATS, points_service) -> None:
    await setup_courses(nc)
    before = (await call(nc, c.EP_COURSE_LIST), await call(nc, c.EP_CERTIFICATION_LIST))
    for endpoint, payload, code, reason in BAD_INPUT:
        with pytest.raises(errors.ServiceError) as exc:
            await call(nc, endpoint, {"actor": a(STAFF), **payload})
        assert (exc.value.code, reason in exc.value.reason) == (code, True), (payload, exc.value.reason)
    assert (await call(nc, c.EP_COURSE_LIST), await call(nc, c.EP_CERTIFICATION_LIST)) == before
    assert (await call(nc, c.EP_COURSE_COMPLETIONS, {"actor": a(STAFF)}))["completions"] == []


async def test_certificate_lookups_refuse_bad_ids(nc: nats.NATS, points_service) -> None:
    with pytest.raises(errors.BadRequest):
        await call(nc, c.EP_CERTIFICATE_GET, {"id": "../../etc"})
    with pytest.raises(errors.NotFound):
        await call(nc, c.EP_CERTIFICATE_GET, {"id": str(uuid.uuid4())})
    with pytest.raises(errors.NotFound):
        await call(nc, c.EP_CERTIFICATE_REVOKE, {"actor": a(STAFF), "id": str(uuid.uuid4()), "reason": "誤り"})
