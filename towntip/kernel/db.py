"""Async SQLAlchemy engines for a service: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) with a schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast, overload

from sqlalchemy import ColumnElement, Row, Table, any_, bindparam, event, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

# Constraint and index names every service's metadata uses (so migrations can name what they create).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> AsyncEngine:
    """An engine for one service's database. Nothing is created at import time; the caller owns disposal."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite has one writer at a time, and every transaction here takes the write
        # lock at BEGIN (see _sqlite_setup). With several connections, the losers sleep in SQLite's busy handler
        # (steps up to 100 ms) and that sleep became the tail of the latency (p99 0.35 s at 1,000 taps/s); with
        # one, they wait in the pool's queue, in order, and start the moment the holder commits.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
        )
        _sqlite_setup(engine)
        return engine
    connect_args = {}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _sqlite_setup(engine: AsyncEngine) -> None:
    """WAL, full durability, and BEGIN IMMEDIATE.

    Several tasks of one process write (consumer, relay, endpoints). With SQLite's deferred BEGIN a reader
    that later writes fails with SQLITE_BUSY without waiting; taking the write lock at BEGIN makes writers
    queue on busy_timeout instead. This also gives SAVEPOINT its documented behaviour under pysqlite.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@overload
def aware(t: datetime) -> datetime: ...
@overload
def aware(t: None) -> None: ...
def aware(t: datetime | None) -> datetime | None:
    """A time read from a service's database, with its zone: SQLite hands back naive datetimes for timezone-aware
    columns, and every service writes UTC there."""
    if t is None or t.tzinfo is not None:
        return t
    return t.replace(tzinfo=UTC)


def insert_on_conflict(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT with ON CONFLICT (DO NOTHING / DO UPDATE) in the session's dialect; PostgreSQL and SQLite both have it."""
    return (postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert)(table)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched. Its result is a CursorResult; `execute` is typed as returning any
    `Result`, which has no `rowcount`."""
    return cast(CursorResult[Any], result).rowcount


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def single_statements(session: AsyncSession) -> None:
    """Call first in a session whose every statement stands alone: on PostgreSQL each then commits by itself
    (autocommit), which saves the BEGIN and COMMIT round trips; SQLite keeps its transaction (no round trips there).
    The connection gets its isolation level back when it returns to the pool."""
    if dialect_of(session) == "postgresql":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def among(session: AsyncSession, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`. On PostgreSQL as `= ANY(array)`: one bound array, so the statement (and asyncpg's prepared
    statement) is the same whatever the number of values; an IN list would be a new statement for each length."""
    if dialect_of(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


@dataclass
class Rows:
    """Rows for one table, for `write_rows`. `conflict` adds an ON CONFLICT clause to the dialect's insert (it is
    given the insert, and may use `.excluded`); `returning` asks for columns of the rows written."""

    table: Table
    rows: list[dict[str, Any]]
    conflict: Callable[[Any], Any] | None = None
    returning: tuple[Any, ...] = field(default=())


async def write_rows(session: AsyncSession, writes: Sequence[Rows]) -> list[Row[*tuple[Any, ...]]]:
    """Insert rows into several tables in the caller's transaction; returns what the one `returning` write asked for.

    PostgreSQL: ONE statement and one round trip for all of them. Each table's rows travel as one array per column,
    unnested into an INSERT ... SELECT, and the inserts are data-modifying CTEs of one statement (all run to
    completion; foreign keys between them are checked at the end of the statement). The statement's text depends on
    the tables and columns only, never on the number of rows, so it is prepared once per connection.
    SQLite: an executemany per table, in the order given (so parents go before the rows that refer to them).
    All rows of one write must have the same keys.
    """
    writes = [w for w in writes if w.rows]
    if not writes:
        return []
    if sum(1 for w in writes if w.returning) > 1:
        raise ValueError("at most one write may ask for returning")
    if dialect_of(session) != "postgresql":
        result: list[Row[*tuple[Any, ...]]] = []
        for w in writes:
            stmt = sqlite.insert(w.table)
            if w.conflict is not None:
                stmt = w.conflict(stmt)
            if w.returning:
                result = list((await session.execute(stmt.returning(*w.returning), w.rows)).all())
            else:
                await session.execute(stmt, w.rows)
        return result
    ctes, returned = [], None
    for i, w in enumerate(writes):
        names = list(w.rows[0])
        source = select(*[
            func.unnest(bindparam(f"w{i}_{name}", [r[name] for r in w.rows],
                                  type_=postgresql.ARRAY(w.table.c[name].type)))
            for name in names
        ])
        pg_stmt = postgresql.insert(w.table).from_select(names, source)
        if w.conflict is not None:
            pg_stmt = w.conflict(pg_stmt)
        if w.returning:
            returned = pg_stmt.returning(*w.returning).cte(f"w{i}")
        else:
            ctes.append(pg_stmt.cte(f"w{i}"))
    main = select(*returned.c) if returned is not None else select(literal(1))
    rows = (await session.execute(main.add_cte(*ctes))).all()
    return list(rows) if returned is not None else []


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_schema(engine: AsyncEngine, schema: str | None) -> None:
    """PostgreSQL: create the service's schema if it is not there (SQLite has none)."""
    if not schema or engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    async with engine.begin() as conn:
        # Two instances starting at once both found no schema, and the second CREATE failed on the catalogue's unique
        # index (IF NOT EXISTS does not serialise them): one at a time, under a lock named after the schema.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"schema:{schema}"})
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
