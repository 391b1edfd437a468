"""`towntip health SERVICE|gateway`: the probe a container platform runs inside a node's container (compose
healthchecks, Kubernetes readiness and liveness probes). Exit 0: healthy; 1: not.

- a service has no HTTP port: the probe asks `$SRV.PING.<service>` on the node's NATS and counts only the instances
  whose metadata names this host (towntip/kernel/bus/endpoints.py), so a dead replica is not kept alive by a live
  one. It connects as the `probe` user (TOWNTIP_HEALTH_NATS_URL or _FILE, made by `towntip node secrets`: a
  service's own user may not publish `$SRV.PING`), else with TOWNTIP_NATS_URL (a server without users);
- the gateway: GET /healthz on its own port answers (200, or 503 while some service is down: the gateway itself
  works and says so; it is not ready only while it has no NATS connection).

Security: the probe user may publish nothing but pings (towntip/node/deploy_secrets.py); it prints no secret.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import urllib.error
import urllib.request

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from towntip.kernel.bus import subjects
from towntip.kernel.settings import NodeSettings

PROBE_TIMEOUT = 3.0


class ProbeSettings(NodeSettings):
    health_nats_url: str = ""  # the `probe` user's URL; "": TOWNTIP_NATS_URL


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "health", help="probe one process of this node (for compose healthchecks and Kubernetes probes)",
        description="Exit 0 if the named process in this container answers: a service on $SRV.PING (this host's "
                    "instance), the gateway on GET /healthz.")
    p.add_argument("process", metavar="SERVICE|gateway", help=f"one of {', '.join(subjects.SERVICES)} or gateway")
    p.add_argument("--any-host", action="store_true", help="a service: any instance will do, not only this host's")
    p.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace) -> int:
    if args.process == "gateway":
        return _gateway()
    if args.process not in subjects.SERVICES:
        print(f"towntip: unknown process {args.process!r}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_service(args.process, None if args.any_host else socket.gethostname()))


async def _service(name: str, host: str | None) -> int:
    import nats

    from towntip.kernel.bus.ping import ping_services
    from towntip.node.deploy_secrets import PROBE_INBOX_PREFIX

    settings = ProbeSettings()
    try:
        # The probe user may subscribe only below its own inbox prefix (towntip/node/deploy_secrets.py).
        nc = await nats.connect(settings.health_nats_url or settings.nats_url, connect_timeout=PROBE_TIMEOUT,
                                max_reconnect_attempts=0, allow_reconnect=False, inbox_prefix=PROBE_INBOX_PREFIX,
                                name=f"health@{name}")
    except Exception as exc:  # noqa: BLE001 - any failure to connect is "not healthy"
        print(f"{name}: no NATS connection ({exc.__class__.__name__})", file=sys.stderr)
        return EXIT_FAILURE
    try:
        found = (await ping_services(nc, [name], settings.node_id, window=1.0))[name]
    finally:
        await nc.close()
    mine = [p for p in found if host is None or (p.get("metadata") or {}).get("host") == host]
    print(json.dumps({"service": name, "instances": len(found), "here": len(mine)}))
    return EXIT_OK if mine else EXIT_FAILURE


def _gateway() -> int:
    from towntip.kernel.settings import GatewaySettings

    port = GatewaySettings().http_port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=PROBE_TIMEOUT) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:  # 503: some service is down; the gateway answers all the same
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError) as exc:
        print(f"gateway: no answer on port {port} ({exc.__class__.__name__})", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps({"gateway": body.get("status"), "nats": body.get("nats"), "down": body.get("down")}))
    return EXIT_OK if body.get("nats") == "connected" else EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """`python -m towntip.cli.health points`: the probe alone (imports nothing of the other commands)."""
    parser = argparse.ArgumentParser(prog="towntip")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(["health", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
