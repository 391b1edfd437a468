"""A node in production shape on one machine, for fault drills: three nats-servers as one cluster with the node's
streams on three copies (R3), PostgreSQL, two instances of every service and two gateways.

`towntip node up` (towntip/node/supervisor.py) stays the embedded single node; this harness is what a production
node looks like (docs/operating.md, "A node on a NATS cluster") and what bench/cluster.py and
tests/node/test_cluster_faults.py kill pieces of (and what a rolling upgrade replaces one process at a time with
another tree's code: `Proc.replace`, tests/node/test_rolling_upgrade.py, `bench.cluster --scenario upgrade`):

- the three servers share one cluster name and one JetStream domain (the node id), routes between each other, and
  each has its own `server_name` and store; every process is given all three URLs (kernel.bus.connect), so when its
  server dies it reconnects to another;
- every process runs with TOWNTIP_STREAM_REPLICAS=3: each stream it provisions is kept on three servers
  (kernel.bus.streams), and the durable consumers inherit that;
- two instances of each service share its endpoints and its consumers' work (queue groups, one durable per
  consumer); two gateways serve HTTP on two ports (a load balancer would sit in front of them);
- every service's tables live in its own schema of one PostgreSQL database made for the cluster (dropped by
  `drop_database`), so a database fault can be made by ending that database's connections only.

Security: the servers have the embedded node's users and permissions (natsauth.BusUsers, rendered into each
server's config), so a service instance of the cluster can do exactly what it can on one server. The routes
between the servers take a user and a 256-bit password of their own (a process or terminal cannot pose as a
server). The secrets are made by `towntip node secrets`' code (deploy_secrets.write_node_secrets) under the data
dir (0700); the configs holding passwords are 0600. Everything listens on 127.0.0.1. No personal data is kept by
the harness beyond what the services keep; the drill's database is dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from towntip.kernel.bus import subjects
from towntip.kernel.secrets import load_or_create_secret
from towntip.node.deploy_secrets import write_node_secrets
from towntip.node.natsauth import GATEWAY, OPERATOR, BusUsers, service_user
from towntip.node.natsd import NatsServer, free_port, wait_for_port

STOP_GRACE = 10.0


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _pythonpath(root: Path) -> str:
    """The tree's code first: a release's `towntip`, `services`... and never this checkout's beside them."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p) != _repo_root()]
    return os.pathsep.join([str(root), *rest])


@dataclass
class Proc:
    """One Python process of the node (a service instance or a gateway), restartable with the same settings."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    http_port: int = 0  # a gateway's
    popen: subprocess.Popen | None = None
    starts: int = 0
    # The code it runs: this checkout, or a release's tree (towntip/node/releases.py) with the same virtualenv.
    root: Path = field(default_factory=_repo_root)

    def start(self) -> None:
        env = self.env | {"PYTHONPATH": _pythonpath(self.root)}
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting {self.name} ({self.root}) ---\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.root)
        self.starts += 1

    def replace(self, root: Path) -> None:
        """A rolling upgrade's step for this process: stop it gracefully (SIGTERM, then kill -9 after the grace),
        then start the same settings on another tree's code. The caller waits until it answers."""
        self.stop()
        self.root = root
        self.start()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """kill -9, by its pid (and its process group: a gateway's workers go with it)."""
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class ClusterNode:
    node_id: str
    data_dir: Path
    database_url: str  # postgresql+asyncpg://…/<the cluster's own database>; each service gets its own schema
    services: tuple[str, ...] = subjects.SERVICES
    servers: int = 3
    replicas: int = 3
    instances: int = 2
    gateways: int = 2
    terminals: tuple[str, ...] = ()  # enrolled before the servers start (each gets its own NATS user)
    log_level: str = "WARNING"
    nats: list[NatsServer] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict)
    users: BusUsers | None = None
    terminal_passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if self.replicas > self.servers:
            raise ValueError(f"{self.replicas} replicas need at least as many servers (have {self.servers})")

    # -- configuration ------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Secrets, users, and the three servers' configs (ports chosen now, kept across restarts)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        write_node_secrets(self.data_dir, node=self.node_id, services=self.services, nats_host="127.0.0.1")
        self.users = BusUsers(self.data_dir, self.node_id, self.services)
        for t in self.terminals:
            self.terminal_passwords[t] = self.users.enroll(t)
        route_password = load_or_create_secret(self.data_dir, "nats-route", nbytes=32, kind="urlsafe")
        cluster_ports = [free_port() for _ in range(self.servers)]
        self.nats = []
        for i in range(self.servers):
            name = f"{self.node_id}-n{i + 1}"
            routes = ", ".join(f'"nats-route://route:{route_password}@127.0.0.1:{p}"'
                               for j, p in enumerate(cluster_ports) if j != i)
            cluster = (f'cluster {{\n  name: "{self.node_id}"\n  listen: "127.0.0.1:{cluster_ports[i]}"\n'
                       f'  authorization {{ user: "route", password: "{route_password}" }}\n'
                       f"  routes: [{routes}]\n  no_advertise: true\n}}\n")
            self.nats.append(NatsServer(node_id=self.node_id, server_name=name, data_dir=self.data_dir / name,
                                        port=free_port(), log_file=self.data_dir / "logs" / f"{name}.log",
                                        extra_config=(cluster if self.servers > 1 else "") + self.users.render()))

    def url(self, user: str, password: str | None = None) -> str:
        """Every server's URL with one user's credentials, comma-separated (settings.nats_servers splits them)."""
        assert self.users is not None
        return ",".join(self.users.url(s.url, user, password) for s in self.nats)

    def urls(self, user: str, password: str | None = None) -> list[str]:
        return self.url(user, password).split(",")

    @property
    def operator_urls(self) -> list[str]:
        return self.urls(OPERATOR)

    def terminal_urls(self, terminal: str) -> list[str]:
        return self.urls(f"term-{terminal}", self.terminal_passwords[terminal])

    def _common_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNTIP_")}
        return env | {
            "PYTHONUNBUFFERED": "1",
            "TOWNTIP_NODE_ID": self.node_id,
            "TOWNTIP_DATA_DIR": str(self.data_dir),
            "TOWNTIP_TRACE_EXPORT": "none",
            "TOWNTIP_LOG_LEVEL": self.log_level,
            "TOWNTIP_STREAM_REPLICAS": str(self.replicas),
        }

    def _secret(self, name: str) -> str:
        return (self.data_dir / "secrets" / name).read_text().strip()

    def build(self, root: Path | None = None, *, label: str = "") -> None:
        """The service instances and gateways (not started), running the code under `root` (this checkout by
        default; a release's tree for an upgrade). `label` tells a second set apart (`points-old-1`). With no
        database URL each service has its own SQLite file in the data dir."""
        py = sys.executable
        logs = self.data_dir / "logs"
        root = root or _repo_root()
        tag = f"{label}-" if label else ""
        for s in self.services:
            for k in range(1, self.instances + 1):
                name = f"{s}-{tag}{k}"
                env = self._common_env() | {
                    "TOWNTIP_SERVICE": s, "TOWNTIP_NATS_URL": self.url(service_user(s)),
                    "TOWNTIP_CARD_KEY": self._secret("card-key"),
                }
                if self.database_url:
                    env |= {"TOWNTIP_DATABASE_URL": self.database_url, "TOWNTIP_DATABASE_SCHEMA": s}
                self.procs[name] = Proc(name, [py, "-m", subjects.SERVICE_MODULES[s]], env, logs / f"{name}.log",
                                        root=root)
        for k in range(1, self.gateways + 1):
            name, port = f"gateway-{tag}{k}", free_port()
            env = self._common_env() | {
                "TOWNTIP_NATS_URL": self.url(GATEWAY), "TOWNTIP_HTTP_HOST": "127.0.0.1",
                "TOWNTIP_HTTP_PORT": str(port), "TOWNTIP_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "TOWNTIP_SERVICES": ",".join(self.services), "TOWNTIP_ADMIN_TOKEN": self._secret("admin-token"),
                "TOWNTIP_GATEWAY_WORKERS": "1",
            }
            self.procs[name] = Proc(name, [py, "-m", "gateway"], env, logs / f"{name}.log", http_port=port,
                                    root=root)

    # -- life -----------------------------------------------------------------------------------------------

    def start_nats(self, timeout: float = 20.0) -> None:
        for server in self.nats:
            server.start(timeout)

    def start_processes(self) -> None:
        for proc in self.procs.values():
            proc.start()

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p.http_port}" for p in self.procs.values() if p.http_port]

    def wait_gateways(self, timeout: float = 120.0) -> None:
        for p in self.procs.values():
            if p.http_port:
                wait_for_port("127.0.0.1", p.http_port, timeout, p.popen)

    def restart_nats(self, i: int, timeout: float = 20.0) -> None:
        self.nats[i].start(timeout)

    def kill_nats(self, i: int) -> None:
        self.nats[i].kill()

    def instances_of(self, service: str) -> list[Proc]:
        return [p for n, p in self.procs.items() if n.split("-", 1)[0] == service]

    def dead(self) -> list[str]:
        """Processes that exited on their own (not killed by a drill and not yet restarted)."""
        return [n for n, p in self.procs.items() if p.popen is not None and not p.alive()]

    def stop(self) -> None:
        gateways = [p for p in self.procs.values() if p.http_port]
        services = [p for p in self.procs.values() if not p.http_port]
        for group in (gateways, services):
            for p in group:
                if p.alive():
                    assert p.popen is not None
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.popen.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            for p in group:
                if p.popen is not None:
                    try:
                        p.popen.wait(max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        p.kill()
        for server in self.nats:
            with contextlib.suppress(Exception):
                server.stop()
