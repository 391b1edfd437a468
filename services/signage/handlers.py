"""The signage service's staff endpoints, one table per domain (svc.<node>.signage.*); the screens' own protocol is
served by screen_link.py. Each change runs in the unit of work's transaction; after the commit the outbox relay and
the pusher (which tells the screens) are woken."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.signage import screens
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import signage as c
from towntip.kernel.domain import GET, OPERATOR, POST, STAFF, Domain, read, write
from towntip.kernel.uow import UnitOfWork

SCREENS = Domain(
    "screens",
    refusals=(c.STAFF_ONLY, c.SCREEN_NOT_FOUND),
    ops=(
        write(
            c.EP_SCREEN_REGISTER,
            c.ScreenRegister,
            c.Screen,
            screens.register,
            role=STAFF,
            admin=True,
            http=POST("/signage/screens", "Register a screen or change its place, orientation and groups"),
        ),
        read(
            c.EP_SCREEN_LIST,
            c.ScreenListQuery,
            c.ScreenList,
            screens.list_,
            role=STAFF,
            admin=True,
            http=GET("/signage/screens", "Screens and their state"),
        ),
        read(
            c.EP_SCREEN_GET,
            c.ScreenQuery,
            c.Screen,
            screens.get,
            role=STAFF,
            admin=True,
            http=GET("/signage/screens/{name}", "One screen, its state and latest screenshot"),
        ),
        write(c.EP_ADMIN_SCREEN_ENROLLED, c.ScreenRegister, c.Screen, screens.register, role=OPERATOR),
    ),
)

DOMAINS = (SCREENS,)


def build_endpoints(
    *,
    sessions: async_sessionmaker[AsyncSession],
    node: str,
    on_commit: Callable[[], None],
    clock: Callable[[], datetime] = utcnow,
) -> Endpoints:
    """The service's endpoints from its domains' tables."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node})
