"""The projects service as the sns service asks it over the node's bus: whether a person may manage a co-creation
theme (`themes.get` with the actor answers `may_manage`), so that a theme's managers post its openings. The sns
service never reads the projects service's tables; this request is allowed to its NATS user only
(towntip/node/natsauth.py SERVICE_READS)."""

from __future__ import annotations

from nats.aio.client import Client as NATS

from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts.actor import Actor

CALLS = (f"projects.{prc.EP_THEME_GET}",)


class ThemesOverBus:
    """services.sns.openings.Themes on the node's bus."""

    def __init__(self, nc: NATS, node: str, *, timeout: float = 5.0) -> None:
        self.nc, self.node, self.timeout = nc, node, timeout

    async def manageable(self, theme_id: str, actor: Actor) -> tuple[str, bool] | None:
        try:
            got = await rpc.call(self.nc, subjects.svc(self.node, "projects", prc.EP_THEME_GET),
                                 prc.ThemeQuery(theme_id=theme_id, actor=actor), timeout=self.timeout)
        except (errors.NotFound, errors.Forbidden):
            return None
        theme = prc.Theme.model_validate(got)
        return theme.title, theme.may_manage
