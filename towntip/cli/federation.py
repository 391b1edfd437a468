"""`towntip federation anchor ...`: run and administer a federation's trust anchor (the hub or the secretariat).

    towntip federation anchor init  --data-dir D --entity-id URL    # make the anchor's key; prints its JWKS file
    towntip federation anchor add   --data-dir D --entity-id NODE_URL --node NODE_ID
    towntip federation anchor remove --data-dir D --entity-id NODE_URL
    towntip federation anchor list  --data-dir D
    towntip federation anchor serve --data-dir D --entity-id URL [--host H] [--port P]

Nodes are started with `towntip node up --trust-anchor URL --trust-anchor-jwks <D>/anchor-jwks.json`: the JWKS
file is how nodes know the anchor's keys (hand it over out of band). A member is vouched for only while it is in
the list; `remove` takes effect at every node within its federation cache time (5 minutes by default).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.kernel.settings import check_node_id


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("federation", help="the trust anchor of a federation of nodes")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    anchor = groups.add_parser("anchor", help="run and administer a trust anchor")
    verbs = anchor.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str, *, entity: bool = True) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help_)
        p.add_argument("--data-dir", default="./var/anchor", help="the anchor's key and members (default: %(default)s)")
        if entity:
            p.add_argument("--entity-id", required=True, help="an entity id: a base URL like https://hub.example.jp")
        return p

    verb("init", "make the anchor's key (once) and print where its public JWKS is").set_defaults(func=cmd_init)
    add = verb("add", "vouch for a member node")
    add.add_argument("--node", required=True, help="the member's node id")
    add.set_defaults(func=cmd_add)
    verb("remove", "stop vouching for a member node").set_defaults(func=cmd_remove)
    verb("list", "the members", entity=False).set_defaults(func=cmd_list)
    serve = verb("serve", "serve the anchor's endpoints over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8900)
    serve.set_defaults(func=cmd_serve)


def _url(value: str) -> str | None:
    v = value.rstrip("/")
    if not v.startswith(("https://", "http://")) or " " in v or "#" in v or "?" in v:
        return None
    return v


def _anchor(args: argparse.Namespace, entity_id: str = ""):  # noqa: ANN202
    from identity.federation import TrustAnchor

    return TrustAnchor(Path(args.data_dir), entity_id)


def cmd_init(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id)
    if entity is None:
        return fail(f"--entity-id must be a URL (https://…), not {args.entity_id!r}", EXIT_USAGE)
    anchor = _anchor(args, entity)
    print(anchor.jwks_path)
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
    anchor.add(entity, args.node)
    print(f"vouching for {args.node} at {entity}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id) or args.entity_id
    if not _anchor(args).remove(entity):
        return fail(f"{entity} is not a member", EXIT_FAILURE)
    print(f"no longer vouching for {entity}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    print(json.dumps(_anchor(args).members(), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    entity = _url(args.entity_id)
    if entity is None:
        return fail(f"--entity-id must be a URL (https://…), not {args.entity_id!r}", EXIT_USAGE)
    import uvicorn

    from identity.federation import anchor_app

    uvicorn.run(anchor_app(_anchor(args, entity)), host=args.host, port=args.port, log_level="info")
    return EXIT_OK
