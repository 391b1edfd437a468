"""The operator's ledger endpoints over a real nats-server, on SQLite and PostgreSQL: a batch of entries with one
result each, repeats answered once, refusals with their reasons and nothing written, reversal once, totals zero."""

from __future__ import annotations

from typing import Any

import nats
import pytest

from tests.support.bus import call
from towntip.kernel import errors
from towntip.kernel.contracts import ledger as lc

NODE = "testnode"


def award(key: str, person: str, amount: int, asset: str = "machi-point") -> dict[str, Any]:
    return {"key": key, "kind": "award", "memo": "清掃ボランティア", "legs": [
        {"account": "system:issuance", "asset": asset, "amount": -amount},
        {"account": person, "asset": asset, "amount": amount}]}


def pay(key: str, person: str, to: str, amount: int, asset: str = "machi-point") -> dict[str, Any]:
    return {"key": key, "kind": "transfer", "legs": [
        {"account": person, "asset": asset, "amount": -amount}, {"account": to, "asset": asset, "amount": amount}]}


async def balance(nc: nats.NATS, account: str, asset: str = "machi-point") -> int:
    return (await call(nc, lc.EP_LEDGER_BALANCE, {"account": account, "asset": asset}))["balance"]


async def test_a_batch_posts_each_entry_once(nc: nats.NATS, points_service) -> None:
    batch = {"actor": "operator:test", "entries": [
        award("op-000001", "person:hanako", 30), award("op-000002", "person:taro", 5, "credit"),
        pay("op-000003", "person:hanako", "project:kodomo", 20),
        pay("op-000004", "person:taro", "project:kodomo", 99),  # more than taro has
        award("op-000001", "person:hanako", 30),  # a retry inside the batch
        award("op-000002", "person:taro", 6, "credit"),  # the key again, another payload
    ]}
    out = (await call(nc, lc.EP_LEDGER_POST, batch))["results"]
    assert [(r["key"], r["status"], r["code"]) for r in out] == [
        ("op-000001", "posted", None), ("op-000002", "posted", None), ("op-000003", "posted", None),
        ("op-000004", "refused", 409), ("op-000001", "duplicate", None), ("op-000002", "refused", 409)]
    assert "below zero" in out[3]["reason"] and "different entry" in out[5]["reason"]
    assert out[4]["journal_id"] == out[0]["journal_id"]
    # the whole batch again (a client that did not hear the answer): nothing more is applied
    again = (await call(nc, lc.EP_LEDGER_POST, batch))["results"]
    assert [r["status"] for r in again] == ["duplicate", "duplicate", "duplicate", "refused", "duplicate", "refused"]
    assert (await balance(nc, "person:hanako"), await balance(nc, "project:kodomo")) == (10, 20)
    assert await balance(nc, "person:taro", "credit") == 5
    assert await balance(nc, "system:issuance") == -30
    assert (await call(nc, lc.EP_LEDGER_TOTALS))["totals"] == {"machi-point": 0, "credit": 0}

    # a reversal, once; one that would take the project below zero is refused
    r = await call(nc, lc.EP_LEDGER_REVERSE, {"original_key": "op-000003", "key": "op-rev-0003"})
    assert r["status"] == "posted"
    assert (await balance(nc, "person:hanako"), await balance(nc, "project:kodomo")) == (30, 0)
    with pytest.raises(errors.Conflict, match="already reversed"):
        await call(nc, lc.EP_LEDGER_REVERSE, {"original_key": "op-000003", "key": "op-rev-0003b"})
    assert (await call(nc, lc.EP_LEDGER_REVERSE, {"original_key": "op-000003", "key": "op-rev-0003"}))["status"] \
        == "duplicate"
    await call(nc, lc.EP_LEDGER_POST, {"entries": [pay("op-000005", "person:hanako", "person:taro", 30)]})
    with pytest.raises(errors.Conflict, match="below zero"):  # hanako spent what the award gave
        await call(nc, lc.EP_LEDGER_REVERSE, {"original_key": "op-000001", "key": "op-rev-0001"})
    with pytest.raises(errors.NotFound):
        await call(nc, lc.EP_LEDGER_REVERSE, {"original_key": "op-nothing", "key": "op-rev-0009"})
    assert await balance(nc, "person:hanako") == 0


@pytest.mark.parametrize(("payload", "reason"), [
    ({"entries": [{"key": "op-100001", "legs": [{"account": "person:a", "asset": "machi-point", "amount": 1.5},
                                                 {"account": "system:issuance", "asset": "machi-point",
                                                  "amount": -1.5}]}]}, "amount"),
    ({"entries": [{"key": "op-100002", "legs": [{"account": "bank:a", "asset": "machi-point", "amount": 1},
                                                 {"account": "system:issuance", "asset": "machi-point",
                                                  "amount": -1}]}]}, "account"),
    ({"entries": []}, "entries"),
    ({"entries": [award("op-100003", "person:a", 1)], "extra": 1}, "extra"),
])
async def test_malformed_requests_are_refused_and_write_nothing(
    nc: nats.NATS, points_service, payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(errors.BadRequest, match=reason):
        await call(nc, lc.EP_LEDGER_POST, payload)
    assert (await call(nc, lc.EP_LEDGER_TOTALS))["totals"] == {}


async def test_an_unbalanced_entry_is_refused_with_the_reason(nc: nats.NATS, points_service) -> None:
    out = (await call(nc, lc.EP_LEDGER_POST, {"entries": [{"key": "op-200001", "legs": [
        {"account": "person:a", "asset": "machi-point", "amount": 5},
        {"account": "system:issuance", "asset": "machi-point", "amount": -4}]}]}))["results"]
    assert out == [{"key": "op-200001", "status": "refused", "journal_id": None, "code": 400,
                    "reason": "postings do not sum to zero for machi-point"}]
    assert await balance(nc, "person:a") == 0
