"""A node's link to the federation's hub: the `leafnodes { remotes: [...] }` block of its nats-server config.

All nodes share one subject space over their leafnodes, so without limits node A (whose operator may publish
anything on A's own server) could publish B's events, forge taps at B's terminals, call B's services (admin ones
included) and delete or read B's streams through B's JetStream domain. A node does not rely on the hub's operator
for this: its own remote refuses, on its side of the link,

- to take in (`deny_imports`) anything on its own namespaces — only this node speaks as this node — and any
  request to its JetStream API (`$JS.<node>.API.>`): a peer sources this node's event streams only through the
  node's source guard (towntip/node/source_guard.py), which the hub's accounts map a peer's consumer creation to;
- to send out (`deny_exports`) what is private to the node: its terminals' messages, its services' endpoints, its
  dead letters, its request replies, its service discovery and JetStream advisories.

What stream sourcing needs (measured with three nats-server 2.15 processes, a spy subscribed to `>` at the hub):
the sourcing node sends `$JS.<peer>.API.CONSUMER.CREATE.<STREAM>.<name>.<filter>` with the reply subject
`$JSC.R.<id>`; the peer's consumer delivers to `$JS.S.<node>.<peer>.S.<id>` (the deliver prefix the node asks
for: messages and idle heartbeats) and asks for flow control on `$JS.FC.>`; the consumer acknowledges nothing
(AckNone). The hub gives each node its own account and lets exactly those cross (towntip/node/hub.py), the
consumer creation mapped onto the node's `fedsrc.<node>.CREATE.…`, where the node's source guard checks it (the
deliver subject above all) before its own JetStream sees it. These lists stay, so the node does not depend on the
hub's operator for the rest; through a hub without accounts a node cannot be sourced at all.
"""

from __future__ import annotations

import json
from pathlib import Path

from towntip.kernel.bus import subjects

# Services whose event stream peers may source: identity's public profiles (into FED_<peer>) and projects' public
# facts of co-creation (into FED_<peer>_PROJECTS): published themes, their phases and results, cases, wide-area
# participation. Every event type on EVT_<NODE>_PROJECTS was checked to carry only what the node's public pages
# show (docs/projects.md, "Federation of themes and cases"; tests/projects/test_projects_federation.py keeps the list).
# Signage's federation stream EVT_<NODE>_SIGFED carries only the content a town offers and the plays it reports per
# day of others' items (docs/signage.md, "Between towns"): not EVT_<NODE>_SIGNAGE, which names screens and staff.
# Every other stream of the node is closed to consumers created from outside.
# `publicnotices` is the notices service's stream of notices to everyone, with their content
# (contracts.notices_towns): its targeted notices and official messages stay on EVT_<NODE>_NOTICES, never sourced.
# `sigfed` is the signage service's offers and plays reported back (contracts.signage_federation).
# `snsfed` is the sns service's directory of open communities (contracts.sns_directory): what their public pages
# show, a member count rounded down, no person; EVT_<NODE>_SNS (posts, comments, friend requests) stays closed.
FEDERATED_SERVICES: tuple[str, ...] = ("identity", "projects", "sigfed", "publicnotices", "snsfed")
# Services that keep their own FED_<NODE>_<SERVICE> (identity uses FED_<NODE>): private like FED_<NODE>.
OWN_FED_STREAMS: tuple[str, ...] = ("projects", "sigfed", "publicnotices", "snsfed")

# Leafnode URL schemes nats-server takes for a remote.
HUB_SCHEMES = ("nats-leaf://", "nats://", "tls://", "ws://", "wss://")

def deny_imports(node: str, services: tuple[str, ...] = subjects.SERVICES) -> list[str]:
    """Subjects this node never takes in from the hub. `services` is kept for callers; every stream is closed the
    same way: a peer reaches this node's JetStream API not at all, and sources its event streams through the
    node's source guard (`fedsrc.<node>.CREATE.…`, towntip/node/source_guard.py), to which the hub maps a peer's
    consumer creation."""
    own = [f"evt.{node}.>", f"edge.{node}.>", f"svc.{node}.>", f"dlq.{node}.>", f"fed.{node}.>"]
    # Acks for this node's own consumers come from its own processes; a peer's source consumer acks nothing.
    return [*own, f"{subjects.js_api(node)}.>", "$JS.ACK.>", "$SRV.>"]


def deny_exports(node: str) -> list[str]:
    """Subjects this node never sends to the hub: what only its own processes and terminals may see."""
    return [f"edge.{node}.>", f"svc.{node}.>", f"dlq.{node}.>", f"fed.{node}.>",
            "_INBOX.>",  # replies to requests made on this node: session tokens, terminal passwords, …
            "$SRV.>", "$JS.EVENT.>"]


def read_credentials(path: str | Path) -> tuple[str, str]:
    """`user:password` (one line) from a file, for the hub's leafnode listener. Raises ValueError."""
    text = Path(path).read_text().strip()
    user, sep, password = text.partition(":")
    if not sep or not user or not password or "\n" in text:
        raise ValueError(f"{path} must hold one line user:password")
    return user, password


def _with_credentials(url: str, credentials: tuple[str, str] | None) -> str:
    if credentials is None:
        return url
    from urllib.parse import quote

    scheme, _, rest = url.partition("://")
    user, password = credentials
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def check_hub_url(url: str) -> str | None:
    """Why `url` is no hub URL for a leafnode remote, or None. Credentials belong in a file, not in the URL."""
    if not url.startswith(HUB_SCHEMES):
        return f"a hub URL must start with {', '.join(HUB_SCHEMES)}, not {url!r}"
    rest = url.partition("://")[2]
    if "@" in rest:
        return "a hub URL takes no user or password: put user:password in --hub-credentials-file"
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"a hub URL must be scheme://host:port, not {url!r}"
    return None


def render_leafnodes(
    node: str,
    hub_urls: list[str] | tuple[str, ...],
    *,
    services: tuple[str, ...] = subjects.SERVICES,
    credentials: tuple[str, str] | None = None,
    reconnect: str = "1s",
) -> str:
    """The `leafnodes` block of a node's nats-server config: one remote to the hub (several URLs = the hub's
    servers, tried in turn), with this node's deny lists. Empty without hub URLs."""
    if not hub_urls:
        return ""
    urls = ", ".join(json.dumps(_with_credentials(u, credentials)) for u in hub_urls)
    imports = ", ".join(json.dumps(s) for s in deny_imports(node, services))
    exports = ", ".join(json.dumps(s) for s in deny_exports(node))
    return (
        "leafnodes {\n"
        "  remotes: [\n"
        f"    {{ urls: [{urls}],\n"
        f"      deny_imports: [{imports}],\n"
        f"      deny_exports: [{exports}] }}\n"
        "  ]\n"
        f"  reconnect: {json.dumps(reconnect)}\n"
        "}\n"
    )
