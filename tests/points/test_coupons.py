"""Local currency and coupons over a real nats-server, on SQLite and PostgreSQL: staff award currency (once per
form), a person buys a coupon with it (once per purchase key, never beyond the balance), staff redeem its code once
at the counter, before it expires; who may do what; bad input refused with nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime

import nats
import pytest
from sqlalchemy import update

from services.points.coupons.models import coupons
from tests.support.bus import call
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import ledger as lc

NODE = "testnode"
STAFF = {"user_id": "staff-0001", "global_handle": "suzuki@testnode", "display_name": "鈴木（市民協働課）",
         "roles": ["staff"]}
CITIZEN = {"user_id": "user-0001", "global_handle": "hanako@testnode", "display_name": "山田 花子", "roles": []}
PERSON = "user-0001"


async def currency(nc: nats.NATS, person: str = PERSON) -> int:
    w = (await call(nc, cc.EP_WALLET, {"person": person}))["balances"]
    assert [b["asset"] for b in w] == ["machi-point", "credit", "local-currency"]  # points, credits, currency
    return next(b["balance"] for b in w if b["asset"] == "local-currency")


HALL = {"code": "kominkan-room", "title_ja": "公民館 会議室 1時間", "title_en": "Community hall room, 1 hour",
        "issuer": "中央公民館", "price": 300, "valid_days": 90}


async def test_award_buy_and_redeem_once(nc: nats.NATS, points_service) -> None:
    with pytest.raises(errors.Forbidden):
        await call(nc, cc.EP_COUPON_TYPE_PUT, {"actor": CITIZEN, **HALL})
    assert (await call(nc, cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, **HALL}))["price"] == 300
    await call(nc, cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, **HALL, "code": "city-bus", "title_ja": "市営バス 1乗車",
                                           "title_en": "City bus, one ride", "issuer": "市営バス", "price": 150})
    assert [t["code"] for t in (await call(nc, cc.EP_COUPON_TYPES))["types"]] == ["city-bus", "kominkan-room"]

    buy = {"person": PERSON, "type_code": "kominkan-room", "key": "form-0000000000000001"}
    with pytest.raises(errors.Conflict, match="not enough local currency"):
        await call(nc, cc.EP_COUPON_BUY, buy)

    award = {"actor": STAFF, "person": PERSON, "amount": 500, "memo": "公園清掃ボランティア",
             "key": "award-000000000000001"}
    with pytest.raises(errors.Forbidden):
        await call(nc, cc.EP_CURRENCY_AWARD, {**award, "actor": CITIZEN})
    for _ in range(2):  # the form sent twice awards once
        await call(nc, cc.EP_CURRENCY_AWARD, award)
    assert await currency(nc) == 500

    first = await call(nc, cc.EP_COUPON_BUY, buy)
    again = await call(nc, cc.EP_COUPON_BUY, buy)  # a double click
    assert (first["status"], again["status"]) == ("bought", "duplicate")
    assert first["coupon"]["id"] == again["coupon"]["id"] and first["coupon"]["code"] == again["coupon"]["code"]
    assert first["currency_left"] == again["currency_left"] == 200 == await currency(nc)
    code = first["coupon"]["code"]
    assert len(code) == 10 and first["coupon"]["status"] == "active"
    with pytest.raises(errors.Conflict, match="not enough"):  # 200 left, the hall costs 300
        await call(nc, cc.EP_COUPON_BUY, {**buy, "key": "form-0000000000000002"})
    with pytest.raises(errors.Conflict, match="another purchase"):  # the same key for another coupon
        await call(nc, cc.EP_COUPON_BUY, {**buy, "type_code": "city-bus"})

    mine = (await call(nc, cc.EP_COUPON_MINE, {"person": PERSON}))["coupons"]
    assert [(c["code"], c["status"]) for c in mine] == [(code, "active")]

    with pytest.raises(errors.Forbidden):
        await call(nc, cc.EP_COUPON_REDEEM, {"actor": CITIZEN, "code": code})
    with pytest.raises(errors.NotFound):
        await call(nc, cc.EP_COUPON_REDEEM, {"actor": STAFF, "code": "ABCDEFGHJK"})
    used = await call(nc, cc.EP_COUPON_REDEEM, {"actor": STAFF, "code": f"{code[:5].lower()}-{code[5:]}"})
    assert used["status"] == "redeemed" and used["redeemed_at"]
    with pytest.raises(errors.Conflict, match="already used"):
        await call(nc, cc.EP_COUPON_REDEEM, {"actor": STAFF, "code": code})
    assert (await call(nc, lc.EP_LEDGER_TOTALS))["totals"] == {"local-currency": 0}


async def test_an_expired_coupon_is_refused(nc: nats.NATS, points_service) -> None:
    await call(nc, cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, **HALL})
    await call(nc, cc.EP_CURRENCY_AWARD, {"actor": STAFF, "person": PERSON, "amount": 300, "memo": "資源回収",
                                          "key": "award-000000000000009"})
    bought = await call(nc, cc.EP_COUPON_BUY, {"person": PERSON, "type_code": "kominkan-room",
                                               "key": "form-0000000000000009"})
    async with points_service.sessions() as s, s.begin():
        await s.execute(update(coupons).values(expires_at=datetime(2025, 1, 1, tzinfo=UTC)))
    with pytest.raises(errors.Conflict, match="expired"):
        await call(nc, cc.EP_COUPON_REDEEM, {"actor": STAFF, "code": bought["coupon"]["code"]})
    assert [c["status"] for c in (await call(nc, cc.EP_COUPON_MINE, {"person": PERSON}))["coupons"]] == ["expired"]


@pytest.mark.parametrize(("endpoint", "payload", "reason"), [
    (cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, **HALL, "price": 0}, "price"),
    (cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, **HALL, "code": "Bad Code"}, "code"),
    (cc.EP_CURRENCY_AWARD, {"actor": STAFF, "person": PERSON, "amount": -5, "memo": "x",
                            "key": "award-000000000000002"}, "amount"),
    (cc.EP_CURRENCY_AWARD, {"actor": STAFF, "person": PERSON, "amount": 1.5, "memo": "x",
                            "key": "award-000000000000003"}, "amount"),
    (cc.EP_COUPON_BUY, {"person": PERSON, "type_code": "kominkan-room", "key": "short"}, "key"),
    (cc.EP_COUPON_REDEEM, {"actor": STAFF, "code": "ABC"}, "10 letters and digits"),
    (cc.EP_COUPON_REDEEM, {"actor": {**STAFF, "roles": ["staff"], "extra": 1}, "code": "ABCDEFGHJK"}, "extra"),
])
async def test_bad_input_is_refused_and_changes_nothing(
    nc: nats.NATS, points_service, endpoint: str, payload: dict, reason: str
) -> None:
    with pytest.raises(errors.BadRequest, match=reason):
        await call(nc, endpoint, payload)
    assert (await call(nc, cc.EP_COUPON_TYPES))["types"] == []
    assert (await call(nc, lc.EP_LEDGER_TOTALS))["totals"] == {}


async def test_a_touch_in_coupon_mode_uses_the_owners_coupon_once(nc: nats.NATS, points_service) -> None:
    """On the bus: the terminal is in coupon mode for `city-bus`; the rider's bound card uses one ride."""
    import json
    from datetime import timedelta

    from towntip.kernel.bus.envelope import utcnow
    from towntip.kernel.contracts.points import Tap

    await call(nc, cc.EP_COUPON_TYPE_PUT, {"actor": STAFF, **HALL, "code": "city-bus", "title_ja": "市営バス 1乗車",
                                           "title_en": "City bus, one ride", "issuer": "市営バス", "price": 150})
    await call(nc, cc.EP_CURRENCY_AWARD, {"actor": STAFF, "person": PERSON, "amount": 300, "memo": "資源回収",
                                          "key": "award-000000000000777"})
    for n in (1, 2):
        await call(nc, cc.EP_COUPON_BUY,
                   {"person": PERSON, "type_code": "city-bus", "key": f"form-00000000000007{n:02d}"})
    card = "0123456789ABCDEF"
    js = nc.jetstream()
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)

    async def touch(n: int, idm: str = card, mode: str = "coupon") -> dict:
        t = Tap(tap_id=f"bus-touch-{n:03d}", terminal_id="bus-12", card_idm=idm, mode=mode,  # type: ignore[arg-type]
                ref="city-bus" if mode == "coupon" else None, tapped_at=utcnow() - timedelta(seconds=1))
        await js.publish(subjects.edge(NODE, "bus-12", "tap"), t.model_dump_json().encode(),
                         headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: inbox})
        msg = await sub.next_msg(timeout=15)
        return {"body": json.loads(msg.data), "error": (msg.headers or {}).get(subjects.HDR_SERVICE_ERROR)}

    code = (await touch(0, mode="register"))["body"]["display"]  # the rider registered the card beforehand
    await call(nc, "cards.register_code", {"person": PERSON, "code": code})
    first = await touch(1)
    assert first["body"]["status"] == "credited" and "残り1枚" in first["body"]["display"], first
    assert "残り0枚" in (await touch(2))["body"]["display"]
    third = await touch(3)
    assert third["error"] and "no active 'city-bus' coupon" in third["error"], third
    stranger = await touch(4, "FEDCBA9876543210")
    assert stranger["error"] and "not registered" in stranger["error"]
    statuses = sorted(c["status"] for c in (await call(nc, cc.EP_COUPON_MINE, {"person": PERSON}))["coupons"])
    assert statuses == ["redeemed", "redeemed"]
