"""Helpers for bus tests: a tiny service schema (bus tables + an effects table) on a real database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from towntip.kernel import db
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected
from towntip.kernel.bus.outbox import define_bus_tables

metadata = MetaData()
tables = define_bus_tables(metadata)
effects = Table("effects", metadata, Column("key", String(200), primary_key=True), Column("amount", Integer))


async def make_engine(url: str, schema: str | None) -> AsyncEngine:
    engine = db.create_engine(url, schema=schema)
    await db.ensure_schema(engine, schema)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return engine


async def count_effects(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {r.key: r.amount for r in await conn.execute(select(effects))}


class EffectHandler:
    """Each message {"key": ..., "amount": n} adds one effects row. 'fail' in the key raises a passing error."""

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        import json

        try:
            body = json.loads(msg.data)
            return str(body["key"]), body
        except (ValueError, KeyError, TypeError) as exc:
            raise Rejected(f"not an effect: {exc.__class__.__name__}") from None

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        self.calls += 1
        out: list[Outcome] = []
        for d in deliveries:
            if d.duplicate:
                out.append({"status": "duplicate"})
                continue
            if "fail" in d.key:
                raise ConnectionError("database went away")
            await session.execute(insert(effects).values(key=d.key, amount=d.item.get("amount", 1)))
            out.append({"status": "applied"})
        return out
