"""Async SQLAlchemy engines for a service: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) with a schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


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
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def insert_on_conflict(session: AsyncSession, table: Table):
    """INSERT with ON CONFLICT (DO NOTHING / DO UPDATE) in the session's dialect; PostgreSQL and SQLite both have it."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ensure_schema(engine: AsyncEngine, schema: str | None) -> None:
    """PostgreSQL: create the service's schema if it is not there (SQLite has none)."""
    if not schema or engine.dialect.name != "postgresql":
        return
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
