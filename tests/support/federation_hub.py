"""The hub the federation tests start: one account per node (`towntip federation hub-config`, towntip/node/hub.py)
by default, or the old single-account hub (`layout="shared"`) where a test shows what that layout let through."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from towntip.node import leafnode
from towntip.node.hub import Hub
from towntip.node.natsd import NatsServer
from towntip.node.source_guard import SourceGuard

LAYOUTS = ("accounts", "shared")


@dataclass
class SharedHub(NatsServer):
    """The hub as it was before accounts: every node in its one account, no credentials."""

    node_id: str = "hub"
    data_dir: Path = Path("hub")
    leaf_port: int = 0
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def leaf_url(self) -> str:
        return f"nats-leaf://{self.host}:{self.leaf_port}"

    def render(self, store_dir: Path) -> str:
        self.choose_port("leaf_port")
        self.extra_config = f'leafnodes {{ listen: "{self.host}:{self.leaf_port}", no_advertise: true }}'
        return super().render(store_dir)


def start_hub(tmp_path: Path, members: list[str] | tuple[str, ...], *, layout: str = "accounts",
              monitor_port: int = 0) -> Hub | SharedHub:
    """A running hub for `members` (its data under tmp_path/hub)."""
    if layout == "accounts":
        return Hub(data_dir=tmp_path / "hub", members=list(members), monitor_port=monitor_port).start()
    assert layout == "shared" and not monitor_port, layout
    return SharedHub(data_dir=tmp_path / "hub").start()


def leaf_config(node: str, hub: Hub | SharedHub, *, protected: bool = True) -> str:
    """A node's `leafnodes` block for this hub: as `towntip node up --hub` renders it, or (not `protected`) a
    remote without the node's deny lists, as a node whose operator wants everything would write it."""
    credentials = hub.credentials.get(node)
    if protected:
        return leafnode.render_leafnodes(node, [hub.leaf_url], credentials=credentials)
    url = leafnode._with_credentials(hub.leaf_url, credentials)  # the same quoting as the node's
    return f'leafnodes {{ remotes: [{{ url: "{url}" }}], reconnect: "1s" }}\n'


@dataclass
class RunningGuard:
    nc: NATS

    async def stop(self) -> None:
        await self.nc.close()


async def start_guard(node: str, url: str) -> RunningGuard:
    """The node's source guard, as `towntip node up --hub` runs it (in the supervisor, as the operator): peers
    source the node's event streams only through it. `url`: the node's server, with a user if it has users."""
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.3)
    await SourceGuard(nc, node).start()
    return RunningGuard(nc)
