"""kernel.db on SQLite and PostgreSQL: several tables written in one go, IN lists of any length, one statement each."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from towntip.kernel import db

md = MetaData()
parent = Table(
    "parent", md,
    Column("id", String(10), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("blob", LargeBinary, nullable=False),
)
child = Table(
    "child", md,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("parent_id", String(10), ForeignKey("parent.id"), nullable=False),
    Column("n", Integer, nullable=False),
)
total = Table(
    "total", md,
    Column("parent_id", String(10), ForeignKey("parent.id"), primary_key=True),
    Column("sum", Integer, nullable=False),
    CheckConstraint("sum >= 0", name="ck_total_not_negative"),
)
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


async def _engine(url: str, schema: str | None):
    engine = db.create_engine(url, schema=schema)
    await db.ensure_schema(engine, schema)
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
    return engine


def _writes(ids: list[str], amounts: dict[str, int]) -> list[db.Rows]:
    return [
        db.Rows(parent, [{"id": i, "at": NOW, "blob": i.encode()} for i in ids],
                conflict=lambda ins: ins.on_conflict_do_nothing(index_elements=["id"])),
        db.Rows(child, [{"parent_id": i, "n": n} for i, n in amounts.items()]),
        db.Rows(total, [{"parent_id": i, "sum": n} for i, n in amounts.items()],
                conflict=lambda ins: ins.on_conflict_do_update(
                    index_elements=["parent_id"], set_={"sum": total.c.sum + ins.excluded.sum}),
                returning=(total.c.parent_id, total.c.sum)),
    ]


async def test_write_rows_writes_every_table_and_returns_the_upserted_rows(database):
    engine = await _engine(*database)
    sessions = db.sessionmaker(engine)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql.split()[0].upper()))
    for size in (1, 3, 7):  # batch sizes differ; the statement does not (checked on PostgreSQL below)
        ids = [f"p{i}" for i in range(size)]
        async with sessions() as s, s.begin():
            statements.clear()
            rows = await db.write_rows(s, _writes(ids, {i: 2 for i in ids}))
            if engine.dialect.name == "postgresql":
                assert statements == ["WITH"], statements  # one statement, one round trip, for three tables
        assert {r.parent_id for r in rows} == set(ids)
    async with sessions() as s:
        sums = dict((await s.execute(select(total.c.parent_id, total.c.sum))).all())
        assert sums == {"p0": 6, "p1": 4, "p2": 4, **{f"p{i}": 2 for i in range(3, 7)}}
        assert (await s.execute(select(func.count()).select_from(child))).scalar_one() == 11
        blob = (await s.execute(select(parent.c.blob, parent.c.at).where(parent.c.id == "p6"))).one()
        assert blob.blob == b"p6" and blob.at.replace(tzinfo=blob.at.tzinfo or dt.UTC) == NOW
    await engine.dispose()


async def test_write_rows_is_all_or_nothing(database):
    """A CHECK violation in one table leaves no row in any of them."""
    engine = await _engine(*database)
    sessions = db.sessionmaker(engine)
    with pytest.raises(IntegrityError):
        async with sessions() as s, s.begin():
            await db.write_rows(s, _writes(["a", "b"], {"a": 1, "b": -1}))
    async with sessions() as s:
        for table in (parent, child, total):
            assert (await s.execute(select(func.count()).select_from(table))).scalar_one() == 0
    await engine.dispose()


async def test_among_matches_lists_of_any_length(database):
    engine = await _engine(*database)
    sessions = db.sessionmaker(engine)
    ids = [f"q{i}" for i in range(40)]
    async with sessions() as s, s.begin():
        await db.write_rows(s, _writes(ids, {}))
    async with sessions() as s:
        for wanted in ([], ["q1"], ids[:25], ["q3", "nope"]):
            got = (await s.execute(select(parent.c.id).where(db.among(s, parent.c.id, wanted)))).scalars().all()
            assert sorted(got) == sorted(w for w in wanted if w in ids)
    await engine.dispose()


async def test_single_statements_commit_each_statement(database):
    engine = await _engine(*database)
    sessions = db.sessionmaker(engine)
    async with sessions() as s, s.begin():
        await db.single_statements(s)
        await db.write_rows(s, _writes(["x"], {"x": 1}))
    async with sessions() as s:
        assert (await s.execute(select(total.c.sum))).scalar_one() == 1
    await engine.dispose()
