"""What the projects domains share: ids, times, the audit log, events, memberships. No NATS, no commits here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects.models import audit_log, memberships
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware

VISITOR = "visitor"  # the actor of what an anonymous visitor did (the contact form)


def new_uuid() -> str:
    """Ids of things that may travel to other nodes: random UUIDs (OS entropy), unique across nodes."""
    return str(uuid.uuid4())


def plain(value: Any) -> Any:
    """A value as it goes into the audit log's JSON (times in UTC ISO 8601)."""
    if isinstance(value, datetime):
        return aware(value).astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what changed: (old values, new values) of the keys whose values differ."""
    b, a = plain(dict(before)), plain(dict(after))
    keys = [k for k in a if b.get(k) != a[k]]
    return {k: b.get(k) for k in keys}, {k: a[k] for k in keys}


async def audit(
    session: AsyncSession, *, kind: str, subject_id: str, action: str, actor: Actor | None, at: datetime,
    before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None, note: str = "",
) -> None:
    """One row of the append-only history, in the caller's transaction (so the change and its record commit
    together, or neither does)."""
    await session.execute(insert(audit_log).values(
        subject_kind=kind, subject_id=subject_id, action=action,
        actor=actor.global_handle if actor else VISITOR, actor_name=actor.display_name if actor else VISITOR,
        at=at, before=plain(dict(before)) if before is not None else None,
        after=plain(dict(after)) if after is not None else None, note=note,
    ))


async def roles_of(session: AsyncSession, handle: str) -> dict[str, str]:
    """{organisation id: role} of the person with this global handle."""
    rows = await session.execute(
        select(memberships.c.org_id, memberships.c.role).where(memberships.c.global_handle == handle))
    return {r.org_id: r.role for r in rows}
