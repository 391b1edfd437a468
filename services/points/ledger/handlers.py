"""NATS adapters of the ledger: the operator's endpoints (admin.*: the gateway's NATS user may not call them)."""

from __future__ import annotations

from services.points.ledger import rules as asset_rules_
from services.points.ledger import service as ledger
from towntip.kernel import errors
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.uow import UnitOfWork


def _result(key: str, r: ledger.PostResult) -> lc.EntryResult:
    if isinstance(r, ledger.Posted):
        return lc.EntryResult(key=key, status=r.status, journal_id=r.journal_id)
    return lc.EntryResult(key=key, status="refused", code=r.code, reason=r.reason)


def add_endpoints(eps: Endpoints, *, tx: UnitOfWork, node: str) -> None:
    @eps.add(lc.EP_LEDGER_POST, lc.PostIn, max_bytes=1024 * 1024)
    async def post(q: lc.PostIn) -> lc.PostOut:
        entries = [ledger.Entry(key=e.key, kind=e.kind, memo=e.memo, actor=q.actor,
                                legs=tuple(ledger.Leg(g.account, g.asset, g.amount) for g in e.legs))
                   for e in q.entries]
        results = await tx.write(lambda s, _now: ledger.post_entries(s, entries, node=node))
        return lc.PostOut(results=[_result(e.key, r) for e, r in zip(entries, results, strict=True)])

    @eps.add(lc.EP_LEDGER_REVERSE, lc.ReverseIn)
    async def reverse(q: lc.ReverseIn) -> lc.EntryResult:
        r = await tx.write(lambda s, _now: ledger.reverse(s, original_key=q.original_key, key=q.key,
                                                    node=node, actor=q.actor, memo=q.memo))
        if isinstance(r, errors.ServiceError):
            raise r
        return _result(q.key, r)

    @eps.add(lc.EP_LEDGER_BALANCE, lc.BalanceIn)
    async def balance(q: lc.BalanceIn) -> lc.AccountBalance:
        return lc.AccountBalance(account=q.account, asset=q.asset,
                                 balance=await tx.read(lambda s: ledger.balance(s, q.account, q.asset)))

    @eps.add(lc.EP_ASSET_RULES, lc.AssetRulesIn)
    async def asset_rules(q: lc.AssetRulesIn) -> lc.AssetRules:
        return lc.AssetRules(**await tx.write(lambda s, _now: asset_rules_.set_rules(
            s, asset=q.asset, expiry_days=q.expiry_days, demurrage_percent_per_month=q.demurrage_percent_per_month)))

    @eps.add(lc.EP_ASSET_SWEEP, lc.SweepIn)
    async def sweep(q: lc.SweepIn) -> lc.Swept:
        return lc.Swept(**await tx.write(lambda s, _now: asset_rules_.sweep(s, node=node, now=q.at)))

    @eps.add(lc.EP_LEDGER_TOTALS)
    async def totals(_: None) -> lc.Totals:
        return lc.Totals(totals=await tx.read(ledger.totals_by_asset))
