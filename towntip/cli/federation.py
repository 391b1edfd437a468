"""`towntip federation anchor ...`: run and administer a federation's trust anchor (the hub or the secretariat).

    towntip federation anchor init  --data-dir D --entity-id URL    # make the anchor's key; prints its JWKS file
    towntip federation anchor add   --data-dir D --entity-id NODE_URL --node NODE_ID [--expect-thumbprint=T]
                                    [--configuration-file F]
    towntip federation anchor rekey --data-dir D --entity-id NODE_URL [--expect-thumbprint=T] [--configuration-file F]
    towntip federation anchor remove --data-dir D --entity-id NODE_URL
    towntip federation anchor list  --data-dir D
    towntip federation anchor serve --data-dir D --entity-id URL [--host H] [--port P]
    towntip federation thumbprint   (--url NODE_URL | --configuration-file F)   # the member operator's side

    towntip federation hub-config --node A --node B … [--listen HOST:PORT] [--data-dir D] [--out FILE]

`add` pins the member's federation key: it fetches the member's entity configuration once (from
NODE_URL/.well-known/openid-federation, or reads the one the member's operator handed over, `--configuration-file`),
checks that it is signed by one of the keys it publishes, for NODE_URL and NODE_ID, and prints the key's RFC 7638
thumbprint. Compare it with the one the member's operator reads on their own machine (`towntip federation
thumbprint --url http://127.0.0.1:<port>`, or the thumbprint that `towntip identity keys rotate-federation`
prints); with `--expect-thumbprint=T` (with `=`: a thumbprint may begin with `-`) the anchor compares and refuses (exit
1, nothing saved) when they differ. From then on the anchor vouches for that key only — it fetches nothing when asked —
so a member that changes its federation key (`towntip identity keys rotate-federation`) is refused by the other nodes
until the anchor's operator runs `rekey` (the same checks; the node id is kept). A member rotating its provider's keys
(`towntip identity keys rotate`) needs no rekey: those keys travel inside the configuration its federation key signs.
Members of an older members.json ({entity id: node id}, no keys) are not vouched for until `rekey` pins their key;
`list` and `serve` name them.

`hub-config` writes the hub's nats-server config (one account per node, towntip/node/hub.py) and one credentials
file per node (`<D>/credentials/<node>`, 0600) that the node's operator passes to `towntip node up --hub …
--hub-credentials-file`. Adding or removing a node: run it again with the new list and `--apply URL` (the hub's
client port): the hub reloads and a removed node's live link is cut (a bare SIGHUP would leave it up); a removed
node's credentials file is deleted.

Nodes are started with `towntip node up --trust-anchor URL --trust-anchor-jwks <D>/anchor-jwks.json`: the JWKS
file is how nodes know the anchor's keys (hand it over out of band). A member is vouched for only while it is in
the list; `remove` takes effect at every node within its federation cache time (5 minutes by default).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.kernel.settings import check_node_id

if TYPE_CHECKING:
    from towntip.anchor import TrustAnchor


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("federation", help="the trust anchor and the hub of a federation of nodes")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    anchor = groups.add_parser("anchor", help="run and administer a trust anchor")
    verbs = anchor.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str, *, entity: bool = True) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_)
        p.add_argument("--data-dir", default="./var/anchor", help="the anchor's key and members (default: %(default)s)")
        if entity:
            p.add_argument("--entity-id", required=True, help="an entity id: a base URL like https://hub.example.jp")
        return p

    def pinning(p: argparse.ArgumentParser) -> None:
        p.add_argument("--expect-thumbprint", action="append", default=[], metavar="T",
                       help="the member's federation key thumbprint as its operator gave it (RFC 7638, SHA-256, "
                            "base64url; repeat or comma list; write --expect-thumbprint=T, a thumbprint may begin with "
                            "-): refuse unless the pinned keys are exactly these")
        p.add_argument("--configuration-file", default="", metavar="FILE",
                       help="the member's entity configuration (the JWT its /.well-known/openid-federation serves), "
                            "handed over by its operator, instead of fetching it from the member's URL")

    verb("init", "make the anchor's key (once) and print where its public JWKS is").set_defaults(func=cmd_init)
    add = verb("add", "vouch for a member node: pin its federation key")
    add.add_argument("--node", required=True, help="the member's node id")
    pinning(add)
    add.set_defaults(func=cmd_add)
    rekey = verb("rekey", "pin a member's new federation key (after its `keys rotate-federation`; or an old "
                 "members.json)")
    pinning(rekey)
    rekey.set_defaults(func=cmd_rekey)
    verb("remove", "stop vouching for a member node").set_defaults(func=cmd_remove)
    verb("list", "the members", entity=False).set_defaults(func=cmd_list)
    serve = verb("serve", "serve the anchor's endpoints over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8900)  # towntip.anchor.app.DEFAULT_PORT (imported lazily)
    serve.set_defaults(func=cmd_serve)

    thumb = groups.add_parser("thumbprint", help="a node's federation key thumbprint, for its anchor's operator")
    where = thumb.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", default="", help="the node's address as its operator reaches it (e.g. locally)")
    where.add_argument("--configuration-file", default="", metavar="FILE", help="its entity configuration (a JWT)")
    thumb.set_defaults(func=cmd_thumbprint)

    hub = groups.add_parser("hub-config", help="write the hub's nats-server config: one account per member node")
    hub.add_argument("--node", action="append", default=[], metavar="NODE_ID",
                     help="a member node (repeat for each); a prefecture hub lists its prefecture's nodes")
    hub.add_argument("--prefecture", action="append", default=[], metavar="NAME=NODE,NODE,…",
                     help="the national hub: each prefecture hub and its nodes (repeat for each); a node meets "
                          "there only the nodes of other prefectures")
    hub.add_argument("--upstream", action="append", default=[], metavar="URL",
                     help="a prefecture hub: the national hub's leafnode URL (nats-leaf://national:7422); one "
                          "remote per member account, bound to the same-named account there")
    hub.add_argument("--upstream-credentials-dir", default="", metavar="DIR",
                     help="with --upstream: the national hub's credentials/ folder (its `leaf-<node>` files)")
    hub.add_argument("--listen", default="0.0.0.0:7422", metavar="HOST:PORT",
                     help="the leafnode listener nodes dial (default: %(default)s)")
    hub.add_argument("--client-listen", default="127.0.0.1:4222", metavar="HOST:PORT",
                     help="the hub's client port: only its admin logs in there, for --apply (default: %(default)s)")
    hub.add_argument("--monitor", default="", metavar="HOST:PORT", help="nats-server's monitoring port (default: off)")
    hub.add_argument("--data-dir", default="./var/hub", help="the members' credentials (default: %(default)s)")
    hub.add_argument("--out", default="", metavar="FILE", help="the config file (default: <data-dir>/hub.conf)")
    hub.add_argument("--apply", default="", metavar="URL",
                     help="the running hub's client URL (nats://127.0.0.1:4222): reload it and cut off removed nodes")
    hub.set_defaults(func=cmd_hub_config)


def _url(value: str) -> str | None:
    from towntip.anchor import base_url

    return base_url(value)


def _anchor(args: argparse.Namespace, entity_id: str = "") -> TrustAnchor:
    from towntip.anchor import TrustAnchor

    return TrustAnchor(Path(args.data_dir), entity_id)


def cmd_init(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id)
    if entity is None:
        return fail(f"--entity-id must be a URL (https://…), not {args.entity_id!r}", EXIT_USAGE)
    anchor = _anchor(args, entity)
    print(anchor.jwks_path)
    return EXIT_OK


def _expected(values: list[str]) -> list[str]:
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def _configuration(args: argparse.Namespace, entity: str) -> str:
    """The member's entity configuration: the file handed over, or fetched once from its URL (TrustError)."""
    from towntip.anchor import fetch_configuration_sync
    from towntip.kernel.trust import TrustError

    if args.configuration_file:
        try:
            return Path(args.configuration_file).read_text().strip()
        except OSError as exc:
            raise TrustError(f"--configuration-file: {exc.strerror or exc}") from None
    try:
        return fetch_configuration_sync(entity)
    except TrustError as exc:
        raise TrustError(f"{exc} (is the member's site up? its operator can hand over the configuration: "
                         f"--configuration-file)") from None


def _pin(args: argparse.Namespace, entity: str, node: str) -> int:
    from towntip.anchor import check_configuration
    from towntip.kernel.trust import TrustError

    anchor = _anchor(args)
    before = anchor.thumbprints(entity)
    try:
        enrolment = check_configuration(_configuration(args, entity), entity, node)
    except TrustError as exc:
        return fail(f"not enrolled, nothing saved: {exc}", EXIT_FAILURE)
    expected = _expected(args.expect_thumbprint)
    for t in enrolment.thumbprints:
        print(f"federation key of {node} at {entity}: {t}")
    try:
        enrolment.require(expected)
    except TrustError as exc:
        return fail(f"not enrolled, nothing saved: {exc}; ask the member's operator (`towntip federation "
                    f"thumbprint --url <its local address>`)", EXIT_FAILURE)
    anchor.pin(enrolment)
    if not expected:
        print("compare this thumbprint with the one the member's operator gives you (`towntip federation "
              "thumbprint` on their machine); `--expect-thumbprint` makes the anchor compare", file=sys.stderr)
    if before and before != enrolment.thumbprints:
        print(f"re-pinned {entity}: {', '.join(before)} -> {', '.join(enrolment.thumbprints)}")
    print(f"vouching for {node} at {entity}")
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id)
    if entity is None:
        return fail(f"--entity-id must be the member's base URL, not {args.entity_id!r}", EXIT_USAGE)
    try:
        check_node_id(args.node)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    anchor = _anchor(args)
    taken = {e: n for e, n in anchor.members().items() if n == args.node and e != entity}
    if taken:
        return fail(f"node id {args.node!r} already belongs to {next(iter(taken))}", EXIT_FAILURE)
    return _pin(args, entity, args.node)


def cmd_rekey(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id)
    if entity is None:
        return fail(f"--entity-id must be the member's base URL, not {args.entity_id!r}", EXIT_USAGE)
    node = _anchor(args).members().get(entity)
    if node is None:
        return fail(f"{entity} is not a member: `towntip federation anchor add` enrols it", EXIT_FAILURE)
    return _pin(args, entity, node)


def cmd_remove(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id) or args.entity_id
    if not _anchor(args).remove(entity):
        return fail(f"{entity} is not a member", EXIT_FAILURE)
    print(f"no longer vouching for {entity}")
    return EXIT_OK


def _warn_unpinned(anchor: TrustAnchor) -> None:
    for entity in anchor.unpinned():
        print(f"towntip: {entity} has no pinned keys and is not vouched for: run `towntip federation anchor rekey "
              f"--entity-id {entity}`", file=sys.stderr)


def cmd_list(args: argparse.Namespace) -> int:
    anchor = _anchor(args)
    out = {}
    for entity, record in sorted(anchor.records().items()):
        thumbprints = anchor.thumbprints(entity)
        out[entity] = {"node": record["node"], "thumbprints": thumbprints,
                       "pinned_at": record.get("pinned_at") if thumbprints else None}
    print(json.dumps(out, indent=2, ensure_ascii=False))
    _warn_unpinned(anchor)
    return EXIT_OK


def cmd_thumbprint(args: argparse.Namespace) -> int:
    from towntip.anchor import fetch_configuration_sync, inspect_configuration
    from towntip.kernel.trust import TrustError

    try:
        if args.configuration_file:
            token = Path(args.configuration_file).read_text()
        else:
            if _url(args.url) is None:
                return fail(f"--url must be a URL (http://127.0.0.1:8000), not {args.url!r}", EXIT_USAGE)
            token = fetch_configuration_sync(args.url)
        found = inspect_configuration(token)
    except OSError as exc:
        return fail(f"--configuration-file: {exc.strerror or exc}", EXIT_FAILURE)
    except TrustError as exc:
        return fail(str(exc), EXIT_FAILURE)
    print(f"entity id: {found.entity_id}")
    print(f"node id: {found.node}")
    for t in found.thumbprints:
        print(f"federation key thumbprint: {t}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id)
    if entity is None:
        return fail(f"--entity-id must be a URL (https://…), not {args.entity_id!r}", EXIT_USAGE)
    from towntip.anchor.app import serve

    _warn_unpinned(_anchor(args, entity))
    serve(Path(args.data_dir), entity, host=args.host, port=args.port)
    return EXIT_OK


def _host_port(value: str) -> str | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c in host for c in " /@\"'"):
        return None
    return value


def _prefectures(values: list[str]) -> dict[str, list[str]] | str:
    """--prefecture NAME=a,b … as {name: nodes}, or why not."""
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, nodes = value.partition("=")
        members = [n.strip() for n in nodes.split(",") if n.strip()]
        if not sep or not name.strip() or not members:
            return f"--prefecture wants NAME=NODE,NODE,…, not {value!r}"
        if name.strip() in out:
            return f"--prefecture {name.strip()} given twice"
        out[name.strip()] = members
    return out


def _hub_members(args: argparse.Namespace) -> tuple[list[str], dict[str, list[str]]] | str:
    """The hub's members and, for the national hub, its prefectures; or what is wrong with the options."""
    from towntip.node.leafnode import check_hub_url

    prefectures = _prefectures(args.prefecture)
    if isinstance(prefectures, str):
        return prefectures
    if prefectures and args.node:
        return "--prefecture (the national hub) or --node (a hub of nodes), not both"
    if prefectures and args.upstream:
        return "the national hub has no --upstream"
    if bool(args.upstream) != bool(args.upstream_credentials_dir):
        return "--upstream and --upstream-credentials-dir go together"
    nodes = [n for ns in prefectures.values() for n in ns] if prefectures else list(args.node)
    if not nodes:
        return "name the members: --node NODE_ID … (or --prefecture NAME=NODE,… for the national hub)"
    for url in args.upstream:
        why = check_hub_url(url)
        if why:
            return f"--upstream: {why}"
    for node in nodes:
        try:
            check_node_id(node)
        except ValueError as exc:
            return f"--node: {exc}"
    twice = sorted({n for n in nodes if nodes.count(n) > 1})
    if twice:
        return f"--node given twice: {', '.join(twice)}"
    for option, value in (("--listen", args.listen), ("--client-listen", args.client_listen),
                          ("--monitor", args.monitor or "x:1")):
        if _host_port(value) is None:
            return f"{option} must be HOST:PORT, not {value!r}"
    return nodes, prefectures


def cmd_hub_config(args: argparse.Namespace) -> int:
    from towntip.node.hub import prefecture_peers, write_hub_config
    from towntip.node.leafnode import read_credentials

    checked = _hub_members(args)
    if isinstance(checked, str):
        return fail(checked, EXIT_USAGE)
    args.node, prefectures = checked
    data_dir = Path(args.data_dir)
    out = Path(args.out) if args.out else data_dir / "hub.conf"
    hierarchy: dict[str, Any] = {}
    if prefectures:
        hierarchy["peers"] = prefecture_peers(prefectures, national=True)
    if args.upstream:
        try:
            hierarchy["upstream_credentials"] = {
                n: read_credentials(Path(args.upstream_credentials_dir) / n) for n in args.node}
        except (OSError, ValueError) as exc:
            return fail(f"--upstream-credentials-dir: {exc} (the national hub's credentials of every member)",
                        EXIT_USAGE)
        hierarchy["upstream"] = list(args.upstream)
    files = write_hub_config(data_dir, list(args.node), out, leaf_listen=args.listen,
                             client_listen=args.client_listen, monitor=args.monitor, **hierarchy)
    print(f"hub config: {out}")
    if prefectures:
        for name, nodes in prefectures.items():
            print(f"{name}: towntip federation hub-config --node {' --node '.join(nodes)} --upstream "
                  f"nats-leaf://<this hub>:{args.listen.rpartition(':')[2]} --upstream-credentials-dir "
                  f"{data_dir / 'credentials'}  (copy those files to the prefecture hub's operator)")
        files = {}
    for node, path in files.items():
        print(f"{node}: towntip node up --node {node} --hub nats-leaf://<this hub>:{args.listen.rpartition(':')[2]} "
              f"--hub-credentials-file {path}")
    if not args.apply:
        print("start it with `nats-server -c <config>`; after a change run this again with --apply nats://HOST:PORT")
        return EXIT_OK
    import asyncio

    from towntip.node.hub import HubError, apply_hub

    try:
        cut = asyncio.run(apply_hub(args.apply, data_dir, list(args.node)))
    except HubError as exc:
        return fail(str(exc), EXIT_FAILURE)
    print(f"the hub took the config; cut off: {', '.join(cut) or 'nobody'}")
    return EXIT_OK
