"""A service whose database is ahead of its code (a newer instance migrated it during a rolling upgrade) starts on
it without migrating, instead of Alembic's "Can't locate revision" ending the process (towntip/kernel/migrate.py).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from towntip.kernel import db, migrate

POINTS = Path(__file__).resolve().parents[2] / "services" / "points" / "migrations"


async def _heads(url: str, schema: str | None) -> set[str]:
    engine = db.create_engine(url, schema=schema)
    try:
        async with engine.connect() as conn:
            return {r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        await engine.dispose()


async def test_an_older_release_runs_on_a_newer_database(database: tuple[str, str | None], tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    url, schema = database
    head = set(ScriptDirectory.from_config(migrate.alembic_config(POINTS)).get_heads())
    # The previous release's migrations: the same history without its newest revision.
    older = tmp_path / "older"
    shutil.copytree(POINTS, older)
    newest = next(p for p in (older / "versions").glob("*.py") if f'revision = "{next(iter(head))}"' in p.read_text())
    newest.unlink()
    older_head = set(ScriptDirectory.from_config(migrate.alembic_config(older)).get_heads())
    assert older_head and older_head != head

    engine = db.create_engine(url, schema=schema)
    try:
        await migrate.upgrade(engine, POINTS, schema=schema)  # the new instance: expand to head
        assert await _heads(url, schema) == head
        with caplog.at_level(logging.WARNING, logger="towntip.kernel.migrate"):
            await migrate.upgrade(engine, older, schema=schema)  # the old instance restarting
        assert await _heads(url, schema) == head, "the older code leaves the newer schema as it is"
        assert any("newer than this release knows" in r.getMessage() for r in caplog.records)
        async with engine.connect() as conn:  # and its tables are there for it
            assert (await conn.execute(text("SELECT count(*) FROM taps"))).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_an_older_database_is_still_migrated(database: tuple[str, str | None], tmp_path: Path) -> None:
    url, schema = database
    head = set(ScriptDirectory.from_config(migrate.alembic_config(POINTS)).get_heads())
    older = tmp_path / "older"
    shutil.copytree(POINTS, older)
    for p in (older / "versions").glob("*.py"):
        if f'revision = "{next(iter(head))}"' in p.read_text():
            p.unlink()
    engine = db.create_engine(url, schema=schema)
    try:
        await migrate.upgrade(engine, older, schema=schema)
        assert await _heads(url, schema) != head
        await migrate.upgrade(engine, POINTS, schema=schema)
        assert await _heads(url, schema) == head
    finally:
        await engine.dispose()
