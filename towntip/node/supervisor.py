"""`towntip node up`: one command runs a whole node: nats-server, every service, the gateway.

What it does, in order:
1. takes a lock on the data dir (one node per data dir), makes the secrets on first start
   (<data-dir>/secrets/admin-token, card-key; mode 0600, reused later);
2. starts its own nats-server (unless --nats-url) — a leafnode of the federation's hub with --hub, refusing on
   its side of the link what no peer may say as this node (`towntip.node.leafnode`) — and provisions the node's
   streams;
3. starts the services and waits until each answers $SRV.PING.<name>: by default (`--processes grouped`) as tasks of
   one host process (`python -m towntip.kernel.host …`: each service keeps its own NATS user, database and
   settings; one interpreter instead of seven keeps the node within 600 MB), or each in its own process
   (`--processes one-per-service`: `python -m services.<name>`, as containers run them);
4. starts the gateway (`python -m gateway`) and waits until GET /healthz answers;
5. restarts any process that dies (backoff 0.5 s doubling to 10 s, reset after 30 s of running), the
   embedded nats-server included, a host with all its services; answers svc.<node>.node.status with each
   process's state (a hosted service's is its host's, with `"host": <its name>`);
6. on SIGINT/SIGTERM: SIGTERM to the gateway, then the services, then nats-server, each given up to 10 s
   before SIGKILL; exits 0.

Children run in their own process groups (a Ctrl-C in the terminal reaches only the supervisor, which then
stops them in order) and log to <data-dir>/logs/<name>.log, copied aside and truncated past 10 MB with 3 older
copies kept (`towntip.node.logfiles`): a node's logs never take more than about 40 MB per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import TypeAdapter, ValidationError

from towntip.kernel.bus import subjects
from towntip.kernel.bus.ping import ping_services  # the same ping the gateway's /healthz uses
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.points import TerminalId
from towntip.kernel.host import hosted_env
from towntip.kernel.secrets import load_or_create_secret
from towntip.node import logfiles
from towntip.node.leafnode import read_credentials, render_leafnodes
from towntip.node.natsauth import (
    GATEWAY,
    OPERATOR,
    BusUsers,
    screen_inbox_prefix,
    screen_user,
    service_user,
    terminal_inbox_prefix,
    terminal_user,
)
from towntip.node.natsd import NatsServer
from towntip.node.source_guard import SourceGuard

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
BACKOFF_RESET_AFTER = 30.0
STOP_GRACE = 10.0
READY_TIMEOUT = 90.0  # a loaded machine: seven services migrating in one host, then the gateway
POLL = 0.1

NATS_NAME = "nats-server"
GATEWAY_NAME = "gateway"
HOST_NAME = "services"  # the host process of `--processes grouped`
ONE_PER_SERVICE, GROUPED = "one-per-service", "grouped"
PROCESS_LAYOUTS = (GROUPED, ONE_PER_SERVICE)

STARTING, RUNNING, RESTARTING, STOPPED = "starting", "running", "restarting", "stopped"


class StartupError(Exception):
    """The node cannot start (port taken, data dir locked, nats-server does not start)."""


@dataclass
class NodeConfig:
    node_id: str = "tsurugashima"
    data_dir: Path = Path("./var")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    public_url: str = ""  # as browsers reach the gateway; "" means http://<http-host>:<http-port>
    trust_anchor: str = ""  # the federation's trust anchor (entity id) ...
    trust_anchor_jwks: str = ""  # ... and its public keys (a JWKS file)
    nats_port: int = 0  # 0: a free port
    nats_url: str = ""  # an existing NATS: no embedded server
    hub_urls: tuple[str, ...] = ()  # the federation hub's leafnode URLs (its servers); () = a node on its own
    hub_credentials_file: str = ""  # user:password for the hub's leafnode listener, if it asks for one
    database_url: str = ""  # one PostgreSQL for all services, a schema each
    service_dbs: dict[str, str] = field(default_factory=dict)  # per service
    trace_export: str = ""  # "" means file:<data-dir>/traces.jsonl
    log_level: str = "INFO"
    log_format: str = "text"  # or "json" (towntip/kernel/telemetry.py setup_logging)
    gateway_workers: int = 0  # gateway processes on the HTTP port; 0: 1 if grouped, else one per core (at most 4)
    town_name: str = ""  # the town's name as residents read it ("" : the demo table's, else the node id)
    town_name_en: str = ""
    districts: str = ""  # the districts residents choose from, separated by "|" ("": the demo table's)
    town_colour: str = ""  # #rrggbb ("": the demo table's, else the portal's green)
    town_emblem: str = ""  # an SVG or PNG file's absolute path ("": a drawn one)
    trusted_proxies: str = ""  # reverse proxies whose X-Forwarded-* the gateway believes (comma separated)
    services: tuple[str, ...] = subjects.SERVICES
    # the services' trust chain cache and the projects' members round ("" : their defaults, 300 s and 60 s);
    # bench/federation.py shortens them to measure a removal within a stated cache time
    federation_cache_seconds: str = ""
    federation_refresh_seconds: str = ""
    processes: str = GROUPED  # GROUPED: the services as tasks of one host process; ONE_PER_SERVICE: one each
    python: str = sys.executable

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.public_url:
            self.public_url = f"http://{self.http_host}:{self.http_port}"
        if not self.trace_export:
            self.trace_export = f"file:{self.data_dir / 'traces.jsonl'}"
        if self.gateway_workers <= 0:
            # Grouped (the embedded default): one gateway process. Each more costs ~185 MB resident (a worker and,
            # for more than one, uvicorn's parent and its helper): two would take the node past 600 MB (issue 21,
            # point 7; bench/memory.py). The host and the gateway still keep the two cores of a small box busy.
            self.gateway_workers = 1 if self.processes == GROUPED else max(1, min(os.cpu_count() or 1, 4))


def utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_port_free(host: str, port: int, what: str) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise StartupError(f"{what} port {host}:{port} is in use ({exc.strerror}); choose another one") from None


def base_env() -> dict[str, str]:
    """The supervisor's environment without TOWNTIP_* (a node's configuration comes from its flags), except the
    outgoing mail relay's settings, TOWNTIP_SMTP_* (host, port, credentials: a password has no place in a flag),
    the signage service's CAP feeds, TOWNTIP_SIGNAGE_CAP_* (URLs, severity, areas: docs/signage.md), and the private
    networks the notices service may read feeds from, TOWNTIP_FEED_ALLOW (docs/notices.md)."""
    kept = ("TOWNTIP_SMTP_", "TOWNTIP_SIGNAGE_CAP_", "TOWNTIP_FEED_ALLOW")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNTIP_") or k.startswith(kept)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Child:
    """One supervised process and its restart bookkeeping."""

    name: str
    kind: str  # "nats" | "service" | "host" | "gateway"
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen | None = None
    state: str = STOPPED
    restarts: int = 0
    since: str = field(default_factory=utc_iso)
    started_at: float = 0.0
    delay: float = 0.0  # the next restart's backoff
    restart_at: float = 0.0
    generation: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    services: tuple[str, ...] = ()  # a host's services

    @property
    def label(self) -> str:
        """How the node's output names it: a host with its services."""
        return f"{self.name} ({', '.join(self.services)})" if self.services else self.name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = utc_iso()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> list[dict[str, Any]]:
        """Its line in the node's status; a host's is a line per service (the host's pid, state and restarts)."""
        line = {"name": self.name, "pid": self.pid if self.alive() else None, "state": self.state,
                "restarts": self.restarts, "since": self.since}
        if self.kind == "host":
            return [line | {"name": name, "host": self.name} for name in self.services]
        return [line]


class Supervisor:
    def __init__(self, config: NodeConfig, *, out: TextIO | None = None) -> None:
        self.config = config
        self.out = out or sys.stdout
        self.stop_event = asyncio.Event()
        self.children: dict[str, Child] = {}
        self.nats_server: NatsServer | None = None
        self.nc: NATS | None = None
        self.nats_url = config.nats_url  # as shown; the processes get their own credentials in it
        self.bus_users: BusUsers | None = None  # the embedded nats-server's users (None with --nats-url)
        self._hub_credentials: tuple[str, str] | None = None
        self.admin_token = ""
        self.card_key = ""
        self._tasks: set[asyncio.Task] = set()
        self._nats_starting: asyncio.Future | None = None
        self._lock_fh: Any = None

    # -- output ---------------------------------------------------------------------------------------------

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def step(self, name: str, what: str) -> None:
        self.say(f"  {name} … {what}")

    # -- setup ----------------------------------------------------------------------------------------------

    def _lock_data_dir(self) -> None:
        data = self.config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        (data / "logs").mkdir(exist_ok=True)
        fh = open(data / "node.lock", "a+")  # held for the node's life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            raise StartupError(f"another node is already running on {data} (node.lock is held)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._lock_fh = fh

    def _secrets(self) -> None:
        data = self.config.data_dir
        self.admin_token = load_or_create_secret(data, "admin-token", nbytes=32, kind="urlsafe")
        self.card_key = load_or_create_secret(data, "card-key", nbytes=32, kind="hex")
        self.say(f"  管理トークン admin token: {data / 'secrets' / 'admin-token'}")

    def _service_env(self, name: str) -> dict[str, str]:
        c = self.config
        env = base_env() | {
            "TOWNTIP_NODE_ID": c.node_id,
            "TOWNTIP_NATS_URL": self._nats_url_for(service_user(name)),
            "TOWNTIP_DATA_DIR": str(c.data_dir),
            "TOWNTIP_TRACE_EXPORT": c.trace_export,
            "TOWNTIP_LOG_LEVEL": c.log_level,
            "TOWNTIP_LOG_FORMAT": c.log_format,
            "TOWNTIP_SERVICE": name,
            "TOWNTIP_CARD_KEY": self.card_key,
            "TOWNTIP_PUBLIC_URL": c.public_url,
            "TOWNTIP_TRUST_ANCHOR": c.trust_anchor,
            "TOWNTIP_TRUST_ANCHOR_JWKS": c.trust_anchor_jwks,
        } | self._town_env()
        if c.federation_cache_seconds:
            env["TOWNTIP_FEDERATION_CACHE_SECONDS"] = c.federation_cache_seconds
        if c.federation_refresh_seconds:
            env["TOWNTIP_FEDERATION_REFRESH_SECONDS"] = c.federation_refresh_seconds
        if name in c.service_dbs:
            env["TOWNTIP_DATABASE_URL"] = c.service_dbs[name]
        elif c.database_url:
            env["TOWNTIP_DATABASE_URL"] = c.database_url
            env["TOWNTIP_DATABASE_SCHEMA"] = name
        return env

    def _gateway_env(self) -> dict[str, str]:
        c = self.config
        return base_env() | {
            "TOWNTIP_NODE_ID": c.node_id,
            "TOWNTIP_NATS_URL": self._nats_url_for(GATEWAY),
            "TOWNTIP_DATA_DIR": str(c.data_dir),
            "TOWNTIP_TRACE_EXPORT": c.trace_export,
            "TOWNTIP_LOG_LEVEL": c.log_level,
            "TOWNTIP_LOG_FORMAT": c.log_format,
            "TOWNTIP_HTTP_HOST": c.http_host,
            "TOWNTIP_HTTP_PORT": str(c.http_port),
            "TOWNTIP_PUBLIC_URL": c.public_url,
            "TOWNTIP_SERVICES": ",".join(c.services),
            "TOWNTIP_ADMIN_TOKEN": self.admin_token,
            "TOWNTIP_GATEWAY_WORKERS": str(c.gateway_workers),
            "TOWNTIP_TRUSTED_PROXIES": c.trusted_proxies,
        } | self._town_env()

    def _town_env(self) -> dict[str, str]:
        c = self.config
        return {"TOWNTIP_TOWN_NAME": c.town_name, "TOWNTIP_TOWN_NAME_EN": c.town_name_en,
                "TOWNTIP_DISTRICTS": c.districts, "TOWNTIP_TOWN_COLOUR": c.town_colour,
                "TOWNTIP_TOWN_EMBLEM": c.town_emblem}

    # -- processes ------------------------------------------------------------------------------------------

    async def _spawn(self, child: Child) -> None:
        child.generation += 1
        child.ready.clear()
        child.set_state(STARTING)
        if child.kind == "nats":
            assert self.nats_server is not None
            # Its own task, so a shutdown that cancels the monitor can still wait for it (no orphan server).
            self._nats_starting = asyncio.ensure_future(asyncio.to_thread(self.nats_server.start))
            await asyncio.shield(self._nats_starting)
            child.proc = self.nats_server.proc
        else:
            child.proc = _popen(child)
        child.started_at = time.monotonic()
        self._spawn_task(self._wait_ready(child, child.generation))

    def _spawn_task(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _wait_ready(self, child: Child, generation: int) -> None:
        """Poll until the child answers (or is replaced); then it is `running`."""
        check: Callable[[], Any] = {
            "nats": self._nats_ready, "service": lambda: self._service_ready(child.name),
            "host": lambda: self._service_ready(*child.services), "gateway": self._gateway_ready,
        }[child.kind]
        while child.generation == generation and child.alive() and not self.stop_event.is_set():
            try:
                if await check():
                    break
            except Exception:  # noqa: BLE001 - not ready yet
                pass
            await asyncio.sleep(0.2)
        else:
            return
        child.set_state(RUNNING)
        child.ready.set()
        if child.restarts:
            self.step(child.label, f"再起動完了 running again (pid {child.pid}, restart #{child.restarts})")

    async def _nats_ready(self) -> bool:
        return True  # NatsServer.start returns once the port accepts

    async def _service_ready(self, *names: str) -> bool:
        if self.nc is None or not self.nc.is_connected:
            return False
        found = await ping_services(self.nc, list(names), self.config.node_id)
        return all(found[name] for name in names)

    async def _gateway_ready(self) -> bool:
        host = self.config.http_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        async with httpx.AsyncClient(timeout=2.0) as client:
            r = await client.get(f"http://{host}:{self.config.http_port}/healthz")
            return r.status_code in (200, 503)  # it answers; 503 only says a service is down

    async def _monitor(self) -> None:
        trimmed_at = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now - trimmed_at >= logfiles.CHECK_EVERY:  # the children's log files stay bounded
                trimmed_at = now
                for child in list(self.children.values()):
                    if child.log_path is not None:
                        try:
                            logfiles.trim(child.log_path)
                        except OSError as exc:
                            self.step(child.name, f"ログを回せず could not rotate its log: {exc}")
            for child in list(self.children.values()):
                if child.state in (STARTING, RUNNING) and child.proc is not None and child.proc.poll() is not None:
                    self._crashed(child, now)
                elif child.state == RESTARTING and now >= child.restart_at:
                    try:
                        await self._spawn(child)
                    except Exception as exc:  # noqa: BLE001 - try again later
                        self._schedule_restart(child, time.monotonic(), f"could not start ({exc})")
            try:
                await asyncio.wait_for(self.stop_event.wait(), timeout=POLL)
            except TimeoutError:
                pass

    def _crashed(self, child: Child, now: float) -> None:
        assert child.proc is not None
        code = child.proc.returncode
        how = f"signal {-code}" if code < 0 else f"code {code}"
        if now - child.started_at >= BACKOFF_RESET_AFTER:
            child.delay = 0.0
        self._schedule_restart(child, now, f"exited with {how}")

    def _schedule_restart(self, child: Child, now: float, why: str) -> None:
        child.delay = BACKOFF_START if child.delay == 0 else min(child.delay * 2, BACKOFF_MAX)
        child.restart_at = now + child.delay
        child.restarts += 1
        child.ready.clear()
        child.set_state(RESTARTING)
        hint = f"; see {child.log_path}" if child.log_path else ""
        self.step(child.label, f"停止 {why}; {child.delay:g} 秒後に再起動 restarting in {child.delay:g}s "
                              f"(restart #{child.restarts}){hint}")

    # -- status over NATS ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {"node": self.config.node_id, "pid": os.getpid(),
                "processes": [line for c in self.children.values() for line in c.status()]}

    async def _on_status(self, msg: Msg) -> None:
        if msg.reply:
            await msg.respond(json.dumps(self.status()).encode())

    def _nats_url_for(self, user: str) -> str:
        """The NATS URL a process of this node connects with: its own user on the embedded server."""
        if self.bus_users is None:
            return self.nats_url
        return self.bus_users.url(self.nats_url, user)

    async def _on_enroll(self, msg: Msg) -> None:
        """svc.<node>.node.enroll {"terminal": id} or {"screen": name}: a card terminal's or a signage screen's own
        NATS user (only the operator may ask: the server's permissions let no other user publish here). Answers its
        URL; the server reloads its users."""
        if not msg.reply:
            return

        async def error(code: int, reason: str) -> None:
            assert self.nc is not None
            await self.nc.publish(msg.reply, b"", headers={subjects.HDR_SERVICE_ERROR: reason,
                                                           subjects.HDR_SERVICE_ERROR_CODE: str(code)})

        try:
            asked = json.loads(msg.data or b"{}")
            screen = isinstance(asked, dict) and "screen" in asked
            name = TypeAdapter(TerminalId).validate_python(asked.get("screen" if screen else "terminal"))
        except (ValueError, AttributeError, ValidationError):
            await error(400, "terminal or screen: 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit")
            return
        if self.bus_users is None or self.nats_server is None:
            await error(409, "this node uses an outside NATS (--nats-url): its users are managed there")
            return
        if screen:
            password = self.bus_users.enroll_screen(name)
            user, inbox = screen_user(name), screen_inbox_prefix(name)
        else:
            password = self.bus_users.enroll(name)
            user, inbox = terminal_user(name), terminal_inbox_prefix(name)
        self.nats_server.extra_config = self._nats_extra_config()
        self.nats_server.write_config()
        self.nats_server.config_path.chmod(0o600)
        url = self.bus_users.url(self.nats_url, user, password)
        if self.nats_server.proc is not None and self.nats_server.proc.poll() is None:
            self.nats_server.proc.send_signal(signal.SIGHUP)  # nats-server reloads its config
            # The reload happens a moment after the signal: answer only once the new password is taken, so a
            # device that connects with it at once is not refused ("authorization violation").
            if not await self._accepts(url, inbox):
                await error(503, f"the node's nats-server did not take the new user {user} within 10 s")
                return
        self.step("enroll", f"{'画面 screen' if screen else '端末 terminal'} {name} 登録 enrolled")
        await msg.respond(json.dumps({
            "screen" if screen else "terminal": name, "url": url, "inbox_prefix": inbox,
        }).encode())

    @staticmethod
    async def _accepts(url: str, inbox_prefix: str, timeout: float = 10.0) -> bool:
        """Whether the server lets a user with `url`'s credentials connect, trying until `timeout`."""
        async def quiet(_exc: Exception) -> None:
            pass  # a refusal before the reload is expected

        deadline = time.monotonic() + timeout
        while True:
            try:
                nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False,
                                        inbox_prefix=inbox_prefix, error_cb=quiet)
            except Exception:  # noqa: BLE001 - nats-py raises several kinds for a refused login
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.05)
                continue
            await nc.close()
            return True

    # -- the node's life ------------------------------------------------------------------------------------

    async def run(self) -> int:
        c = self.config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_event.set)
        self.say(f"TownTip ノード node {c.node_id} — データ data: {c.data_dir}")
        monitor: asyncio.Task | None = None
        try:
            self._lock_data_dir()
            check_port_free(c.http_host, c.http_port, "HTTP")
            if not c.nats_url and c.nats_port:
                check_port_free("127.0.0.1", c.nats_port, "NATS")
            self._secrets()
            await self._start_nats()
            monitor = self._spawn_task(self._monitor())
            await self._start_services()
            if not self.stop_event.is_set():
                await self._start_gateway()
            if not self.stop_event.is_set():
                self.say("ノード稼働中 node is up — Ctrl-C で停止 to stop")
            await self.stop_event.wait()
            self.say("停止中 stopping …")
            return 0
        except StartupError as exc:
            self.say(f"towntip: {exc}")
            return 1
        finally:
            self.stop_event.set()
            if monitor is not None:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
            await self.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if self._lock_fh is not None:
                self._lock_fh.close()

    def _nats_extra_config(self) -> str:
        """The embedded server's users and, with --hub, its leafnode remote with the node's deny lists (rendered
        again whenever a terminal is enrolled, so a reload keeps the link as it was)."""
        assert self.bus_users is not None
        c = self.config
        leaf = render_leafnodes(c.node_id, c.hub_urls, services=c.services, credentials=self._hub_credentials)
        return self.bus_users.render() + leaf

    async def _start_nats(self) -> None:
        c = self.config
        if not c.nats_url:
            if c.hub_credentials_file:
                try:
                    self._hub_credentials = read_credentials(c.hub_credentials_file)
                except (OSError, ValueError) as exc:
                    raise StartupError(f"hub credentials: {exc}") from None
            self.bus_users = BusUsers(c.data_dir, c.node_id, c.services)
            self.nats_server = NatsServer(
                node_id=c.node_id, data_dir=c.data_dir / "nats", port=c.nats_port,
                log_file=c.data_dir / "logs" / f"{NATS_NAME}.log", extra_config=self._nats_extra_config(),
            )
            child = Child(NATS_NAME, "nats", log_path=c.data_dir / "logs" / f"{NATS_NAME}.log")
            self.children[NATS_NAME] = child
            try:
                await self._spawn(child)
            except Exception as exc:  # noqa: BLE001
                raise StartupError(f"nats-server did not start: {exc} (see {child.log_path})") from None
            self.nats_url = self.nats_server.url
            self.nats_server.config_path.chmod(0o600)  # it holds the users' passwords
            operator = self.bus_users.url(self.nats_url, OPERATOR)
            path = c.data_dir / "secrets" / "nats-operator-url"
            path.write_text(operator + "\n")
            path.chmod(0o600)
            self.step(NATS_NAME, f"起動 ready ({self.nats_url}, pid {child.pid})")
            if c.hub_urls:  # the URLs as given: a password is only ever in the credentials file and the 0600 config
                self.step("hub", f"リーフノード接続先 leafnode to {', '.join(c.hub_urls)} "
                                 f"(deny lists: see {self.nats_server.config_path})")
            self.say(f"  運用者の接続先 operator's NATS URL: {path}")
        async def on_error(exc: Exception) -> None:
            pass  # a restart of nats-server is reported by the monitor; no tracebacks here

        async def on_disconnect() -> None:
            if not self.stop_event.is_set():
                self.step("nats", "切断 supervisor lost its NATS connection; reconnecting")

        async def on_reconnect() -> None:
            self.step("nats", "再接続 supervisor reconnected")

        try:
            self.nc = await nats.connect(
                self._nats_url_for(OPERATOR), name=f"supervisor@{c.node_id}", max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, connect_timeout=5, error_cb=on_error,
                disconnected_cb=on_disconnect, reconnected_cb=on_reconnect,
            )
        except Exception as exc:  # noqa: BLE001
            raise StartupError(f"cannot connect to NATS at {self.nats_url}: {exc}") from None
        if c.nats_url:
            self.step("nats", f"接続 connected ({self.nats_url})")
        await self.nc.subscribe(subjects.svc(c.node_id, "node", "status"), cb=self._on_status)
        await self.nc.subscribe(subjects.svc(c.node_id, "node", "enroll"), cb=self._on_enroll)
        if c.hub_urls and self.nats_server is not None:
            # Peers source this node's event streams only through its source guard (the hub maps their consumer
            # creations onto it; the node's remote refuses its JetStream API otherwise).
            await SourceGuard(self.nc, c.node_id).start()
            self.step("hub", "ソースガード source guard ready (peers' consumer creations are checked here)")
        try:
            await ensure_node_streams(self.nc.jetstream(), c.node_id, c.services)
        except Exception as exc:  # noqa: BLE001
            raise StartupError(f"could not provision the node's streams: {exc.__class__.__name__}: {exc}") from None
        names = [subjects.edge_stream(c.node_id), subjects.dlq_stream(c.node_id)]
        names += [subjects.evt_stream(c.node_id, s) for s in c.services]
        self.step("streams", f"準備完了 ok ({', '.join(names)})")

    async def _start_services(self) -> None:
        c = self.config
        logs = c.data_dir / "logs"
        if c.processes == GROUPED and len(c.services) > 1:
            # Each service's environment as it would have it alone, folded into the host's (towntip.kernel.host).
            child = Child(HOST_NAME, "host", argv=[c.python, "-m", "towntip.kernel.host", *c.services,
                                                   "--name", HOST_NAME, "--log-dir", str(logs)],
                          env=hosted_env({name: self._service_env(name) for name in c.services}),
                          log_path=logs / f"{HOST_NAME}.log", services=tuple(c.services))
            self.children[HOST_NAME] = child
            await self._spawn(child)
            await self._await_ready([child])
            return
        for name in c.services:
            child = Child(name, "service", argv=[c.python, "-m", subjects.SERVICE_MODULES[name]],
                          env=self._service_env(name),
                          log_path=logs / f"{name}.log")
            self.children[name] = child
            await self._spawn(child)
        await self._await_ready([self.children[n] for n in c.services])

    async def _start_gateway(self) -> None:
        c = self.config
        child = Child(GATEWAY_NAME, "gateway", argv=[c.python, "-m", "gateway"], env=self._gateway_env(),
                      log_path=c.data_dir / "logs" / f"{GATEWAY_NAME}.log")
        self.children[GATEWAY_NAME] = child
        await self._spawn(child)
        await self._await_ready([child])

    async def _await_ready(self, children: list[Child]) -> None:
        """Announce each child once it answers; one that crashed while starting is left to the monitor."""
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(children)
        while pending and not self.stop_event.is_set() and time.monotonic() < deadline:
            for ch in list(pending):
                if ch.ready.is_set():
                    self._announce(ch)
                    pending.remove(ch)
                elif ch.restarts:
                    pending.remove(ch)  # the monitor said so and restarts it; the node goes on starting
            if pending:
                await asyncio.sleep(0.05)
        if not self.stop_event.is_set():
            for ch in pending:
                self.step(ch.name, f"まだ応答なし not ready after {READY_TIMEOUT:g}s (state {ch.state}); "
                                   f"still trying — see {ch.log_path}")

    def _announce(self, child: Child) -> None:
        if child.kind == "gateway":
            self.step(child.name, f"http://{self.config.http_host}:{self.config.http_port} (pid {child.pid})")
        elif child.kind == "host":
            for name in child.services:
                self.step(name, f"稼働中 running (pid {child.pid}, {child.name} のタスク a task of {child.name})")
        else:
            self.step(child.name, f"稼働中 running (pid {child.pid})")

    async def shutdown(self) -> None:
        """Gateway first, then the services, then nats-server; each group gets STOP_GRACE before SIGKILL."""
        for child in self.children.values():
            child.generation += 1  # readiness watchers of the old generation stop
            if child.state != STOPPED:
                child.set_state(STOPPED)
        for task in list(self._tasks):
            task.cancel()
        groups = [
            [ch for ch in self.children.values() if ch.kind == "gateway"],
            [ch for ch in self.children.values() if ch.kind in ("service", "host")],
        ]
        for group in groups:
            await self._terminate(group)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), timeout=2)
            self.nc = None
        nats_children = [ch for ch in self.children.values() if ch.kind == "nats"]
        if self._nats_starting is not None and not self._nats_starting.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._nats_starting), timeout=15)
        if self.nats_server is not None:
            for ch in nats_children:
                ch.proc = self.nats_server.proc or ch.proc
        await self._terminate(nats_children)
        if self.children:
            self.say("停止しました node stopped")

    async def _terminate(self, group: list[Child]) -> None:
        live = [ch for ch in group if ch.alive()]
        for ch in live:
            _signal_group(ch, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for _ in range(int(STOP_GRACE / 0.05) + 1):
            if not any(ch.alive() for ch in live) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        for ch in live:
            if ch.alive():
                self.step(ch.name, f"{STOP_GRACE:g} 秒で終了せず強制終了 did not stop in {STOP_GRACE:g}s; SIGKILL")
                _signal_group(ch, signal.SIGKILL)
            assert ch.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                ch.proc.wait(timeout=5)


def _popen(child: Child) -> subprocess.Popen:
    """Start a child in its own session (process group), its output appended to its log file."""
    assert child.log_path is not None
    with open(child.log_path, "ab") as log:
        log.write(f"--- {utc_iso()} starting {child.name} ---\n".encode())
        log.flush()
        return subprocess.Popen(
            child.argv, env=child.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )


def _signal_group(child: Child, sig: int) -> None:
    """Children lead their own process groups (start_new_session): signal the whole group."""
    if child.proc is None:
        return
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            if child.proc.poll() is None:
                os.kill(child.proc.pid, sig)


def run_node(config: NodeConfig) -> int:
    return asyncio.run(Supervisor(config).run())
