"""The other services as the notices service asks them over the node's bus: the public lists the navi chooses from
(points' events, sns' communities, projects' themes) and a followed theme's or case's followers (projects). These
requests are allowed to the notices service's NATS user only (towntip/node/natsauth.py SERVICE_CALLS)."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client as NATS

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


class OverBus:
    def __init__(self, nc: NATS, node: str, *, timeout: float = 5.0) -> None:
        self.nc, self.node, self.timeout = nc, node, timeout

    async def _call(self, service: str, endpoint: str, q: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(self.node, service, endpoint), q, timeout=self.timeout)

    async def communities(self) -> list[sc.Community]:
        q = sc.CommunityListQuery(include_closed=False, limit=sc.PAGE_MAX)
        return sc.CommunityList.model_validate(await self._call(sc.SERVICE, sc.EP_COMMUNITY_LIST, q)).communities

    async def my_communities(self, actor: Actor) -> list[sc.Community]:
        q = sc.CommunityListQuery(member=actor, limit=sc.PAGE_MAX)
        return sc.CommunityList.model_validate(await self._call(sc.SERVICE, sc.EP_COMMUNITY_LIST, q)).communities

    async def events(self) -> list[pc.EventOut]:
        return pc.EventList.model_validate(await self._call("points", pc.EP_EVENT_LIST, None)).events

    async def themes(self) -> list[prc.Theme]:
        return prc.ThemeList.model_validate(
            await self._call("projects", prc.EP_THEME_LIST, prc.ThemeListQuery())
        ).themes

    async def followers(self, q: f.FollowersQuery) -> f.Followers:
        return f.Followers.model_validate(await self._call("projects", f.EP_FOLLOWERS, q))
