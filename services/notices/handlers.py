"""The notices service's endpoints, one table per domain (other features of the service add their own domains to
DOMAINS). Each change runs in the unit of work's transaction and wakes the outbox relay after the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices import inbox
from services.notices.activity_handlers import DOMAINS as ACTIVITY_DOMAINS
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import notices as c
from towntip.kernel.domain import GET, Domain, read
from towntip.kernel.uow import UnitOfWork

INBOX = Domain("inbox", refusals=(c.ITEM_NOT_FOUND,), ops=(
    read(c.EP_INBOX_LIST, c.InboxQuery, c.InboxPage, inbox.list_,
         http=GET("/inbox", "My inbox: notices and official messages, newest first")),
))

DOMAINS: tuple[Domain, ...] = (INBOX, *ACTIVITY_DOMAINS)


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None],
                    clock: Callable[[], datetime] = utcnow, **features: Any) -> Endpoints:
    """The service's endpoints from its domains' tables (`features`: what the features' handlers take, such as the
    activity feature's `candidates`, `vapid_public` and `allow_local`)."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node, **features})
