"""`towntip node up`: run a whole node (nats-server, services, gateway) under one supervisor."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from towntip.cli import EXIT_USAGE, fail
from towntip.kernel.bus import subjects
from towntip.kernel.settings import check_node_id
from towntip.kernel.town import TownError, check_colour, load_emblem
from towntip.node.leafnode import check_hub_url, read_credentials


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node = subparsers.add_parser("node", help="run this municipality's node")
    verbs = node.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser(
        "up",
        help="start nats-server, every service and the gateway; restart what crashes; Ctrl-C stops all",
        description="Start a whole node: its own nats-server (unless --nats-url), each service, the gateway.",
    )
    up.add_argument("--node", default="tsurugashima", help="node id (default: %(default)s)")
    up.add_argument("--http-host", default="127.0.0.1", help="gateway address (default: %(default)s)")
    up.add_argument("--http-port", type=int, default=8000, help="gateway port (default: %(default)s)")
    up.add_argument("--public-url", default="",
                    help="the node's address as browsers reach it: OpenID issuer and links in e-mails "
                         "(default: http://<http-host>:<http-port>)")
    up.add_argument("--trust-anchor", default="",
                    help="the federation's trust anchor (its entity id, a URL); with --trust-anchor-jwks")
    up.add_argument("--trust-anchor-jwks", default="",
                    help="the anchor's public keys (JWKS file from `towntip federation anchor init`)")
    up.add_argument("--nats-port", type=int, default=0, help="port of the embedded nats-server (default: a free one)")
    up.add_argument("--data-dir", default="./var",
                    help="databases, JetStream store, logs, secrets (default: %(default)s)")
    up.add_argument("--nats-url", default="", help="use this NATS instead of starting one (nats://host:port)")
    up.add_argument("--hub", action="append", default=[], metavar="URL",
                    help="join the federation: the hub's leafnode URL, nats-leaf://host:port (repeat for each of "
                         "the hub's servers); the node refuses on its side what no peer may say as this node")
    up.add_argument("--hub-credentials-file", default="", metavar="PATH",
                    help="a file holding user:password for the hub's leafnode listener (never put it in the URL)")
    up.add_argument("--database-url", default="",
                    help="one PostgreSQL URL for all services (each gets the schema named after it); "
                         "default: one SQLite file per service in the data dir")
    up.add_argument("--service-db", action="append", default=[], metavar="NAME=URL",
                    help="database URL for one service (repeatable)")
    up.add_argument("--trace-export", default="",
                    help="none | console | file:PATH (rotated at 10 MB, 3 older files kept) | otlp:URL (an "
                         "OpenTelemetry collector's OTLP/HTTP address, e.g. otlp:http://127.0.0.1:4318) "
                         "(default: file:<data-dir>/traces.jsonl)")
    up.add_argument("--town-name", default="", metavar="NAME",
                    help="the town's name residents read in the portal (e.g. 鶴ヶ島市; default: the demo table's "
                         "for the RING towns, else the node id)")
    up.add_argument("--town-name-en", default="", metavar="NAME", help="the town's name in English")
    up.add_argument("--districts", default="", metavar="A|B|…",
                    help="the districts residents choose their own from, separated by | (default: the demo table's "
                         "for Tsurugashima, its 小学校区; none: free text)")
    up.add_argument("--town-colour", default="", metavar="#RRGGBB",
                    help="the town's colour for the portal's header and buttons; white text on it must reach "
                         "WCAG AA (4.5:1) (default: the demo table's, else a green)")
    up.add_argument("--town-emblem", default="", metavar="PATH",
                    help="the town's emblem, an SVG or PNG file of at most 256 KB (default: a drawn one)")
    up.add_argument("--gateway-workers", type=int, default=int(os.environ.get("TOWNTIP_GATEWAY_WORKERS") or 0),
                    metavar="N", help="gateway processes serving the HTTP port (default: 1 with --processes grouped, "
                    "else one per core, at most 4; or TOWNTIP_GATEWAY_WORKERS)")
    up.add_argument("--trusted-proxies", default=os.environ.get("TOWNTIP_TRUSTED_PROXIES") or "",
                    metavar="ADDR,NET",
                    help="the reverse proxies in front of the gateway (TLS ends there), e.g. 127.0.0.1 or "
                         "10.0.0.0/24: X-Forwarded-For and X-Forwarded-Proto are believed from them only "
                         "(default: none)")
    up.add_argument("--processes", choices=["grouped", "one-per-service"],
                    default=os.environ.get("TOWNTIP_PROCESSES") or "grouped",
                    help="grouped: the services as tasks of one process, each with its own NATS user and database "
                         "(least memory); one-per-service: a process each, as containers run them "
                         "(default: %(default)s, or TOWNTIP_PROCESSES)")
    up.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                    help="log level of the node's processes (default: %(default)s)")
    up.add_argument("--log-format", default="text", choices=["text", "json"],
                    help="the node's processes' logs: text for a person, json (one object a line with the trace "
                         "id) for a log collector (default: %(default)s)")
    up.set_defaults(func=cmd_up)

    sec = verbs.add_parser(
        "secrets",
        help="make the secret files of a node in containers (compose.yaml, deploy/kubernetes): tokens, keys, "
             "the nats-server users with their permissions, each process's NATS URL",
        description="Write (or keep, when run again) the node's secret files under OUT/secrets/ "
                    "(towntip/node/deploy_secrets.py). Keep them out of git.")
    sec.add_argument("--out", default="deploy/local", help="where (default: %(default)s; .gitignored)")
    sec.add_argument("--node", default="tsurugashima", help="node id (default: %(default)s)")
    sec.add_argument("--nats-host", default="nats", help="the NATS service's host name (default: %(default)s)")
    sec.add_argument("--postgres-host", default="postgres",
                     help="PostgreSQL's host name in database-url (default: %(default)s)")
    sec.set_defaults(func=cmd_secrets)

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--node", default="", help="node id (default: the data dir's; for restore, the archive's)")
    where.add_argument("--data-dir", default="./var", help="the node's data dir (default: %(default)s)")
    where.add_argument("--database-url", default="",
                       help="the PostgreSQL URL the node runs on, as given to `node up` (default: SQLite files)")
    where.add_argument("--service-db", action="append", default=[], metavar="NAME=URL",
                       help="one service's database URL, as given to `node up` (repeatable)")
    where.add_argument("--nats-url", default="",
                       help="the node's outside NATS, as given to `node up` (default: the embedded one)")
    bak = verbs.add_parser(
        "backup", parents=[where],
        help="write one archive of the node: every service's database, its secrets, its streams' messages",
        description="Back up a node, running or stopped, into one tar.gz (towntip/node/backup.py). The archive "
                    "holds every secret of the node, the card key included: keep it encrypted, off the machine.")
    bak.add_argument("--out", required=True, metavar="FILE", help="the archive to write (.tar.gz; mode 0600)")
    bak.set_defaults(func=cmd_backup)
    res = verbs.add_parser(
        "restore", parents=[where],
        help="bring a backup up in a new, empty data dir (then `towntip node up`)",
        description="Restore a `towntip node backup` archive into an empty data dir (and empty PostgreSQL "
                    "schemas). Refuses a damaged archive, another node's archive (unless --force) and a data dir "
                    "that is not empty.")
    res.add_argument("archive", metavar="FILE", help="the archive `towntip node backup` wrote")
    res.add_argument("--force", action="store_true", help="restore another node's archive as --node")
    res.set_defaults(func=cmd_restore)


def _port(value: int, what: str, *, zero_ok: bool = False) -> str | None:
    if (value == 0 and zero_ok) or 1 <= value <= 65535:
        return None
    return f"{what} must be between 1 and 65535, not {value}"


def _hub_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --hub and --hub-credentials-file, or None (the password itself is never shown)."""
    if args.hub and args.nats_url:
        return "--hub links the embedded nats-server to the hub; with --nats-url the leafnodes are that server's"
    if args.hub_credentials_file and not args.hub:
        return "--hub-credentials-file goes with --hub"
    for url in args.hub:
        problem = check_hub_url(url)
        if problem:
            return f"--hub: {problem}"
    if args.hub_credentials_file:
        try:
            read_credentials(args.hub_credentials_file)
        except OSError as exc:
            return f"--hub-credentials-file: cannot read {args.hub_credentials_file!r} ({exc.strerror})"
        except ValueError as exc:
            return f"--hub-credentials-file: {exc}"
    return None


def _town_problem(args: argparse.Namespace) -> str | None:
    """The town's colour and emblem checked here, so that a faint colour or a bad file is said before any process
    starts (the gateway would otherwise stop at its start)."""
    for option, value, check in (("--town-colour", args.town_colour, check_colour),
                                  ("--town-emblem", args.town_emblem, load_emblem)):
        try:
            if value:
                check(value)
        except TownError as exc:
            return f"{option}: {exc}"
    return None


def _proxies_problem(value: str) -> str | None:
    """None if every comma-separated item is an IP address or network (a bare `*` would believe anyone)."""
    import ipaddress

    for item in (p.strip() for p in value.split(",") if p.strip()):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"--trusted-proxies wants IP addresses or networks separated by commas, not {item!r}"
    return None


def cmd_up(args: argparse.Namespace) -> int:
    from towntip.node.supervisor import NodeConfig, run_node

    try:
        check_node_id(args.node)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    for problem in (_port(args.http_port, "--http-port"), _port(args.nats_port, "--nats-port", zero_ok=True),
                    None if 0 <= args.gateway_workers <= 16 else
                    f"--gateway-workers must be between 1 and 16 (0: one per core), not {args.gateway_workers}",
                    None if args.processes in ("grouped", "one-per-service") else  # TOWNTIP_PROCESSES: unchecked
                    f"--processes must be grouped or one-per-service, not {args.processes!r}"):
        if problem:
            return fail(problem, EXIT_USAGE)
    if args.public_url and not args.public_url.startswith(("http://", "https://")):
        return fail(f"--public-url must start with https:// (or http:// on a laptop), not {args.public_url!r}",
                    EXIT_USAGE)
    if bool(args.trust_anchor) != bool(args.trust_anchor_jwks):
        return fail("--trust-anchor and --trust-anchor-jwks go together", EXIT_USAGE)
    if args.trust_anchor_jwks and not Path(args.trust_anchor_jwks).is_file():
        return fail(f"--trust-anchor-jwks: no file {args.trust_anchor_jwks!r}", EXIT_USAGE)
    if args.nats_url and args.nats_port:
        return fail("--nats-port is for the embedded nats-server; it makes no sense with --nats-url", EXIT_USAGE)
    if args.nats_url and not args.nats_url.startswith(("nats://", "tls://", "ws://", "wss://")):
        return fail(f"--nats-url must look like nats://host:port, not {args.nats_url!r}", EXIT_USAGE)
    problem = _hub_problem(args) or _town_problem(args) or _proxies_problem(args.trusted_proxies)
    if problem:
        return fail(problem, EXIT_USAGE)
    trace = args.trace_export
    if trace and trace not in ("none", "console") and not (trace.startswith(("file:", "otlp:")) and len(trace) > 5):
        return fail(f"--trace-export must be none, console, file:PATH or otlp:URL, not {trace!r}", EXIT_USAGE)
    if args.database_url and not args.database_url.startswith("postgresql"):
        return fail("--database-url is for PostgreSQL (postgresql+asyncpg://…); "
                    "without it each service uses its own SQLite file", EXIT_USAGE)
    service_dbs: dict[str, str] = {}
    for item in args.service_db:
        name, sep, url = item.partition("=")
        if not sep or not url:
            return fail(f"--service-db wants NAME=URL, not {item!r}", EXIT_USAGE)
        if name not in subjects.SERVICES:
            return fail(f"--service-db: unknown service {name!r} (services: {', '.join(subjects.SERVICES)})",
                        EXIT_USAGE)
        service_dbs[name] = url
    config = NodeConfig(
        node_id=args.node, data_dir=Path(args.data_dir), http_host=args.http_host, http_port=args.http_port,
        public_url=args.public_url.rstrip("/"), nats_port=args.nats_port, nats_url=args.nats_url,
        database_url=args.database_url,
        hub_urls=tuple(args.hub),
        hub_credentials_file=str(Path(args.hub_credentials_file).resolve()) if args.hub_credentials_file else "",
        service_dbs=service_dbs, trace_export=trace, log_level=args.log_level, log_format=args.log_format,
        trust_anchor=args.trust_anchor.rstrip("/"),
        trust_anchor_jwks=str(Path(args.trust_anchor_jwks).resolve()) if args.trust_anchor_jwks else "",
        town_name=args.town_name.strip(), town_name_en=args.town_name_en.strip(), districts=args.districts.strip(),
        town_colour=args.town_colour.strip(), gateway_workers=args.gateway_workers,
        processes=args.processes, trusted_proxies=args.trusted_proxies.replace(" ", ""),
        town_emblem=str(Path(args.town_emblem).resolve()) if args.town_emblem else "",
    )
    return run_node(config)


def cmd_secrets(args: argparse.Namespace) -> int:
    from towntip.node.deploy_secrets import write_node_secrets

    try:
        check_node_id(args.node)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    made = write_node_secrets(Path(args.out), node=args.node, nats_host=args.nats_host,
                              postgres_host=args.postgres_host)
    print(f"{len(made)} files in {Path(args.out) / 'secrets'} (keep them out of git):")
    for path in made:
        print(f"  {path.name}")
    return 0


def _backup_target(args: argparse.Namespace, node: str) -> Any:
    from towntip.node.backup import NodeTarget

    if args.database_url and not args.database_url.startswith("postgres"):
        raise ValueError("--database-url is for PostgreSQL (postgresql+asyncpg://…)")
    service_dbs: dict[str, str] = {}
    for item in args.service_db:
        name, sep, url = item.partition("=")
        if not sep or not url or name not in subjects.SERVICES:
            raise ValueError(f"--service-db wants NAME=URL with a service's name, not {item!r}")
        service_dbs[name] = url
    return NodeTarget(node=check_node_id(node), data_dir=Path(args.data_dir), database_url=args.database_url,
                      service_dbs=service_dbs, nats_url=args.nats_url)


def cmd_backup(args: argparse.Namespace) -> int:
    from towntip.node.backup import BackupError, create_backup, node_of

    node = args.node or node_of(Path(args.data_dir))
    if not node:
        return fail(f"no node id found in {args.data_dir} (nats/nats-server.conf): pass --node", EXIT_USAGE)
    try:
        target = _backup_target(args, node)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        manifest = asyncio.run(create_backup(target, Path(args.out)))
    except BackupError as exc:
        return fail(f"バックアップできません backup failed: {exc}")
    messages = sum(s["messages"] for s in manifest["streams"].values())
    print(f"バックアップ完了 backup of {target.node} written: {args.out} — {len(manifest['databases'])} databases, "
          f"{messages} stream messages, {sum(m.startswith('secrets/') for m in manifest['members'])} secrets. "
          "秘密鍵を含みます: 暗号化して保管 (it holds the node's secrets: keep it encrypted)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from towntip.node.backup import BackupError, peek_node, restore_backup

    try:
        node = args.node or peek_node(Path(args.archive))
        target = _backup_target(args, node)
    except BackupError as exc:
        return fail(f"復元できません restore refused: {exc}")
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        manifest = asyncio.run(restore_backup(Path(args.archive), target, force=args.force))
    except BackupError as exc:
        return fail(f"復元できません restore refused: {exc}")
    print(f"復元完了 restored {manifest['node']} ({manifest['created_at']}) as {target.node} into {target.data_dir}: "
          f"{len(manifest['databases'])} databases, {manifest['restored_messages']} stream messages. "
          f"次に start it: towntip node up --node {target.node} --data-dir {args.data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m towntip.cli.node up …`: the node command alone (works while other CLI groups are missing)."""
    parser = argparse.ArgumentParser(prog="towntip")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv if argv is not None else ["node", *sys.argv[1:]])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
