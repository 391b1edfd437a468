"""One Alembic history per service, applied at start on SQLite or PostgreSQL."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from towntip.kernel.db import ensure_schema

log = logging.getLogger(__name__)


class AlembicEnvironment(Protocol):
    """What `run_env` uses of Alembic's environment: the `alembic.context` module an env.py imports (a proxy of the
    running `EnvironmentContext`), or an `EnvironmentContext` itself."""

    config: Config

    def configure(self, *, connection: Connection, target_metadata: MetaData, version_table_schema: str | None,
                  render_as_batch: bool) -> None: ...

    def begin_transaction(self) -> AbstractContextManager[Any]: ...

    def run_migrations(self) -> None: ...


def alembic_config(script_location: str | Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


async def upgrade(engine: AsyncEngine, script_location: str | Path, *, schema: str | None = None) -> None:
    """Bring the service's tables to every head. Safe to run on every start, by several instances at once on PG.

    Every head: features of one service may add their migrations on separate branches from the same parent (e.g.
    courses and donations both after 0006); a later merge revision joins them.

    A database ahead of this code (at a revision this release does not know: a newer instance of the service
    migrated it, in a rolling upgrade) is left as it is and the service runs on it: until every instance is new,
    migrations only expand (docs/operating.md, "Upgrades"), so the older code still fits the schema. Alembic would
    refuse to start ("Can't locate revision"), and an old instance restarting during an upgrade would never come
    back."""
    await ensure_schema(engine, schema)
    cfg = alembic_config(script_location)

    def _run(sync_conn: Connection) -> None:
        newer = unknown_revisions(sync_conn, cfg, schema)
        if newer:
            log.warning("database%s is at %s, newer than this release knows: running on it without migrating "
                        "(a rolling upgrade)", f" schema {schema}" if schema else "", ", ".join(sorted(newer)))
            return
        cfg.attributes["connection"] = sync_conn
        cfg.attributes["schema"] = schema
        command.upgrade(cfg, "heads")

    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Serialise concurrent starts of the same service (several instances behind a queue group).
            from sqlalchemy import text

            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"migrate:{schema}"})
        await conn.run_sync(_run)


def unknown_revisions(sync_conn: Connection, cfg: Config, schema: str | None) -> set[str]:
    """The revisions the database is at that this code's migrations do not have (none on a new database)."""
    current = MigrationContext.configure(sync_conn, opts={"version_table_schema": schema}).get_current_heads()
    known = {rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()}
    return {rev for rev in current if rev not in known}


def run_env(context: AlembicEnvironment, target_metadata: MetaData) -> None:
    """The body of each service's migrations/env.py: run on the connection handed over by `upgrade`."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through towntip.kernel.migrate.upgrade(), not the alembic CLI")
    schema = config.attributes.get("schema")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
