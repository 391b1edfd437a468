"""Private calendar URLs (issue 18 point 5): the token is made here, answered once and kept only as its SHA-256 (as
bookings' feed does); a new one replaces the old, whose URL stops working. The token opens the person's calendar
for the gateway, which reads it with the person as an actor without roles."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.feeds_models import calendar_tokens
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_token(session: AsyncSession, *, data: f.CalendarTokenIn, now: datetime) -> f.CalendarToken:
    token = secrets.token_urlsafe(32)
    person = data.actor.global_handle
    await session.execute(delete(calendar_tokens).where(calendar_tokens.c.person == person))
    await session.execute(
        insert(calendar_tokens).values(
            person=person, user_id=data.actor.user_id, token_hash=token_hash(token), created_at=now
        )
    )
    return f.CalendarToken(token=token, created_at=now)


async def status(session: AsyncSession, *, q: f.CalendarStatusQuery) -> f.CalendarStatus:
    row = (
        await session.execute(
            select(calendar_tokens.c.created_at).where(calendar_tokens.c.person == q.actor.global_handle)
        )
    ).first()
    return f.CalendarStatus(active=row is not None, created_at=aware(row.created_at) if row is not None else None)


async def holder(session: AsyncSession, *, q: f.CalendarHolderQuery) -> f.CalendarHolder:
    row = (
        await session.execute(
            select(calendar_tokens.c.person, calendar_tokens.c.user_id).where(
                calendar_tokens.c.token_hash == token_hash(q.token)
            )
        )
    ).first()
    if row is None:
        raise f.CALENDAR_TOKEN_UNKNOWN("no calendar with that token")
    # No roles: whatever the gateway reads with this actor is what the person may read, never what staff may.
    return f.CalendarHolder(actor=Actor(user_id=row.user_id, global_handle=row.person, display_name=row.person))


async def forget(session: AsyncSession, person: str) -> None:
    """A deleted account's private calendar goes with it (called from people.forget, in its transaction)."""
    await session.execute(delete(calendar_tokens).where(calendar_tokens.c.person == person))
