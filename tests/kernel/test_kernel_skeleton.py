"""The service skeleton in the kernel: the unit of work (one transaction, a serialisation failure run again), event
models that refuse what does not fit, endpoint tables checked when a service starts, refusals declared in the
contracts."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from towntip.kernel import db, errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.events import model_of
from towntip.kernel.domain import Domain, bind, read, write
from towntip.kernel.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[2]
md = MetaData()
counter = Table("counter", md, Column("id", String(10), primary_key=True), Column("n", Integer, nullable=False))


async def _sessions(url: str, schema: str | None):
    engine = db.create_engine(url, schema=schema)
    await db.ensure_schema(engine, schema)
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
    return engine, db.sessionmaker(engine)


async def test_the_unit_of_work_runs_a_serialisation_failure_again_once_and_commits_once(database) -> None:
    url, schema = database
    if not url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: it never reports a serialisation failure (SQLSTATE 40001)")
    engine, sessions = await _sessions(url, schema)
    woken: list[int] = []
    runs: list[int] = []
    uow = UnitOfWork(sessions, on_commit=lambda: woken.append(1))

    async def change(session, now):
        runs.append(1)
        await session.execute(counter.insert().values(id=f"run{len(runs)}", n=len(runs)))
        if len(runs) == 1:  # PostgreSQL's own error, as a concurrent serialisable transaction would raise it
            await session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"))
        return len(runs)

    try:
        assert await uow.write(change) == 2
        assert len(runs) == 2 and uow.retries == 1 and woken == [1]
        async with sessions() as s:  # the first run left nothing behind; the second committed once
            assert (await s.execute(select(counter.c.id))).scalars().all() == ["run2"]

        async def refused(session, now):
            await session.execute(counter.insert().values(id="never", n=0))
            await session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'bad' USING ERRCODE = '22023'; END $$"))

        with pytest.raises(DBAPIError):  # any other error is not run again, and nothing is woken
            await uow.write(refused)
        assert woken == [1] and uow.retries == 1
    finally:
        await engine.dispose()


async def test_the_unit_of_work_gives_up_after_its_attempts(database) -> None:
    url, schema = database
    if not url.startswith("postgresql"):
        pytest.skip("SQLite never reports a serialisation failure")
    engine, sessions = await _sessions(url, schema)
    woken: list[int] = []
    uow = UnitOfWork(sessions, on_commit=lambda: woken.append(1), attempts=2)

    async def always(session, now):
        await session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40P01'; END $$"))

    try:
        with pytest.raises(DBAPIError):
            await uow.write(always)
        assert uow.retries == 1 and woken == []
    finally:
        await engine.dispose()


async def test_a_key_clash_the_retry_did_not_resolve_is_answered_as_the_rows_refusal(database) -> None:
    """`retry_integrity` runs a write again after a unique-key conflict; a conflict left after that run is raised as
    it is, or, with `clash=`, as that refusal (its code and 409), and nothing of either run is kept."""
    url, schema = database
    engine, sessions = await _sessions(url, schema)
    clash = errors.Refusal("test.clash", 409, "changed by someone else at the same moment: try again")
    uow = UnitOfWork(sessions, retry_integrity=True)
    runs: list[int] = []

    async def twice(session, now):
        runs.append(1)
        await session.execute(counter.insert().values(id=f"c{len(runs)}", n=0))
        await session.execute(counter.insert().values(id=f"c{len(runs)}", n=1))  # the same key again

    try:
        with pytest.raises(errors.Conflict) as refused:
            await uow.write(twice, clash=clash)
        assert refused.value.error_code == "test.clash" and refused.value.status == 409
        assert "someone else" in refused.value.reason and len(runs) == 2 and uow.retries == 1
        with pytest.raises(IntegrityError):  # without `clash`: the database's error, as before
            await uow.write(twice)
        async with sessions() as s:
            assert (await s.execute(select(counter.c.id))).scalars().all() == []
    finally:
        await engine.dispose()


def test_an_event_model_refuses_a_payload_that_does_not_fit() -> None:
    assert model_of("identity", "UserDeleted") is ic.UserDeleted and model_of("points", "EntryPosted") is lc.EntryPosted
    with pytest.raises(ValidationError):
        ic.UserDeleted.parse({"global_handle": "hanako@town"})  # no home_node
    with pytest.raises(ValidationError):
        sc.PostPublished.parse({"post_id": "not a number", "community_id": "c", "categories": [], "at": "x"})
    with pytest.raises(ValidationError):
        lc.EntryPosted.parse({"key": "k", "kind": "tap", "journal_id": "j", "legs": [{"account": "a", "asset": "pt"}]})
    # A newer sender's extra field is ignored (changes are additive); the model is frozen.
    e = ic.UserDeleted.parse({"global_handle": "hanako@town", "home_node": "town", "added_later": 1})
    with pytest.raises(ValidationError):
        e.home_node = "elsewhere"  # type: ignore[misc]
    env = e.envelope(node="town", at=datetime(2026, 12, 7, tzinfo=UTC))
    assert (env.type, env.service, env.version, env.subject) == ("UserDeleted", "identity", 1,
                                                                 "evt.town.identity.user_deleted")
    # user_id and content: added for issue 20 point 7, with defaults (an older sender's event still parses)
    assert env.data == {"global_handle": "hanako@town", "home_node": "town", "user_id": None, "content": "anonymise"}


def test_identity_events_carry_the_same_payload_as_before() -> None:
    """points' people directory and other nodes read these fields by name: the model keeps every one."""
    user = ic.User(id="u1", handle="hanako", global_handle="hanako@town", home_node="town", display_name="花子",
                   email="h@example.jp", email_verified=True, district="北", interests=["env"],
                   created_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert ic.UserRegistered.of(user).model_dump(mode="json") == {
        "user_id": "u1", "global_handle": "hanako@town", "handle": "hanako", "home_node": "town",
        "display_name": "花子", "nickname": "", "district": "北", "interests": ["env"]}
    assert ic.ProfileChanged.of(user).type_name() == "ProfileChanged"


class Ask(BaseModel):
    theme_id: str


class Done(BaseModel):
    ok: bool


def test_a_table_whose_handler_asks_for_what_nobody_offers_fails_when_the_service_starts() -> None:
    async def handler(*, session, theme_id: str, secret_key: str) -> Done:
        return Done(ok=True)

    with pytest.raises(TypeError, match="secret_key"):
        bind([Domain("d", ops=(read("x", Ask, Done, handler),))], uow=UnitOfWork(None), context={})  # type: ignore[arg-type]
    ok = Domain("d", ops=(write("x", Ask, Done, handler),))
    bind([ok], uow=UnitOfWork(None), context={"secret_key": "k"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="declared twice"):
        bind([ok, ok], uow=UnitOfWork(None), context={"secret_key": "k"})  # type: ignore[arg-type]


def _constructed_errors(path: Path) -> list[str]:
    """`errors.NotFound(...)` and the like: a refusal made without a declared code."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "errors" \
                and node.func.attr[:1].isupper():
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} errors.{node.func.attr}")
    return found


@pytest.mark.parametrize("service", ["services/sns", "services/projects", "services/bookings", "identity"])
def test_every_refusal_of_the_service_is_declared_with_a_code(service: str) -> None:
    bare = [hit for path in sorted((ROOT / service).glob("*.py")) for hit in _constructed_errors(path)]
    assert bare == [], "raise the contracts' Refusal constants instead: " + ", ".join(bare)


def test_every_declared_refusal_code_is_unique() -> None:
    from towntip.kernel.contracts import bookings as bc
    from towntip.kernel.contracts import projects as pc

    seen: dict[str, str] = {}
    for module in (sc, pc, ic, bc):
        for name, value in vars(module).items():
            if isinstance(value, errors.Refusal):
                assert seen.setdefault(value.code, f"{module.__name__}.{name}") == f"{module.__name__}.{name}", \
                    f"{value.code} is declared twice"
    assert "theme.requirements_missing" in seen and "community.not_member" in seen


def test_every_contract_model_is_frozen() -> None:
    """Issue 15: every request, answer and event model in the contracts is frozen, so an answer is a value nobody
    changes on its way; a new model on a plain BaseModel fails here (answers derive contracts.base.Frozen)."""
    import importlib
    import inspect
    import pkgutil

    from pydantic import BaseModel

    import towntip.kernel.contracts as contracts

    seen, thawed = 0, []
    for info in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"{contracts.__name__}.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__ \
                    and "[" not in name:
                seen += 1
                if not obj.model_config.get("frozen"):
                    thawed.append(f"{info.name}.{name}")
    assert seen > 300, seen
    assert thawed == [], thawed
