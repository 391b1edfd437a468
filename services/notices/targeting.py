"""Who a notice reaches: one SQL query per target, used alike to count the recipients before sending (the staff's
preview) and to fan the notice out (services/notices/fanout.py), so the count shown is the rule that sends.

Life-stage targets read life_facets (the person's own answers, on this node); everyone reads people; a community's
members and a theme's followers are held by sns and projects, asked for over the bus (Audiences) and kept in
notice_audience for the fan-out."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.models import life_facets, notice_audience, people
from towntip.kernel import categories
from towntip.kernel.contracts import notices as c

LIFE_FACETS = {"district": "district", "stage": "stage", "event": "event", "interest": "interest"}
AUDIENCE_KINDS = ("community", "theme")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VALID: dict[str, Callable[[str, tuple[str, ...]], bool]] = {
    "everyone": lambda v, _: v == "",
    "district": lambda v, districts: bool(v) and (v in districts if districts else len(v) <= 100),
    "stage": lambda v, _: v in c.LIFE_STAGES,
    "event": lambda v, _: v in c.LIFE_EVENTS,
    "interest": lambda v, _: v in categories.codes(),
    "community": lambda v, _: re.fullmatch(UUID, v) is not None,
    "theme": lambda v, _: re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]/" + UUID, v) is not None,
}


def check(target: c.Target, districts: tuple[str, ...]) -> None:
    """Refuse a target this node cannot name (an unknown district, stage, event, category, or a malformed id)."""
    if not _VALID[target.kind](target.value, districts):
        raise c.NOTICE_TARGET_UNKNOWN(f"{target.kind} {target.value!r} is not a target of this node")


def recipients(kind: str, value: str, notice_id: str | None = None) -> Select[tuple[str]]:
    """The handles a target reaches, as one column `person` (for an audience target: the notice's kept audience)."""
    if kind == "everyone":
        return select(people.c.global_handle.label("person"))
    if kind in LIFE_FACETS:
        return select(life_facets.c.person.label("person")).where(
            life_facets.c.facet == LIFE_FACETS[kind], life_facets.c.value == value)
    return select(notice_audience.c.person.label("person")).where(notice_audience.c.notice_id == notice_id)


async def count(session: AsyncSession, kind: str, value: str, notice_id: str | None = None) -> int:
    sub = recipients(kind, value, notice_id).subquery()
    return int(await session.scalar(select(func.count()).select_from(sub)) or 0)
