"""Instances of one service starting at once on PostgreSQL (compose and Kubernetes run two of each; the cluster drill
found it): each makes its schema if missing, and none fails because another made it a moment before."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from towntip.kernel.db import ensure_schema


async def test_many_instances_make_one_schema_at_once(database: tuple[str, str | None]) -> None:
    url, schema = database
    if schema is None:
        pytest.skip("SQLite has no schemas: nothing to race for")
    engines = [create_async_engine(url) for _ in range(8)]
    try:
        await asyncio.gather(*(ensure_schema(e, schema) for e in engines))  # none raises
        async with engines[0].connect() as conn:
            found = (await conn.execute(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                                        {"s": schema})).scalar_one()
        assert found == 1
    finally:
        await asyncio.gather(*(e.dispose() for e in engines))
