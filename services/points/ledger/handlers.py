"""The ledger's endpoint table: the operator's endpoints (admin.*: the gateway's NATS user may not call them)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.points.ledger import rules as asset_rules_
from services.points.ledger import service as ledger
from towntip.kernel import errors
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.domain import OPERATOR, Domain, read, write


def _result(key: str, r: ledger.PostResult) -> lc.EntryResult:
    if isinstance(r, ledger.Posted):
        return lc.EntryResult(key=key, status=r.status, journal_id=r.journal_id)
    return lc.EntryResult(key=key, status="refused", code=r.code, reason=r.reason)


async def post(*, session: AsyncSession, data: lc.PostIn, node: str) -> lc.PostOut:
    """Each entry posted or refused on its own (a refused entry is reported in its result, not raised)."""
    entries = [ledger.Entry(key=e.key, kind=e.kind, memo=e.memo, actor=data.actor,
                            legs=tuple(ledger.Leg(g.account, g.asset, g.amount) for g in e.legs))
               for e in data.entries]
    results = await ledger.post_entries(session, entries, node=node)
    return lc.PostOut(results=[_result(e.key, r) for e, r in zip(entries, results, strict=True)])


async def reverse(*, session: AsyncSession, data: lc.ReverseIn, node: str) -> lc.EntryResult:
    r = await ledger.reverse(session, original_key=data.original_key, key=data.key, node=node, actor=data.actor,
                             memo=data.memo)
    if isinstance(r, errors.ServiceError):
        raise r
    return _result(data.key, r)


async def balance(*, session: AsyncSession, data: lc.BalanceIn) -> lc.AccountBalance:
    return lc.AccountBalance(account=data.account, asset=data.asset,
                             balance=await ledger.balance(session, data.account, data.asset))


async def asset_rules(*, session: AsyncSession, data: lc.AssetRulesIn) -> lc.AssetRules:
    return lc.AssetRules(**await asset_rules_.set_rules(
        session, asset=data.asset, expiry_days=data.expiry_days,
        demurrage_percent_per_month=data.demurrage_percent_per_month))


async def sweep(*, session: AsyncSession, data: lc.SweepIn, node: str) -> lc.Swept:
    return lc.Swept(**await asset_rules_.sweep(session, node=node, now=data.at))


async def totals(*, session: AsyncSession) -> lc.Totals:
    return lc.Totals(totals=await ledger.totals_by_asset(session))


DOMAIN = Domain("ledger", refusals=(
    lc.LEDGER_BAD_KEY, lc.LEDGER_BAD_KIND, lc.LEDGER_BAD_LEGS, lc.LEDGER_BAD_ACCOUNT, lc.LEDGER_UNKNOWN_ASSET,
    lc.LEDGER_BAD_AMOUNT, lc.LEDGER_ACCOUNT_TWICE, lc.LEDGER_UNBALANCED, lc.LEDGER_TEXT_TOO_LONG, lc.LEDGER_KEY_REUSED,
    lc.LEDGER_INSUFFICIENT, lc.LEDGER_ENTRY_NOT_FOUND, lc.LEDGER_REVERSAL_FINAL, lc.LEDGER_ALREADY_REVERSED,
    lc.ASSET_RULE_EXCLUSIVE, lc.ASSET_NOT_FOUND,
), ops=(
    write(lc.EP_LEDGER_POST, lc.PostIn, lc.PostOut, post, role=OPERATOR, max_bytes=1024 * 1024),
    write(lc.EP_LEDGER_REVERSE, lc.ReverseIn, lc.EntryResult, reverse, role=OPERATOR),
    read(lc.EP_LEDGER_BALANCE, lc.BalanceIn, lc.AccountBalance, balance, role=OPERATOR),
    write(lc.EP_ASSET_RULES, lc.AssetRulesIn, lc.AssetRules, asset_rules, role=OPERATOR),
    write(lc.EP_ASSET_SWEEP, lc.SweepIn, lc.Swept, sweep, role=OPERATOR),
    read(lc.EP_LEDGER_TOTALS, None, lc.Totals, totals, role=OPERATOR),
))
