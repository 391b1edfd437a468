"""A person's rows in a service's tables, found, exported and erased from one explicit list (issue 20 point 7).

Each service's `privacy.py` declares what it keeps about a person as a tuple of `Kept` rows (a table, the column
that names the person, what that column holds, and what erasure does to the row), and calls `export` and `erase`
with it: a table added later is one more line. What a generic rule cannot do (the ledger's accounts re-keyed,
bookings cancelled so the waitlist moves) the service does in its own code before `erase`.

Erasure never leaves the person's handle, user id or name behind: a row is deleted, or the column naming them is
set to NULL or to a pseudonym (`anon-<random>`, the same one for every row of one erasure, so counts still add
up), and the row's other personal columns (names, phones, e-mail) are cleared with it. Published outbox rows that
mention the person go too (they would be pruned later anyway; JetStream keeps its own copy for its 30 days).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy import Table, Text, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event, peer_event
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts.privacy import ANONYMOUS_NAME

# global handle, user id, 'person:<user id>', the handle alone, the e-mail address (export only: erasure never has it)
Key = Literal["handle", "user_id", "account", "local", "email"]
Erase = Literal["delete", "null", "anonymise", "replace", "rename", "keep"]


@dataclass(frozen=True)
class Person:
    """Who is asked about or forgotten, in each of the shapes services store them."""

    global_handle: str
    user_id: str | None = None
    email: str | None = None

    def value(self, key: Key) -> str | None:
        if key == "email":
            return self.email
        if key == "handle":
            return self.global_handle
        if key == "local":
            return self.global_handle.split("@", 1)[0]
        if self.user_id is None:
            return None
        return self.user_id if key == "user_id" else f"person:{self.user_id}"


@dataclass(frozen=True)
class Kept:
    """One column of one table that names the person. `erase`: delete the row, set the column NULL, or set it to
    the erasure's pseudonym; "replace": the column holds the person inside a longer value (an idempotency key
    `course:<code>:<user id>`), which is replaced there by the pseudonym ("keep": exported, erased by the service's
    own code; "rename": the column shows a name, which becomes ANONYMOUS_NAME). `names` are set to
    ANONYMOUS_NAME and `clear` to NULL (or '' where NOT NULL) on the same rows. `about`: what it is, in Japanese."""

    table: Table
    column: str
    key: Key = "handle"
    erase: Erase = "delete"
    names: tuple[str, ...] = ()
    clear: tuple[str, ...] = ()
    about: str = ""


def _match(table: Table, k: Kept, v: str) -> Any:
    col = table.c[k.column]
    return col.contains(v, autoescape=True) if k.erase == "replace" else col == v


def pseudonym() -> str:
    """A stand-in for the person in rows that stay (the same one within one erasure): tells nobody who it was."""
    return f"anon-{secrets.token_hex(8)}"


def _json(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return f"<{len(bytes(v))} bytes>"
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, list | tuple):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    return v


async def export(session: AsyncSession, kept: Sequence[Kept], person: Person) -> dict[str, list[dict[str, Any]]]:
    """Every row of every listed table that names the person, as JSON-ready dicts, by table name."""
    out: dict[str, list[dict[str, Any]]] = {}
    by_table: dict[str, list[Kept]] = {}
    for k in kept:
        by_table.setdefault(k.table.name, []).append(k)
    for name, ks in by_table.items():
        table = ks[0].table
        conds = [_match(table, k, v) for k in ks if (v := person.value(k.key)) is not None]
        rows = (await session.execute(select(table).where(or_(*conds)))).mappings().all() if conds else []
        out[name] = [{c: _json(v) for c, v in r.items()} for r in rows]
    return out


def about(kept: Iterable[Kept]) -> dict[str, str]:
    found: dict[str, str] = {}
    for k in kept:
        if k.about and k.table.name not in found:
            found[k.table.name] = k.about
    return found


async def erase(session: AsyncSession, kept: Sequence[Kept], person: Person, *, alias: str) -> None:
    """Applies each row's rule in order (list a table's children before it, as foreign keys want)."""
    for k in kept:
        v = person.value(k.key)
        if v is None or k.erase == "keep":
            continue
        table = k.table
        where = _match(table, k, v)
        if k.erase == "replace":
            col = table.c[k.column]
            await session.execute(update(table).where(where).values({col: func.replace(col, v, alias)}))
            continue
        if k.erase == "delete":
            await session.execute(delete(table).where(where))
            continue
        values: dict[str, Any] = {n: ANONYMOUS_NAME for n in k.names}
        values |= {n: (None if table.c[n].nullable else "") for n in k.clear}
        values[k.column] = None if k.erase == "null" else ANONYMOUS_NAME if k.erase == "rename" else alias
        await session.execute(update(table).where(where).values(**values))


async def redact_json(session: AsyncSession, table: Table, key: str, columns: Sequence[str], person: Person, *,
                      alias: str) -> None:
    """JSON columns (an audit log's before and after) that mention the person get the pseudonym in their place."""
    needles = [person.global_handle, *([person.user_id] if person.user_id else [])]
    cols = [table.c[c] for c in columns]
    conds = [cast(c, Text).contains(n, autoescape=True) for c in cols for n in needles]
    rows = (await session.execute(select(table.c[key], *cols).where(or_(*conds)))).all()
    for row in rows:
        values = {}
        for c in columns:
            raw = json.dumps(getattr(row, c), ensure_ascii=False)
            for n in needles:
                raw = raw.replace(n, alias)
            values[c] = json.loads(raw)
        await session.execute(update(table).where(table.c[key] == row[0]).values(**values))


async def scrub_outbox(session: AsyncSession, outbox: Table, person: Person, *, also: Iterable[str] = ()) -> None:
    """Published outbox rows that mention the person (their handle, user id or `also`) go now instead of at the next
    prune; unpublished ones stay, as peers and services still need them."""
    needles = [person.global_handle, *(x for x in (person.user_id, *also) if x)]
    rows = (await session.execute(select(outbox.c.seq, outbox.c.payload).where(
        outbox.c.published_at.is_not(None)))).all()
    gone = [r.seq for r in rows if any(n.encode() in bytes(r.payload) for n in needles)]
    for i in range(0, len(gone), 500):
        await session.execute(delete(outbox).where(outbox.c.seq.in_(gone[i:i + 500])))


@dataclass(frozen=True)
class Erasure:
    """One UserDeleted as a service applies it: who, what they chose for their writing, when, at which node."""

    person: Person
    content: str  # "anonymise" | "remove"
    at: datetime
    node: str
    alias: str  # this erasure's pseudonym


def consumer_spec(node: str, service: str, durable: str, *, peers: bool = False) -> ConsumerSpec:
    """This node's UserDeleted (EVT_<NODE>_IDENTITY), or with `peers` other home nodes' (FED_<NODE>)."""
    if peers:
        return ConsumerSpec(stream=subjects.fed_stream(node), durable=durable,
                            filter_subject="evt.*.identity.user_deleted", service=service, node=node, batch=64)
    return ConsumerSpec(stream=subjects.evt_stream(node, "identity"), durable=durable,
                        filter_subject=subjects.evt(node, "identity", "user_deleted"), service=service, node=node,
                        batch=64)


class UserDeletedHandler:
    """Applies UserDeleted with the service's `forget`, once (through the kernel's inbox). A node speaks only for its
    own people: a UserDeleted naming a person whose home is not the announcing node is dead-lettered (403) and
    changes nothing (the sns service's rule, services/sns/people.py, for every service)."""

    def __init__(self, node: str, forget: Callable[[AsyncSession, Erasure], Awaitable[None]], *,
                 peers: bool = False) -> None:
        self.node = node
        self.forget = forget
        self.peers = peers

    def decode(self, msg: Msg) -> tuple[str, dict[str, Any]]:
        at: datetime | None
        if self.peers:
            key, home, type_, data = peer_event(msg, self.node, "identity")
            key, at = f"{home}:{key}", None
        else:
            key, type_, data, at = own_event(msg, self.node, "identity")
            home, key = self.node, f"identity:{key}"
        if type_ != ic.UserDeleted.type_name():
            return key, {"handle": None}
        try:
            event = ic.UserDeleted.parse(data)
        except ValidationError:
            raise Rejected(f"UserDeleted of {home!r} that does not fit its contract", code=403) from None
        handle = event.global_handle
        if not handle.endswith(f"@{home}") or len(handle) > 64 or event.home_node != home:
            raise Rejected(f"UserDeleted of {home!r} names no person of that node: {handle!r}", code=403)
        uid = event.user_id if event.user_id and 8 <= len(event.user_id) <= 64 and not self.peers else None
        content = "remove" if event.content == "remove" else "anonymise"
        return key, {"handle": handle, "user_id": uid, "content": content, "at": at}

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[dict[str, Any]]]) -> list[Outcome]:
        for d in deliveries:
            if not d.duplicate and d.item["handle"]:
                i = d.item
                await self.forget(session, Erasure(person=Person(i["handle"], i["user_id"]), content=i["content"],
                                                   at=i["at"] or utcnow(), node=self.node, alias=pseudonym()))
        return [None] * len(deliveries)
