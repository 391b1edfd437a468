"""The other services as the notices service asks them over the node's bus: the public lists the navi chooses from
(points' events, sns' communities, projects' themes) and a followed theme's or case's followers (projects). These
requests are allowed to the notices service's NATS user only (towntip/node/natsauth.py SERVICE_CALLS)."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.client import Client as NATS

from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor

# What the notices service may ask of the others (natsauth's SERVICE_READS grants its permissions from these).
CALLS = (
    f"{sc.SERVICE}.{sc.EP_COMMUNITY_LIST}",
    f"points.{pc.EP_EVENT_LIST}",
    f"projects.{prc.EP_THEME_LIST}",
    f"projects.{f.EP_FOLLOWERS}",
)


log = logging.getLogger(__name__)


class OverBus:
    def __init__(self, nc: NATS, node: str, *, timeout: float = 5.0) -> None:
        self.nc, self.node, self.timeout = nc, node, timeout

    async def _call(self, service: str, endpoint: str, q: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(self.node, service, endpoint), q, timeout=self.timeout)

    async def _list(self, service: str, endpoint: str, q: Any) -> Any:
        """A public list for the navi; a service not running now gives none (the navi shows what the others have)."""
        try:
            return await self._call(service, endpoint, q)
        except errors.Unavailable:
            log.info("navi: %s does not answer; its suggestions are left out", service)
            return None

    async def communities(self) -> list[sc.Community]:
        got = await self._list(
            sc.SERVICE, sc.EP_COMMUNITY_LIST, sc.CommunityListQuery(include_closed=False, limit=sc.PAGE_MAX)
        )
        return sc.CommunityList.model_validate(got).communities if got else []

    async def my_communities(self, actor: Actor) -> list[sc.Community]:
        got = await self._list(sc.SERVICE, sc.EP_COMMUNITY_LIST, sc.CommunityListQuery(member=actor, limit=sc.PAGE_MAX))
        return sc.CommunityList.model_validate(got).communities if got else []

    async def events(self) -> list[pc.EventOut]:
        got = await self._list("points", pc.EP_EVENT_LIST, None)
        return pc.EventList.model_validate(got).events if got else []

    async def themes(self) -> list[prc.Theme]:
        got = await self._list("projects", prc.EP_THEME_LIST, prc.ThemeListQuery())
        return prc.ThemeList.model_validate(got).themes if got else []

    async def followers(self, q: f.FollowersQuery) -> f.Followers:
        return f.Followers.model_validate(await self._call("projects", f.EP_FOLLOWERS, q))
