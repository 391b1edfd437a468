"""The node's rules per asset, applied by a sweep: expiry of balances left unused, and demurrage (a monthly fee that
keeps a local currency circulating). No NATS, no commits here.

- `expiry_days = N`: a balance on which nothing was posted for N days expires (inactivity expiry, as many point
  programmes do): it moves to `system:expired` in an entry keyed by the account and its last posting, so a sweep run
  twice expires it once, and a balance that moves again starts a new period.
- `demurrage_percent_per_month = p`: on the first sweep of each month, p % of each balance (rounded down) moves to
  `system:demurrage`, keyed by asset, month and account: once per month whatever the number of sweeps.
Both go through the ledger, so every asset still sums to zero and nobody goes below zero.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.ledger import service as ledger
from services.points.ledger.models import assets, balances, journal, postings
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.db import aware as _aware

EXPIRED = "system:expired"
DEMURRAGE = "system:demurrage"


async def set_rules(session: AsyncSession, *, asset: str, expiry_days: int | None,
                    demurrage_percent_per_month: int | None) -> dict[str, Any]:
    if expiry_days is not None and demurrage_percent_per_month is not None:
        raise lc.ASSET_RULE_EXCLUSIVE("an asset has expiry or demurrage, not both")
    done = await session.execute(update(assets).where(assets.c.code == asset).values(
        expiry_days=expiry_days, demurrage_percent_per_month=demurrage_percent_per_month, updated_at=utcnow()))
    if db.rowcount(done) != 1:
        raise lc.ASSET_NOT_FOUND(f"unknown asset {asset!r}")
    return await rules(session, asset)


async def rules(session: AsyncSession, asset: str) -> dict[str, Any]:
    row = (await session.execute(select(assets).where(assets.c.code == asset))).one()
    return {"asset": row.code, "expiry_days": row.expiry_days,
            "demurrage_percent_per_month": row.demurrage_percent_per_month}


async def sweep(session: AsyncSession, *, node: str, now: datetime | None = None) -> dict[str, int]:
    """Apply every asset's rule once for `now`; returns how many entries each rule posted this time."""
    now = now or utcnow()
    entries: list[ledger.Entry] = []
    counts = {"expired": 0, "demurrage": 0}
    for a in (await session.execute(select(assets).where(
            (assets.c.expiry_days.is_not(None)) | (assets.c.demurrage_percent_per_month.is_not(None))))).all():
        held = (await session.execute(select(balances.c.account_id, balances.c.balance).where(
            balances.c.asset == a.code, balances.c.balance > 0).order_by(balances.c.account_id))).all()
        if not held:
            continue
        if a.expiry_days is not None:
            last = dict((await session.execute(
                select(postings.c.account_id, func.max(postings.c.seq))
                .where(postings.c.asset == a.code, postings.c.account_id.in_([h.account_id for h in held]))
                .group_by(postings.c.account_id))).all())
            when = dict((await session.execute(
                select(postings.c.seq, journal.c.created_at)
                .join(journal, journal.c.id == postings.c.journal_id)
                .where(postings.c.seq.in_(list(last.values()))))).all())
            cutoff = now - timedelta(days=a.expiry_days)
            for h in held:
                seq = last.get(h.account_id)
                at = when.get(seq)
                if at is not None and _aware(at) < cutoff:
                    entries.append(ledger.Entry(
                        key=f"expiry:{a.code}:{h.account_id}:{seq}", kind="expiry", actor="sweep",
                        memo=f"unused for {a.expiry_days} days",
                        legs=(ledger.Leg(h.account_id, a.code, -h.balance), ledger.Leg(EXPIRED, a.code, h.balance))))
        if a.demurrage_percent_per_month is not None:
            month = now.strftime("%Y-%m")
            for h in held:
                fee = h.balance * a.demurrage_percent_per_month // 100
                if fee > 0:
                    entries.append(ledger.Entry(
                        key=f"demurrage:{a.code}:{month}:{h.account_id}", kind="demurrage", actor="sweep",
                        memo=f"{a.demurrage_percent_per_month}% for {month}",
                        legs=(ledger.Leg(h.account_id, a.code, -fee), ledger.Leg(DEMURRAGE, a.code, fee))))
    if entries:
        for e, r in zip(entries, await ledger.post_entries(session, entries, node=node), strict=True):
            if isinstance(r, ledger.Posted) and r.status == "posted":
                counts["expired" if e.kind == "expiry" else "demurrage"] += 1
    return counts

