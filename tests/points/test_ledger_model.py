"""The ledger against a model, with Hypothesis's stateful testing, on SQLite and PostgreSQL.

Random sequences of awards, transfers, spending, batches with repeated keys (same payload, or a different one) and
reversals; after every step the database must agree with the model: each balance, no person below zero, every
asset summing to zero, one journal entry per key. Then the ledger's own refusals: postings cannot be changed or
deleted, a bad entry writes nothing."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from services.points.app import MIGRATIONS
from services.points.ledger import service as ledger
from services.points.ledger.models import balances, journal, postings
from towntip.kernel import db, errors, migrate

NODE = "testnode"
ASSETS = ("machi-point", "credit", "local-currency")
PEOPLE = 4
SYSTEM = ("system:issuance", "system:redemption")
RUN = itertools.count()


class Ledger:
    """A real database behind the ledger, on its own event loop (Hypothesis drives the machine synchronously)."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.engine = db.create_engine(url, schema=schema)
        self.run(migrate.upgrade(self.engine, MIGRATIONS, schema=schema))
        self.sessions = db.sessionmaker(self.engine)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def tx(self, fn: Any) -> Any:
        async def go() -> Any:
            async with self.sessions() as s, s.begin():
                return await fn(s)
        return self.run(go())

    def close(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()


@pytest.fixture
def real_ledger(database: tuple[str, str | None]) -> Any:
    url, schema = database
    lg = Ledger(url, schema)
    try:
        yield lg
    finally:
        lg.close()


amounts = st.integers(min_value=1, max_value=60)
person_ix = st.integers(min_value=0, max_value=PEOPLE - 1)
asset_st = st.sampled_from(ASSETS)


def test_ledger_agrees_with_its_model(real_ledger: Ledger) -> None:
    lg = real_ledger
    seen: set[str] = set()  # the outcomes the run went through: all of them, or it proved little

    class LedgerMachine(RuleBasedStateMachine):
        """Model: balances of people (guarded) and of system accounts, and what each key was used for."""

        @initialize()
        def start(self) -> None:
            self.run = next(RUN)
            self.people = [f"person:m{self.run}-p{i}" for i in range(PEOPLE)]
            self.balance: dict[tuple[str, str], int] = defaultdict(int)
            self.entries: dict[str, tuple[str, tuple[ledger.Leg, ...]]] = {}  # key -> (payload hash, legs)
            self.reversed: set[str] = set()
            self.keys = itertools.count()
            self.base_totals = lg.tx(ledger.totals_by_asset)

        # ---- the model's answer to an entry ----

        def expect(self, entry: ledger.Entry, pending: dict[tuple[str, str], int]) -> str:
            if entry.key in self.entries:
                return "duplicate" if self.entries[entry.key][0] == entry.payload_hash() else "conflict"
            for leg in entry.legs:
                if not ledger.may_go_negative(leg.account) and pending[(leg.account, leg.asset)] + leg.amount < 0:
                    return "short"
            return "posted"

        def apply(self, entry: ledger.Entry, pending: dict[tuple[str, str], int]) -> None:
            for leg in entry.legs:
                pending[(leg.account, leg.asset)] += leg.amount
            self.entries[entry.key] = (entry.payload_hash(), entry.legs)
            self.posted[entry.key] = entry

        def new_key(self) -> str:
            return f"m{self.run}-k{next(self.keys):04d}"

        def entry(self, shape: str, a: int, b: int, asset: str, amount: int, key: str) -> ledger.Entry:
            p, q = self.people[a], self.people[b]
            legs = {
                "award": (ledger.Leg("system:issuance", asset, -amount), ledger.Leg(p, asset, amount)),
                "spend": (ledger.Leg(p, asset, -amount), ledger.Leg("system:redemption", asset, amount)),
                "transfer": (ledger.Leg(p, asset, -amount), ledger.Leg(q, asset, amount)) if a != b
                else (ledger.Leg(p, asset, -amount), ledger.Leg("system:redemption", asset, amount)),
            }[shape]
            return ledger.Entry(key=key, kind=shape, legs=legs, actor="model")

        def check(self, entries: list[ledger.Entry]) -> None:
            """Post a batch; the results must be the model's, entry by entry."""
            pending = defaultdict(int, self.balance)
            expected = []
            for e in entries:
                want = self.expect(e, pending)
                if want == "posted":
                    self.apply(e, pending)
                expected.append(want)
            got = lg.tx(lambda s: ledger.post_entries(s, entries, node=NODE))
            names = [("duplicate" if r.status == "duplicate" else "posted") if isinstance(r, ledger.Posted)
                     else "short" if isinstance(r, errors.Conflict) and "below zero" in r.reason
                     else "conflict" if isinstance(r, errors.Conflict) else repr(r) for r in got]
            assert names == expected, (entries, got)
            self.balance = pending
            seen.update(names)

        # ---- rules ----

        @rule(shape=st.sampled_from(["award", "award", "spend", "transfer"]), a=person_ix, b=person_ix,
              asset=asset_st, amount=amounts)
        def one(self, shape: str, a: int, b: int, asset: str, amount: int) -> None:
            self.check([self.entry(shape, a, b, asset, amount, self.new_key())])

        @precondition(lambda self: self.entries)
        @rule(data=st.data(), same=st.booleans())
        def repeat(self, data: st.DataObject, same: bool) -> None:
            """A key used before: with its own payload (a retry, by anyone), or with another (refused)."""
            key = data.draw(st.sampled_from(sorted(self.entries)))
            if key in self.reversed_by:  # a retried reversal answers with the first one
                got = lg.tx(lambda s: ledger.reverse(s, original_key=self.reversed_by[key], key=key, node=NODE))
                assert isinstance(got, ledger.Posted) and got.status == "duplicate", got
                return
            first = self.posted[key]
            entry = ledger.Entry(key=key, kind=first.kind, legs=first.legs, actor="someone else", memo=first.memo)
            if not same:
                entry = ledger.Entry(key=key, kind="award", memo="another payload", legs=(
                    ledger.Leg("system:issuance", "machi-point", -999), ledger.Leg(self.people[0], "machi-point", 999)))
            self.check([entry])

        @rule(shapes=st.lists(st.tuples(st.sampled_from(["award", "spend", "transfer"]), person_ix, person_ix,
                                        asset_st, amounts, st.booleans()), min_size=2, max_size=6))
        def batch(self, shapes: list[tuple[str, int, int, str, int, bool]]) -> None:
            """Several entries in one call; some reuse the key of the entry before them in the same batch."""
            entries: list[ledger.Entry] = []
            for shape, a, b, asset, amount, reuse in shapes:
                key = entries[-1].key if reuse and entries else self.new_key()
                entries.append(self.entry(shape, a, b, asset, amount, key))
            self.check(entries)

        @precondition(lambda self: any(k not in self.reversed and k not in self.reversed_by for k in self.entries))
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            key = data.draw(st.sampled_from(sorted(k for k in self.entries
                                                   if k not in self.reversed and k not in self.reversed_by)))
            legs = tuple(ledger.Leg(g.account, g.asset, -g.amount) for g in self.entries[key][1])
            rkey = self.new_key()
            pending = defaultdict(int, self.balance)
            short = any(not ledger.may_go_negative(g.account) and pending[(g.account, g.asset)] + g.amount < 0
                        for g in legs)
            got = lg.tx(lambda s: ledger.reverse(s, original_key=key, key=rkey, node=NODE, actor="model"))
            if short:
                assert isinstance(got, errors.Conflict) and "below zero" in got.reason, got
                seen.add("reversal refused")
                return
            seen.add("reversed")
            assert isinstance(got, ledger.Posted) and got.status == "posted", got
            for g in legs:
                self.balance[(g.account, g.asset)] += g.amount
            self.reversed.add(key)
            self.reversed_by[rkey] = key
            self.entries[rkey] = (None, legs)  # type: ignore[assignment]
            # a second reversal of the same entry is refused
            again = lg.tx(lambda s: ledger.reverse(s, original_key=key, key=self.new_key(), node=NODE))
            assert isinstance(again, errors.Conflict) and "already reversed" in again.reason

        # ---- what must hold after every step ----

        @invariant()
        def balances_agree(self) -> None:
            people = self.people

            async def read(s: Any) -> dict[tuple[str, str], int]:
                rows = await s.execute(select(balances.c.account_id, balances.c.asset, balances.c.balance)
                                       .where(balances.c.account_id.in_(people)))
                return {(r.account_id, r.asset): r.balance for r in rows}
            stored = lg.tx(read)
            model = {k: v for k, v in self.balance.items() if k[0] in people and (v or k in stored)}
            assert stored == model
            assert all(v >= 0 for v in stored.values())

        @invariant()
        def every_asset_sums_to_zero(self) -> None:
            totals = lg.tx(ledger.totals_by_asset)
            assert all(v == 0 for v in totals.values()), totals
            for asset in ASSETS:  # the system accounts hold exactly minus what people hold
                people = sum(v for (a, s), v in self.balance.items() if s == asset and not ledger.may_go_negative(a))
                system = sum(v for (a, s), v in self.balance.items() if s == asset and ledger.may_go_negative(a))
                assert people + system == 0

        @invariant()
        def one_entry_per_key(self) -> None:
            prefix = f"m{self.run}-%"
            n = lg.tx(lambda s: _scalar(s, select(func.count()).select_from(journal)
                                       .where(journal.c.idempotency_key.like(prefix))))
            assert n == len(self.entries)

    def init(self: Any) -> None:
        RuleBasedStateMachine.__init__(self)
        self.reversed_by = {}  # reversal key -> the key it reversed
        self.posted = {}  # key -> the entry as first posted

    LedgerMachine.__init__ = init  # type: ignore[method-assign]
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)))
    assert seen >= {"posted", "duplicate", "conflict", "short", "reversed"}, seen


async def _scalar(s: Any, stmt: Any) -> Any:
    return (await s.execute(stmt)).scalar_one()


# ---- the ledger's own refusals -----------------------------------------------------------------------------------


def award(key: str, person: str, amount: int, asset: str = "machi-point") -> ledger.Entry:
    return ledger.Entry(key=key, kind="award", legs=(ledger.Leg("system:issuance", asset, -amount),
                                                     ledger.Leg(person, asset, amount)))


def test_postings_cannot_be_changed_or_deleted(real_ledger: Ledger) -> None:
    lg = real_ledger
    [posted] = lg.tx(lambda s: ledger.post_entries(s, [award("imm-00001", "person:imm", 5)], node=NODE))
    assert isinstance(posted, ledger.Posted)
    for stmt in (update(postings).values(amount=500), delete(postings)):
        with pytest.raises((IntegrityError, DBAPIError)) as caught:
            lg.tx(lambda s, stmt=stmt: s.execute(stmt))
        assert "immutable" in str(caught.value)
    assert [leg.amount for leg in lg.tx(lambda s: ledger.entry_legs(s, "imm-00001"))] == [-5, 5]


@pytest.mark.parametrize(("entry", "status", "reason"), [
    (ledger.Entry(key="bad-00001", kind="award", legs=(ledger.Leg("system:issuance", "machi-point", -5),
                                                        ledger.Leg("person:x", "machi-point", 4))),
     400, "do not sum to zero"),
    (ledger.Entry(key="bad-00002", kind="award", legs=(ledger.Leg("system:issuance", "gold", -5),
                                                        ledger.Leg("person:x", "gold", 5))), 422, "unknown asset"),
    (ledger.Entry(key="bad-00003", kind="award", legs=(ledger.Leg("system:issuance", "machi-point", 0),
                                                        ledger.Leg("person:x", "machi-point", 0))), 400, "non-zero"),
    (ledger.Entry(key="bad-00004", kind="award", legs=(ledger.Leg("bank:x", "machi-point", -5),
                                                        ledger.Leg("person:x", "machi-point", 5))), 400, "bad account"),
    (ledger.Entry(key="short", kind="award", legs=(ledger.Leg("system:issuance", "machi-point", -5),
                                                    ledger.Leg("person:x", "machi-point", 5))), 400, "idempotency key"),
    (ledger.Entry(key="bad-00005", kind="award", legs=(ledger.Leg("person:y", "credit", -1),
                                                        ledger.Leg("person:x", "credit", 1))), 409, "below zero"),
    (ledger.Entry(key="bad-00006", kind="award", legs=(ledger.Leg("system:issuance", "credit", 1.5),  # type: ignore[arg-type]
                                                        ledger.Leg("person:x", "credit", -1.5))), 400, "integer"),
])
def test_a_bad_entry_is_refused_with_its_reason_and_writes_nothing(
    real_ledger: Ledger, entry: ledger.Entry, status: int, reason: str
) -> None:
    lg = real_ledger
    before = lg.tx(lambda s: _scalar(s, select(func.count()).select_from(journal)))
    [result] = lg.tx(lambda s: ledger.post_entries(s, [entry], node=NODE))
    assert isinstance(result, errors.ServiceError) and result.code == status and reason in result.reason, result
    assert lg.tx(lambda s: _scalar(s, select(func.count()).select_from(journal))) == before
    assert lg.tx(lambda s: _scalar(s, select(func.count()).select_from(postings))) == 0
    assert lg.tx(lambda s: s.execute(text("SELECT count(*) FROM balances"))).scalar_one() == 0
