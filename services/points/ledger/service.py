"""The double-entry ledger of a node: assets, accounts, journal entries and their postings. No NATS, no commits here.

Rules it keeps (tests/test_ledger_model.py checks them against a model with Hypothesis, on both databases):
- amounts are integers; each entry's postings sum to zero per asset, so per asset all balances sum to zero always;
- an entry carries an idempotency key made where the action happened: the same key with the same payload is a
  duplicate (answered with the first result, applied once), with another payload a conflict (409), nothing written;
- postings are never changed or deleted (database triggers refuse it); an entry is corrected by its reversal, once;
- people, cards, projects and events never go below zero: an entry that would is refused (409) and writes nothing.
  Only system accounts (issuance, redemption, ...) may, and they keep no running balance (see `system_balance`).

Accounts are `<kind>:<id>`: person:<identity user id>, card:<keyed hash of the IDm>, project:<id>, event:<code>,
system:<name>. They are created on first use.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.ledger.models import accounts, assets, balances, journal, postings
from services.points.tables import bus
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.bus.outbox import announcement_rows
from towntip.kernel.contracts import ledger as lc

SERVICE = "points"
ISSUANCE = "system:issuance"  # where issued points, credits and currency come from: its balance is minus all issued
ACCOUNT_KINDS = ("person", "card", "project", "event", "system")
ACCOUNT_RE = re.compile(r"^(person|card|project|event|system):[A-Za-z0-9_.:-]{1,90}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.:@-]{8,200}$")
KIND_RE = re.compile(r"^[a-z][a-z_]{1,31}$")
MAX_LEGS = 64
MAX_AMOUNT = 10**12


@functools.lru_cache(maxsize=4096)
def _valid_account(account: str) -> bool:
    """ACCOUNT_RE, remembered: a batch names the same accounts (issuance, a card, a person) again and again."""
    return ACCOUNT_RE.fullmatch(account) is not None


def may_go_negative(account: str) -> bool:
    return account.startswith("system:")


@dataclass(frozen=True)
class Leg:
    account: str
    asset: str
    amount: int


@dataclass(frozen=True)
class Entry:
    """One business action: its legs sum to zero per asset."""

    key: str
    kind: str
    legs: tuple[Leg, ...]
    actor: str = ""
    memo: str = ""
    reverses: str | None = None  # the journal id of the entry this one undoes
    # What the action said, hashed by the caller when it says more than the legs do (a tap: its terminal, time,
    # card, role): a repeat is told from another action under the same key by this hash.
    digest: str | None = None

    def payload_hash(self) -> str:
        """What the entry says, in a canonical form: the same action retried hashes the same, whoever retries it."""
        if self.digest is not None:
            return self.digest
        cached = self.__dict__.get("_hash")
        if cached is None:
            legs = sorted((leg.account, leg.asset, leg.amount) for leg in self.legs)
            body = {"kind": self.kind, "legs": legs, "memo": self.memo, "reverses": self.reverses}
            cached = hashlib.sha256(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
            object.__setattr__(self, "_hash", cached)
        return cached


@dataclass
class Posted:
    key: str
    journal_id: str
    status: str  # posted | duplicate


PostResult = Posted | errors.ServiceError


@dataclass
class Batch:
    """What post_batch did: one result per entry, in order, and the running balances it left."""

    results: list[PostResult]
    # (account, asset) -> its balance after the batch, for every account the batch posted to that keeps a running
    # balance (people, cards, projects, events; system accounts keep none).
    balances: dict[tuple[str, str], int] = field(default_factory=dict)


def check_entry(entry: Entry, known_assets: set[str], *, empty_ok: bool = False) -> errors.ServiceError | None:
    """What is wrong with an entry on its own (before looking at balances), or None."""
    if not KEY_RE.fullmatch(entry.key):
        return lc.LEDGER_BAD_KEY("an idempotency key is 8-200 characters of A-Z a-z 0-9 _ . : @ -")
    if not KIND_RE.fullmatch(entry.kind):
        return lc.LEDGER_BAD_KIND(f"bad entry kind {entry.kind!r}")
    if empty_ok and not entry.legs:
        pass  # an action that moved nothing (a tap at an event worth 0 points): recorded in the journal alone
    elif not 2 <= len(entry.legs) <= MAX_LEGS:
        return lc.LEDGER_BAD_LEGS(f"an entry has 2 to {MAX_LEGS} postings")
    seen: set[tuple[str, str]] = set()
    sums: dict[str, int] = defaultdict(int)
    for leg in entry.legs:
        if not _valid_account(leg.account):
            return lc.LEDGER_BAD_ACCOUNT(
                f"bad account {leg.account!r} (kind:id, kind one of {', '.join(ACCOUNT_KINDS)})")
        if leg.asset not in known_assets:
            return lc.LEDGER_UNKNOWN_ASSET(f"unknown asset {leg.asset!r}")
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount == 0 \
                or abs(leg.amount) > MAX_AMOUNT:
            return lc.LEDGER_BAD_AMOUNT(f"an amount is a non-zero integer of at most {MAX_AMOUNT}")
        if (leg.account, leg.asset) in seen:
            return lc.LEDGER_ACCOUNT_TWICE(f"{leg.account} appears twice for {leg.asset} in one entry")
        seen.add((leg.account, leg.asset))
        sums[leg.asset] += leg.amount
    unbalanced = sorted(a for a, s in sums.items() if s)
    if unbalanced:
        return lc.LEDGER_UNBALANCED(f"postings do not sum to zero for {', '.join(unbalanced)}")
    if len(entry.actor) > 100 or len(entry.memo) > 200:
        return lc.LEDGER_TEXT_TOO_LONG("actor is at most 100 and memo at most 200 characters")
    return None


async def asset_codes(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(assets.c.code))).scalars())


# Assets this process has seen in each database (engine): only migrations add assets and nothing removes one, so an
# asset once seen stays known; an asset not seen yet is looked up again (never cached as unknown).
_seen_assets: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


async def _known_assets(session: AsyncSession, wanted: set[str]) -> set[str]:
    """The known asset codes, read from the database only when `wanted` names one this process has not seen yet
    (a tap batch then costs no round trip for them)."""
    bind = session.get_bind()
    seen = _seen_assets.get(bind)
    if seen is None or not wanted <= seen:
        seen = _seen_assets[bind] = await asset_codes(session)
    return seen


async def _locked_balances(session: AsyncSession, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Current balances of the (account, asset) pairs, their rows locked until commit (PostgreSQL; SQLite has one
    writer at a time anyway), in one order so concurrent entries on the same accounts queue instead of deadlocking."""
    if not pairs:
        return {}
    ids = sorted({a for a, _ in pairs})
    stmt = (select(balances.c.account_id, balances.c.asset, balances.c.balance)
            .where(db.among(session, balances.c.account_id, ids))
            .order_by(balances.c.account_id, balances.c.asset))
    if db.dialect_of(session) == "postgresql":
        stmt = stmt.with_for_update()
    wanted = set(pairs)
    return {(r.account_id, r.asset): r.balance for r in await session.execute(stmt)
            if (r.account_id, r.asset) in wanted}


async def post_entries(session: AsyncSession, entries: Sequence[Entry], *, node: str,
                       announce: bool = True) -> list[PostResult]:
    """Post a batch of entries in the caller's transaction; one result per entry, in order (see post_batch)."""
    return (await post_batch(session, entries, node=node, announce=announce)).results


AlsoWrite = Callable[[list[PostResult]], Sequence[db.Rows]]


async def post_batch(session: AsyncSession, entries: Sequence[Entry], *, node: str, announce: bool = True,
                     now: datetime | None = None, empty_ok: bool = False, open_accounts: Iterable[str] = (),
                     also: AlsoWrite | None = None, keys_are_new: bool = False) -> Batch:
    """The ledger's one writer: post a batch of entries in the caller's transaction.

    An entry that is wrong, a conflicting repeat or one that would take a person, card, project or event below zero
    gets its error and writes nothing; the others are written together (one statement for the inserts on
    PostgreSQL, one for the debits). Every money path posts through here, taps included:
    - `announce`: an EntryPosted event per entry written (taps announce their own TapRecorded instead);
    - `empty_ok`: an entry without legs is recorded in the journal alone (a tap worth 0 points);
    - `open_accounts`: accounts to create if new even when no leg names them (a card whose tap earned nothing);
    - `also(results)`: rows written in the same statement as the entries, made once their journal ids are known
      (a tap's row names its entry);
    - `keys_are_new`: the caller's inbox, in this transaction, already told repeats apart (taps): the journal is
      not asked, and a key found there all the same fails the statement on its unique index (IntegrityError: the
      transaction rolls back, and the redelivery finds the inbox's record)."""
    known = await _known_assets(session, {leg.asset for e in entries for leg in e.legs})
    results: list[PostResult | None] = [None] * len(entries)
    for i, e in enumerate(entries):
        results[i] = check_entry(e, known, empty_ok=empty_ok)

    # Repeats of keys already in the journal.
    keys = [] if keys_are_new else sorted({e.key for i, e in enumerate(entries) if results[i] is None})
    stored = {}
    if keys:
        rows = await session.execute(select(journal.c.idempotency_key, journal.c.id, journal.c.payload_hash)
                                     .where(db.among(session, journal.c.idempotency_key, keys)))
        stored = {r.idempotency_key: (r.id, r.payload_hash) for r in rows}
    # Balances: only an account that some entry here debits can go below zero. Those are read and locked (with
    # the credits to them tracked too); a credit to any other account needs no look at its balance.
    candidates = [i for i, e in enumerate(entries) if results[i] is None and e.key not in stored]
    debited = {(leg.account, leg.asset) for i in candidates for leg in entries[i].legs
               if leg.amount < 0 and not may_go_negative(leg.account)}
    running = await _locked_balances(session, sorted(debited))
    now = now or utcnow()
    journal_rows: list[dict[str, Any]] = []
    posting_rows: list[dict[str, Any]] = []
    posted_events: list[lc.EntryPosted] = []
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    new_accounts: dict[str, str] = {a: a.split(":", 1)[0] for a in open_accounts}
    written: dict[str, tuple[str, str]] = {}  # key -> (journal id, payload hash) of entries written by this batch
    for i, e in enumerate(entries):
        if results[i] is not None:
            continue
        first = stored.get(e.key) or written.get(e.key)
        if first is not None:  # a repeat: of an entry in the journal, or of one earlier in this batch
            results[i] = (
                Posted(key=e.key, journal_id=first[0], status="duplicate") if first[1] == e.payload_hash()
                else lc.LEDGER_KEY_REUSED(f"idempotency key {e.key!r} was already used for a different entry"))
            continue
        if debited:  # (a batch that debits no guarded account, e.g. taps from issuance, skips this)
            after = {(leg.account, leg.asset): running.get((leg.account, leg.asset), 0) + leg.amount
                     for leg in e.legs if (leg.account, leg.asset) in debited}
            short = sorted(f"{a} ({asset})" for (a, asset), b in after.items() if b < 0)
            if short:  # refused: nothing written, and the key stays free
                results[i] = lc.LEDGER_INSUFFICIENT(f"not enough to pay: {', '.join(short)} would go below zero "
                                             "/ 残高が足りません")
                continue
            running.update(after)
        jid = new_id()
        digest = e.payload_hash()
        written[e.key] = (jid, digest)
        journal_rows.append({"id": jid, "idempotency_key": e.key, "kind": e.kind, "payload_hash": digest,
                             "created_at": now, "reverses": e.reverses, "actor": e.actor, "memo": e.memo})
        for leg in e.legs:
            posting_rows.append({"journal_id": jid, "account_id": leg.account, "asset": leg.asset,
                                 "amount": leg.amount})
            if leg.account not in new_accounts:
                new_accounts[leg.account] = leg.account.split(":", 1)[0]
            if not may_go_negative(leg.account):
                deltas[(leg.account, leg.asset)] += leg.amount
        results[i] = Posted(key=e.key, journal_id=jid, status="posted")
        if announce:
            posted_events.append(lc.EntryPosted(
                key=e.key, kind=e.kind, journal_id=jid, reverses=e.reverses, memo=e.memo,
                legs=[lc.PostedLeg(account=leg.account, asset=leg.asset, amount=leg.amount) for leg in e.legs],
            ))

    after_batch: dict[tuple[str, str], int] = {}
    if journal_rows:
        credits = {k: d for k, d in deltas.items() if d > 0}
        debits = {k: d for k, d in deltas.items() if d < 0}
        # Credits are added by an upsert (in one lock order: sorted), which answers the balances it leaves.
        credited = await db.write_rows(session, [
            db.Rows(accounts, [{"id": a, "kind": k, "may_go_negative": may_go_negative(a), "created_at": now}
                               for a, k in sorted(new_accounts.items())],
                    conflict=lambda ins: ins.on_conflict_do_nothing(index_elements=["id"])),
            db.Rows(journal, journal_rows),
            db.Rows(postings, posting_rows),
            db.Rows(balances, [{"account_id": a, "asset": s, "balance": d, "may_go_negative": False}
                               for (a, s), d in sorted(credits.items())],
                    conflict=lambda ins: ins.on_conflict_do_update(
                        index_elements=["account_id", "asset"],
                        set_={"balance": balances.c.balance + ins.excluded.balance}),
                    returning=(balances.c.account_id, balances.c.asset, balances.c.balance)),
            announcement_rows(bus, posted_events, node=node, at=now),
            *(also(results) if also is not None else ()),  # type: ignore[arg-type]
        ])
        await _debit(session, debits)
        after_batch = {(r.account_id, r.asset): int(r.balance) for r in credited}
        after_batch.update((pair, running[pair]) for pair in debited if pair in deltas)  # locked and tracked
    return Batch(results, after_batch)  # type: ignore[arg-type]


async def _debit(session: AsyncSession, debits: dict[tuple[str, str], int]) -> None:
    """Take the debits off existing balance rows (they exist: the entry was checked against them, locked).

    Not by the upsert: a proposed row with a negative amount would fail the CHECK before the conflict turned it
    into an update, on both databases. One statement on PostgreSQL (arrays unnested), an executemany on SQLite."""
    if not debits:
        return
    items = sorted(debits.items())
    if db.dialect_of(session) == "postgresql":
        d = (select(func.unnest(bindparam("ids", [a for (a, _), _ in items],
                                          type_=postgresql.ARRAY(balances.c.account_id.type))).label("account_id"),
                    func.unnest(bindparam("assets", [s for (_, s), _ in items],
                                          type_=postgresql.ARRAY(balances.c.asset.type))).label("asset"),
                    func.unnest(bindparam("deltas", [v for _, v in items],
                                          type_=postgresql.ARRAY(balances.c.balance.type))).label("delta"))
             .subquery())
        await session.execute(update(balances).where(balances.c.account_id == d.c.account_id,
                                                     balances.c.asset == d.c.asset)
                              .values(balance=balances.c.balance + d.c.delta))
        return
    await session.execute(
        update(balances).where(balances.c.account_id == bindparam("a"), balances.c.asset == bindparam("s"))
        .values(balance=balances.c.balance + bindparam("d")),
        [{"a": a, "s": s, "d": v} for (a, s), v in items],
    )


async def reverse(session: AsyncSession, *, original_key: str, key: str, node: str, actor: str = "",
                  memo: str = "") -> PostResult:
    """Undo an entry by posting its opposite, once. Refused if it would take someone below zero (they spent it)."""
    orig = (await session.execute(select(journal.c.id, journal.c.kind)
                                  .where(journal.c.idempotency_key == original_key))).first()
    if orig is None:
        return lc.LEDGER_ENTRY_NOT_FOUND(f"no entry {original_key!r}")
    if orig.kind == "reversal":
        return lc.LEDGER_REVERSAL_FINAL("a reversal is not reversed: post a new entry instead")
    done = (await session.execute(select(journal.c.idempotency_key).where(journal.c.reverses == orig.id))).first()
    if done is not None and done.idempotency_key != key:
        return lc.LEDGER_ALREADY_REVERSED(f"entry {original_key!r} was already reversed by {done.idempotency_key!r}")
    legs = tuple(Leg(r.account_id, r.asset, -r.amount) for r in await session.execute(
        select(postings.c.account_id, postings.c.asset, postings.c.amount)
        .where(postings.c.journal_id == orig.id).order_by(postings.c.seq)))
    entry = Entry(key=key, kind="reversal", legs=legs, actor=actor, memo=memo or f"reverses {original_key}",
                  reverses=orig.id)
    return (await post_entries(session, [entry], node=node))[0]


# ---- reading ---------------------------------------------------------------------------------------------------


async def balance(session: AsyncSession, account: str, asset: str) -> int:
    if may_go_negative(account):
        return await system_balance(session, account, asset)
    row = (await session.execute(select(balances.c.balance).where(
        balances.c.account_id == account, balances.c.asset == asset))).scalar_one_or_none()
    return int(row or 0)


async def system_balance(session: AsyncSession, account: str, asset: str) -> int:
    """A system account's balance, summed from its postings (it keeps no running balance: nothing to guard, and a
    row every transaction updates would make concurrent batches wait on each other)."""
    total = await session.execute(select(func.coalesce(func.sum(postings.c.amount), 0)).where(
        postings.c.account_id == account, postings.c.asset == asset))
    return int(total.scalar_one())


async def totals_by_asset(session: AsyncSession) -> dict[str, int]:
    """Sum of all postings per asset: zero for every asset, always (each entry sums to zero)."""
    rows = await session.execute(select(postings.c.asset, func.sum(postings.c.amount)).group_by(postings.c.asset))
    return {asset: int(total) for asset, total in rows}


async def entry_legs(session: AsyncSession, key: str) -> list[Leg]:
    rows = await session.execute(
        select(postings.c.account_id, postings.c.asset, postings.c.amount)
        .join(journal, journal.c.id == postings.c.journal_id)
        .where(journal.c.idempotency_key == key).order_by(postings.c.seq))
    return [Leg(r.account_id, r.asset, r.amount) for r in rows]
