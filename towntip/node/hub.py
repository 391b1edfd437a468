"""The federation's hub: a nats-server with one account per member node (`towntip federation hub-config`).

Each node dials the hub as a leafnode with its own credentials and lands in its own account, so the nodes no
longer share one subject space: what crosses between two nodes is exactly what their accounts export and import,
and that is what JetStream sourcing of the federated event streams needs (measured with nats-server 2.15, three
leaf nodes and a spy in each account; docs/federation.md, "Between nodes"). For member `n` and each peer `p`:

- `n` exports, to its peers only, the creation of a consumer on its federated event streams
  (`$JS.<n>.API.CONSUMER.CREATE.EVT_<N>_<S>.*.evt.<n>.<s>.>`: a named consumer filtered to the stream's events);
  the peer's request and the reply cross as a service import (the reply goes back on its own);
- `n` exports to `p` alone the deliveries it makes for `p`'s sources (`$JS.S.<p>.<n>.>`: `p` asks for that
  deliver prefix, `kernel.bus.streams.peer_source`): messages, idle heartbeats, flow-control requests;
- `n` exports to `p` alone its flow-control replies for the consumers `p` runs for `n`'s sources
  (`$JS.FC.EVT_<P>_<S>.>`): without them a source stalls after its first window ("stalled on flow control").

Nothing else: not `$JS.<n>.API` otherwise, not `evt.`, `svc.`, `edge.`, `_INBOX.`, `$JS.ACK.`, `$SRV.`. The
leafnode users may connect as leafnodes only.

Adding or removing a node = render again and apply (`apply_hub`): the hub's admin (the only user of the system
account, on the hub's loopback client port) asks the server to reload its config, then kicks the leafnode
connections of accounts no longer in it. A reload alone does not do that: measured with nats-server 2.15.1, a
removed member's live leafnode connection stays up after SIGHUP and keeps receiving what it sourced.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from towntip.kernel.bus import subjects
from towntip.kernel.secrets import load_or_create_secret
from towntip.node.leafnode import FEDERATED_SERVICES, _with_credentials, read_credentials
from towntip.node.natsd import NatsServer, free_port, write_private

ADMIN = "hub-admin"
SYSTEM_ACCOUNT = "SYS"  # nats-server's own account: server requests (reload, leafz, kick) for the hub's admin


def leaf_user(node: str) -> str:
    return f"leaf-{node}"


def create_consumer(node: str, service: str) -> str:
    """The consumer creation a peer's source sends for `node`'s event stream of `service` (name, then filter)."""
    return f"{subjects.js_api(node)}.CONSUMER.CREATE.{_create_tail(node, service)}"


def guarded_create(node: str, service: str) -> str:
    """The same creation as `node`'s account takes it: on the subject its source guard answers."""
    return f"{subjects.source_create(node)}.{_create_tail(node, service)}"


def _create_tail(node: str, service: str) -> str:
    return f"{subjects.evt_stream(node, service)}.*.{subjects.evt_all(node, service)}"


def exports(node: str, members: list[str], services: tuple[str, ...] = FEDERATED_SERVICES,
            peers: list[str] | None = None) -> list[dict[str, Any]]:
    """What `node`'s account offers, each to exactly the peers that need it (an export to nobody would be public).
    `peers`: the accounts this hub connects it with (default: every other member)."""
    peers = [p for p in (members if peers is None else peers) if p != node]
    if not peers:
        return []
    out: list[dict[str, Any]] = [{"service": guarded_create(node, s), "accounts": peers} for s in services]
    for peer in peers:
        out.append({"stream": subjects.source_deliver(peer, node) + ".>", "accounts": [peer]})
        out += [{"stream": subjects.flow_control(peer, s), "accounts": [peer]} for s in services]
    return out


def imports(node: str, members: list[str], services: tuple[str, ...] = FEDERATED_SERVICES,
            peers: list[str] | None = None) -> list[dict[str, Any]]:
    """What `node`'s account takes from each peer: the mirror of the peer's exports to it."""
    out: list[dict[str, Any]] = []
    for peer in (p for p in (members if peers is None else peers) if p != node):
        out += [{"service": {"account": peer, "subject": guarded_create(peer, s)}, "to": create_consumer(peer, s)}
                for s in services]
        out.append({"stream": {"account": peer, "subject": subjects.source_deliver(node, peer) + ".>"}})
        out += [{"stream": {"account": peer, "subject": subjects.flow_control(node, s)}} for s in services]
    return out


def render_hub_config(
    members: dict[str, str],
    *,
    admin_password: str,
    leaf_listen: str,
    client_listen: str = "127.0.0.1:4222",
    monitor: str = "",
    server_name: str = "hub",
    peers: dict[str, list[str]] | None = None,
    upstream: list[str] | tuple[str, ...] = (),
    upstream_credentials: dict[str, tuple[str, str]] | None = None,
) -> str:
    """The hub's whole nats-server config: one account per member (`members`: node id → its leafnode password),
    and the system account with the hub's admin (a client, not a leafnode; on the client port only).

    A hub of hubs (docs/federation.md, "Prefecture hubs and a national hub"): `peers[node]` are the accounts this
    hub connects `node` with (default: every other member): at a prefecture hub the members of its prefecture, at
    the national hub the members of the other prefectures, so that any two nodes meet at exactly one hub and
    nothing crosses twice. `upstream` (a prefecture hub's national hub URLs) adds one leafnode remote per member
    account, bound to the same-named account there with `upstream_credentials[node]` (the national hub's
    `leaf-<node>` user): what a node's account at the national hub imports from another prefecture is then asked
    for through this hub, account by account, and the per-account isolation holds at both levels."""
    names = sorted(members)
    if SYSTEM_ACCOUNT in names:
        raise ValueError(f"{SYSTEM_ACCOUNT!r} is the hub's own account")
    admin = {"user": ADMIN, "password": admin_password, "allowed_connection_types": ["STANDARD"]}
    accounts = [f"  {json.dumps(SYSTEM_ACCOUNT)}: {json.dumps({'users': [admin]})}"]
    for node in names:
        user = {"user": leaf_user(node), "password": members[node], "allowed_connection_types": ["LEAFNODE"]}
        # a member removed from `members` but still named in `peers` is no peer (its account is gone)
        mine = None if peers is None else sorted(set(peers.get(node, ())) & set(names))
        body = {"users": [user], "exports": exports(node, names, peers=mine),
                "imports": imports(node, names, peers=mine)}
        accounts.append(f"  {json.dumps(node)}: {json.dumps(body)}")
    lines = [f"server_name: {json.dumps(server_name)}", f"listen: {json.dumps(client_listen)}"]
    if monitor:
        lines.append(f"http: {json.dumps(monitor)}")
    lines += [f"system_account: {json.dumps(SYSTEM_ACCOUNT)}", "accounts {", *accounts, "}"]
    # no_advertise: leaves dial only the URLs they were given (FIELD-NOTES)
    leaf = [f"listen: {json.dumps(leaf_listen)}", "no_advertise: true"]
    if upstream:
        creds = upstream_credentials or {}
        missing = [n for n in names if n not in creds]
        if missing:
            raise ValueError(f"no national hub credentials for {', '.join(missing)}")
        remotes = [json.dumps({"urls": [_with_credentials(u, creds[n]) for u in upstream], "account": n})
                   for n in names]
        leaf += ["remotes: [", *(f"  {r}," for r in remotes), "]", 'reconnect: "1s"']
    lines.append("leafnodes {\n  " + "\n  ".join(leaf) + "\n}")
    return "\n".join(lines) + "\n"


def prefecture_peers(prefectures: dict[str, list[str]], *, national: bool) -> dict[str, list[str]]:
    """Whom each node meets at one hub of the hierarchy: at its prefecture's hub (`national=False`) the other
    members of its prefecture, at the national hub the members of every other prefecture."""
    where = {n: p for p, nodes in prefectures.items() for n in nodes}
    return {n: sorted(m for m, q in where.items() if m != n and (q != where[n]) == national) for n in where}


def credentials_path(data_dir: Path, node: str) -> Path:
    return Path(data_dir) / "credentials" / node


def member_credentials(data_dir: Path, nodes: list[str]) -> dict[str, str]:
    """Each member's leafnode password: kept in `<data_dir>/credentials/<node>` (`leaf-<node>:<secret>`, 0600,
    the file its operator passes to `towntip node up --hub-credentials-file`); a fresh 256-bit secret for a new
    member. Files of nodes no longer listed are deleted, so a removed node's secret is gone with it."""
    folder = Path(data_dir) / "credentials"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    passwords: dict[str, str] = {}
    for node in nodes:
        path = credentials_path(data_dir, node)
        try:
            user, password = read_credentials(path)
        except (OSError, ValueError):  # none yet, or not one we wrote: a fresh one
            user, password = "", ""
        if user == leaf_user(node):
            passwords[node] = password
            continue
        passwords[node] = secrets.token_urlsafe(32)
        write_private(path, f"{leaf_user(node)}:{passwords[node]}\n")
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in passwords:
            stale.unlink()
    return passwords


def admin_password(data_dir: Path) -> str:
    """The hub admin's password (`<data_dir>/secrets/hub-admin`, 0600, made once)."""
    return load_or_create_secret(data_dir, ADMIN, nbytes=32, kind="urlsafe")


def write_hub_config(data_dir: Path, nodes: list[str], out: Path, **render: Any) -> dict[str, Path]:
    """Render the hub's config for `nodes` into `out` (0600) and return each member's credentials file."""
    passwords = member_credentials(data_dir, nodes)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_private(Path(out), render_hub_config(passwords, admin_password=admin_password(data_dir), **render))
    return {node: credentials_path(data_dir, node) for node in sorted(nodes)}


async def _quiet(_exc: Exception) -> None:
    """nats-py's default error callback logs a refused connection with a traceback; apply_hub says it once."""


class HubError(Exception):
    """The hub did not take its new config."""


async def apply_hub(url: str, data_dir: Path, members: list[str], timeout: float = 5.0) -> list[str]:
    """Make the running hub at `url` (its client port) take its written config and cut off every leafnode whose
    account is no longer a member; returns the node ids cut off. Raises HubError."""
    import nats

    scheme, _, rest = url.partition("://")
    try:
        nc = await asyncio.wait_for(nats.connect(
            f"{scheme}://{ADMIN}:{admin_password(data_dir)}@{rest}", connect_timeout=timeout, allow_reconnect=False,
            max_reconnect_attempts=0, error_cb=_quiet), timeout * 2)
    except Exception as exc:  # nats-py raises several kinds: each means the same here
        raise HubError(f"cannot reach the hub's admin at {url}: {exc}") from exc
    try:
        async def ask(subject: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
            reply = json.loads((await nc.request(subject, json.dumps(payload or {}).encode(), timeout=timeout)).data)
            if reply.get("error"):
                raise HubError(f"{subject}: {reply['error'].get('description', reply['error'])}")
            return reply

        server = (await ask("$SYS.REQ.SERVER.PING.LEAFZ"))["server"]["id"]
        await ask(f"$SYS.REQ.SERVER.{server}.RELOAD")
        cut: list[str] = []
        for leaf in (await ask(f"$SYS.REQ.SERVER.{server}.LEAFZ"))["data"].get("leafs") or []:
            if leaf.get("account") not in members:
                await ask(f"$SYS.REQ.SERVER.{server}.KICK", {"cid": leaf["id"]})
                cut.append(leaf.get("name") or leaf.get("account"))
        return cut
    finally:
        await nc.close()


@dataclass
class Hub(NatsServer):
    """A running hub for tests and benchmarks: `members` are the node ids; `credentials[node]` is what that node
    passes to its leafnode remote. `set_members` adds or removes nodes while it runs."""

    node_id: str = "hub"
    data_dir: Path = Path("hub")
    members: list[str] = field(default_factory=list)
    leaf_port: int = 0
    monitor_port: int = 0
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    peers: dict[str, list[str]] | None = None  # a hub of the hierarchy: whom each member meets here
    upstream: list[str] = field(default_factory=list)  # a prefecture hub: the national hub's leafnode URLs
    upstream_credentials: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def leaf_url(self) -> str:
        return f"nats-leaf://{self.host}:{self.leaf_port}"

    def render(self, store_dir: Path) -> str:  # the hub keeps no streams
        self.choose_port("leaf_port")
        passwords = member_credentials(self.data_dir, self.members)
        self.credentials = {n: (leaf_user(n), p) for n, p in passwords.items()}
        return render_hub_config(passwords, admin_password=admin_password(self.data_dir),
                                 leaf_listen=f"{self.host}:{self.leaf_port}", client_listen=f"{self.host}:{self.port}",
                                 monitor=f"{self.host}:{self.monitor_port}" if self.monitor_port else "",
                                 server_name=self.node_id, peers=self.peers, upstream=self.upstream,
                                 upstream_credentials={n: c for n, c in self.upstream_credentials.items()
                                                       if n in self.members})

    async def set_members(self, members: list[str]) -> list[str]:
        """Write the config for `members` and apply it; returns the nodes cut off."""
        self.members = list(members)
        self.write_config()
        return await apply_hub(self.url, self.data_dir, self.members)


def start_hierarchy(data_dir: Path, prefectures: dict[str, list[str]], *, host: str = "127.0.0.1",
                    national_members: list[str] | None = None, monitor: bool = False) -> tuple[Hub, dict[str, Hub]]:
    """A running national hub and one hub per prefecture (`prefectures`: name → its member nodes), each prefecture
    hub dialling the national hub with one remote per member account: for tests and benchmarks (`monitor`: each
    with nats-server's monitoring port)."""
    national = Hub(node_id="national", data_dir=Path(data_dir) / "national", host=host,
                   members=national_members or [n for nodes in prefectures.values() for n in nodes],
                   peers=prefecture_peers(prefectures, national=True), monitor_port=free_port() if monitor else 0)
    national.start()
    local = prefecture_peers(prefectures, national=False)
    hubs: dict[str, Hub] = {}
    for pref, nodes in prefectures.items():
        hubs[pref] = Hub(node_id=f"hub-{pref}", data_dir=Path(data_dir) / f"hub-{pref}", host=host,
                         members=list(nodes), peers={n: local[n] for n in nodes}, upstream=[national.leaf_url],
                         upstream_credentials=national.credentials, monitor_port=free_port() if monitor else 0)
        hubs[pref].start()
    return national, hubs
