"""Who a community's members and a theme's followers are, asked of the services that hold them (sns, projects) over
the node's bus when a notice to them is previewed or sent. Asked, not copied: their membership changes every day,
and a copy kept here from their events would be one more place holding who belongs where."""

from __future__ import annotations

from typing import Protocol

from nats.aio.client import Client as NATS

from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import federation as fc
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts import sns as sc


class Audiences(Protocol):
    async def handles(self, target: c.Target) -> list[str]: ...


class AudiencesOverBus:
    """Audiences on the node's bus: sns for a community, projects for a theme (`<node>/<theme id>`)."""

    def __init__(self, nc: NATS, node: str, *, timeout: float = 10.0) -> None:
        self.nc, self.node, self.timeout = nc, node, timeout

    async def handles(self, target: c.Target) -> list[str]:
        if target.kind == "community":
            service, endpoint = "sns", sc.EP_COMMUNITY_AUDIENCE
            query: c.CommunityAudienceQuery | c.ThemeAudienceQuery = c.CommunityAudienceQuery(
                community_id=target.value)
        else:
            origin, _, theme_id = target.value.partition("/")
            service, endpoint = "projects", fc.EP_THEME_AUDIENCE
            query = c.ThemeAudienceQuery(origin_node=origin, theme_id=theme_id)
        try:
            answer = c.Audience.model_validate(await rpc.call(
                self.nc, subjects.svc(self.node, service, endpoint), query, timeout=self.timeout))
        except (errors.Unavailable, TimeoutError) as exc:
            raise c.NOTICE_AUDIENCE_UNAVAILABLE(f"{service} did not answer: {exc}") from exc
        if target.kind == "community" and not answer.known:
            raise c.NOTICE_TARGET_UNKNOWN(f"no community {target.value!r} on this node")
        return answer.handles
