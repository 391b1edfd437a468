"""The node's rules per asset over a real nats-server, on SQLite and PostgreSQL: demurrage takes its percentage once
a month, expiry takes a balance left unused for N days once; both through the ledger (sums stay zero)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import nats
import pytest

from tests.points.test_coupons import STAFF
from tests.support.bus import call
from towntip.kernel import errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import ledger as lc


async def balance(nc: nats.NATS, account: str, asset: str) -> int:
    return (await call(nc, lc.EP_LEDGER_BALANCE, {"account": account, "asset": asset}))["balance"]


async def sweep(nc: nats.NATS, at: Any) -> dict[str, int]:
    return await call(nc, lc.EP_ASSET_SWEEP, {"at": at.isoformat()})


async def test_demurrage_once_a_month(nc: nats.NATS, points_service) -> None:
    rules = await call(nc, lc.EP_ASSET_RULES, {"asset": "local-currency", "demurrage_percent_per_month": 10})
    assert rules == {"asset": "local-currency", "expiry_days": None, "demurrage_percent_per_month": 10}
    for person, amount in (("user-0001", 500), ("user-0002", 9)):
        await call(nc, cc.EP_CURRENCY_AWARD, {"actor": STAFF, "person": person, "amount": amount, "memo": "清掃",
                                              "key": f"award-{person}-0000000"})
    now = utcnow()
    assert await sweep(nc, now) == {"expired": 0, "demurrage": 1}  # 9 × 10 % rounds down to nothing
    assert await sweep(nc, now + timedelta(minutes=5)) == {"expired": 0, "demurrage": 0}  # once a month
    assert (await balance(nc, "person:user-0001", "local-currency"), await balance(
        nc, "person:user-0002", "local-currency")) == (450, 9)
    assert await sweep(nc, now + timedelta(days=32)) == {"expired": 0, "demurrage": 1}
    assert await balance(nc, "person:user-0001", "local-currency") == 405
    assert await balance(nc, "system:demurrage", "local-currency") == 95
    assert (await call(nc, lc.EP_LEDGER_TOTALS))["totals"] == {"local-currency": 0}


async def test_unused_balances_expire_once(nc: nats.NATS, points_service) -> None:
    await call(nc, lc.EP_ASSET_RULES, {"asset": "machi-point", "expiry_days": 365})
    await call(nc, lc.EP_LEDGER_POST, {"entries": [{"key": "op-award-0001", "legs": [
        {"account": "system:issuance", "asset": "machi-point", "amount": -30},
        {"account": "person:user-0001", "asset": "machi-point", "amount": 30}]}]})
    now = utcnow()
    assert await sweep(nc, now + timedelta(days=300)) == {"expired": 0, "demurrage": 0}  # used recently enough
    assert await sweep(nc, now + timedelta(days=366)) == {"expired": 1, "demurrage": 0}
    assert await sweep(nc, now + timedelta(days=400)) == {"expired": 0, "demurrage": 0}
    assert await balance(nc, "person:user-0001", "machi-point") == 0
    assert await balance(nc, "system:expired", "machi-point") == 30
    assert (await call(nc, lc.EP_LEDGER_TOTALS))["totals"] == {"machi-point": 0}


async def test_bad_rules_are_refused_and_change_nothing(nc: nats.NATS, points_service) -> None:
    with pytest.raises(errors.Unprocessable, match="not both"):
        await call(nc, lc.EP_ASSET_RULES, {"asset": "credit", "expiry_days": 30, "demurrage_percent_per_month": 2})
    with pytest.raises(errors.NotFound):
        await call(nc, lc.EP_ASSET_RULES, {"asset": "gold", "expiry_days": 30})
    with pytest.raises(errors.BadRequest):
        await call(nc, lc.EP_ASSET_RULES, {"asset": "credit", "demurrage_percent_per_month": 80})
    rules = await call(nc, lc.EP_ASSET_RULES, {"asset": "credit"})  # no rule: balances keep
    assert rules == {"asset": "credit", "expiry_days": None, "demurrage_percent_per_month": None}


async def test_the_operator_sets_a_rule_from_the_cli(nc: nats.NATS, nats_server, points_service, capsys) -> None:
    from tests.edge.test_cli_edge import cli

    base = ["points", "asset-rules", "--nats-url", nats_server.url, "--node", "testnode"]
    assert await cli(*base, "--asset", "local-currency", "--demurrage-percent", "2") == 0
    assert capsys.readouterr().out == "local-currency: 2% of each balance goes each month\n"
    assert await cli(*base, "--asset", "machi-point", "--expiry-days", "730") == 0
    assert await cli(*base, "--asset", "credit", "--none") == 0
    assert capsys.readouterr().out.splitlines() == ["machi-point: balances unused for 730 days expire",
                                                    "credit: balances keep"]
    assert await cli(*base, "--asset", "local-currency", "--demurrage-percent", "90") == 2  # checked before sending
    assert await cli(*base, "--asset", "gold", "--none") == 1  # the service's 404
    assert "unknown asset 'gold'" in capsys.readouterr().err
    rules = await call(nc, lc.EP_ASSET_RULES, {"asset": "local-currency", "demurrage_percent_per_month": 2})
    assert rules["demurrage_percent_per_month"] == 2  # the refused 90 changed nothing
