"""The node's federation key apart from its provider's keys (identity/keys.py), on SQLite and PostgreSQL: made on
first use and never published as a provider key; `rotate` leaves it, `rotate_federation` changes it; and a node
upgraded from a version with one key set (migration 0005) keeps the key its anchor pinned as its federation key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, Column, DateTime, Insert, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from identity import keys
from identity.app import MIGRATIONS
from identity.models import signing_keys
from towntip.kernel import db, migrate
from towntip.kernel.bus.envelope import utcnow

Sessions = async_sessionmaker[AsyncSession]


async def upgrade_to(engine: AsyncEngine, schema: str | None, revision: str) -> None:
    """towntip.kernel.migrate.upgrade, to one revision."""
    await db.ensure_schema(engine, schema)
    cfg = migrate.alembic_config(MIGRATIONS)

    def _run(sync_conn) -> None:
        cfg.attributes["connection"] = sync_conn
        cfg.attributes["schema"] = schema
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


@pytest.fixture
async def engine(database: tuple[str, str | None]) -> AsyncIterator[tuple[AsyncEngine, str | None]]:
    url, schema = database
    engine = db.create_engine(url, schema=schema)
    try:
        yield engine, schema
    finally:
        await engine.dispose()


async def purposes(sessions: Sessions) -> list[tuple[str, str, str, bool]]:
    async with sessions() as s:
        rows = (await s.execute(select(signing_keys.c.kid, signing_keys.c.alg, signing_keys.c.purpose,
                                       signing_keys.c.retired_at).order_by(signing_keys.c.created_at))).all()
    return [(r.kid, r.alg, r.purpose, r.retired_at is None) for r in rows]


async def test_a_new_node_has_a_federation_key_of_its_own(engine) -> None:
    eng, schema = engine
    await migrate.upgrade(eng, MIGRATIONS, schema=schema)
    sessions = db.sessionmaker(eng)
    async with sessions() as s, s.begin():
        assert await keys.current_federation_key(s) is None
        provider = await keys.active_key(s)
        federation = await keys.federation_key(s)
        assert (await keys.federation_key(s)).kid == federation.kid  # made once
    assert federation.kid == federation.key.thumbprint() and federation.kid not in (provider.kid, provider.at_kid)
    assert federation.public_jwk()["alg"] == "RS256" and "d" not in federation.public_jwk()
    async with sessions() as s:
        published = [k["kid"] for k in await keys.published(s)]
    assert set(published) == {provider.kid, provider.at_kid}  # the provider's JWKS: never the federation key

    # A provider rotation leaves the federation key; a federation rotation leaves the provider's keys.
    async with sessions() as s, s.begin():
        new_kid = await keys.rotate(s)
        assert (await keys.federation_key(s)).kid == federation.kid
        fed_kid = await keys.rotate_federation(s)
        assert (await keys.current_key(s)).kid == new_kid  # type: ignore[union-attr]
        assert (await keys.federation_key(s)).kid == fed_kid != federation.kid
        assert fed_kid not in [k["kid"] for k in await keys.published(s)]
    rows = await purposes(sessions)
    assert [(kid, live) for kid, _alg, purpose, live in rows if purpose == keys.FEDERATION] == [
        (federation.kid, False), (fed_kid, True)]  # the retired federation key is kept, not used


async def test_an_upgraded_node_keeps_the_key_its_anchor_pinned(engine) -> None:
    """Before 0005 the provider's RS256 key signed the configuration (the anchor pinned it): it becomes the first
    federation key (same kid), and the provider's keys are untouched."""
    eng, schema = engine
    await upgrade_to(eng, schema, "0004")
    sessions = db.sessionmaker(eng)
    rows = {}
    for name, alg, age, retired in (("old", keys.ALG, 3, True), ("rsa", keys.ALG, 2, False),
                                    ("ec", keys.AT_ALG, 1, False)):
        kid, pem, jwk = keys._new_key(alg)
        rows[name] = kid
        at = utcnow() - timedelta(hours=age)
        async with sessions() as s, s.begin():  # the table as 0001-0004 made it: no purpose
            await s.execute(_without_purpose(kid, alg, pem, jwk, at, at if retired else None))
    await migrate.upgrade(eng, MIGRATIONS, schema=schema)

    async with sessions() as s, s.begin():
        federation = await keys.federation_key(s)
        provider = await keys.current_key(s)
        published = [k["kid"] for k in await keys.published(s)]
    assert federation.kid == rows["rsa"]  # the pinned key keeps signing the configuration: no re-pin
    assert provider is not None and (provider.kid, provider.at_kid) == (rows["rsa"], rows["ec"])
    assert published == [rows["ec"], rows["rsa"], rows["old"]]
    assert sorted((kid, purpose) for kid, _a, purpose, _l in await purposes(sessions)) == sorted(
        [(rows["old"], "provider"), (rows["rsa"], "provider"), (rows["ec"], "provider"),
         (rows["rsa"], "federation")])

    # The first provider rotation after the upgrade leaves it as the federation key (still pinned).
    async with sessions() as s, s.begin():
        await keys.rotate(s)
        assert (await keys.federation_key(s)).kid == rows["rsa"]


def _without_purpose(kid: str, alg: str, pem: str, jwk: dict[str, Any], created: datetime,
                     retired: datetime | None) -> Insert:
    """An INSERT into signing_keys as the table was before migration 0005 (the model has a purpose column now)."""
    before = Table("signing_keys", MetaData(), Column("kid", String(64), primary_key=True),
                   Column("alg", String(10)), Column("private_pem", Text), Column("public_jwk", JSON),
                   Column("created_at", DateTime(timezone=True)), Column("retired_at", DateTime(timezone=True)))
    return before.insert().values(kid=kid, alg=alg, private_pem=pem, public_jwk=jwk, created_at=created,
                                  retired_at=retired)
