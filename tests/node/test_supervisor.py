"""`towntip node up` as a real subprocess: real nats-server, real services, real gateway, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import psutil
import pytest
from nats.aio.msg import Msg

from tests.support.bus import wait_for
from towntip.cli import main as cli_main
from towntip.node.natsauth import GATEWAY_INBOX_PREFIX, service_inbox_prefix
from towntip.node.natsd import NatsServer, free_port

# The supervisor's own tests (`towntip node up`: start, kill, restart, stop) run one after another on one worker,
# beside the other tests that start whole nodes (group "whole-node", on another worker): two nodes at most start
# at once on the two cores. Each test may take a whole node's start on a busy machine.
pytestmark = [pytest.mark.xdist_group("supervisor"), pytest.mark.timeout(300)]

NODE = "testnode"
# `python -m services.points` needs the package's __main__: until the lead's service exists, the parts of
# these tests that need it skip (with this reason) instead of failing.


@dataclass
class Node:
    proc: subprocess.Popen
    data_dir: Path
    http_port: int
    nats_port: int
    out_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    async def health(self) -> tuple[int, dict[str, Any]] | None:
        try:
            async with httpx.AsyncClient(timeout=2.0) as c:
                r = await c.get(f"{self.base}/healthz")
            return r.status_code, r.json()
        except httpx.HTTPError:
            return None

    async def wait_health(self, want: int | None, timeout: float = 150.0) -> dict[str, Any]:
        """Until /healthz answers `want` (any status if None); fails with the node's output otherwise."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"node up exited with {self.proc.returncode}:\n{self.output}"
            last = await self.health()
            if last is not None and (want is None or last[0] == want):
                return last[1]
            await asyncio.sleep(0.1)
        raise AssertionError(f"/healthz never answered {want}; last {last}\n{self.output}")

    def operator_url(self) -> str:
        """The embedded nats-server takes only its users: the operator's URL is in the data dir."""
        path = self.data_dir / "secrets" / "nats-operator-url"
        return path.read_text().strip() if path.exists() else f"nats://127.0.0.1:{self.nats_port}"

    async def status(self, timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        """The supervisor's report. After a restart of nats-server the supervisor's own client reconnects on its
        own schedule (0.5 s between attempts), independently of the gateway's /healthz: until it has, the request
        finds no responders, so it is asked again until `timeout`."""
        deadline = time.monotonic() + timeout
        nc = await nats.connect(self.operator_url(), connect_timeout=2, max_reconnect_attempts=1)
        try:
            while True:
                try:
                    msg = await nc.request(f"svc.{NODE}.node.status", b"", timeout=2)
                    break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()
        return {p["name"]: p for p in json.loads(msg.data)["processes"]}

    async def wait_running(self, *names: str, timeout: float = 40.0) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            status = await self.status()
            if all(status.get(n, {}).get("state") == "running" for n in names) or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.1)

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def node_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())", "node", "up", *args]


def start_node(tmp_path: Path, *, nats_url: str = "", database_url: str = "", gateway_workers: int = 2,
               processes: str = "") -> Node:
    """A node as `make run` starts one on two cores: the gateway with two worker processes; the services as
    `--processes` says (default: the node's default, grouped in one host process)."""
    http_port = free_port()
    nats_port = int(nats_url.rsplit(":", 1)[1]) if nats_url else free_port()
    data_dir = tmp_path / "var"
    out_path = tmp_path / "node-up.out"
    nats_args = ["--nats-url", nats_url] if nats_url else ["--nats-port", str(nats_port)]
    if database_url:
        nats_args += ["--database-url", database_url]
    if processes:
        nats_args += ["--processes", processes]
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            node_argv("--node", NODE, "--data-dir", str(data_dir), "--http-port", str(http_port), *nats_args,
                      "--trace-export", "none", "--gateway-workers", str(gateway_workers)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    return Node(proc, data_dir, http_port, nats_port, out_path)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(node_argv(*args), capture_output=True, text=True, timeout=20)


def finish(node: Node) -> None:
    """After a failed test: do not leave a node behind."""
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(15)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_node(tmp_path)
    try:
        yield n
    finally:
        finish(n)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_node_up_starts_everything_and_stops_cleanly(node: Node, tmp_path: Path) -> None:
    body = await node.wait_health(200)
    status = await node.wait_running("nats-server", "gateway")
    assert set(status) == {"nats-server", "identity", "points", "projects", "sns", "bookings", "notices", "signage",
                           "gateway"}
    pids = [p["pid"] for p in status.values()]
    assert all(isinstance(pid, int) and alive(pid) for pid in pids), status
    # the gateway serves its port with two workers (uvicorn's), stopped with it
    async def gateway_workers() -> list[int]:
        return [w.pid for w in psutil.Process(status["gateway"]["pid"]).children()
                if "spawn_main" in " ".join(w.cmdline())]

    workers = await wait_for(gateway_workers, "the gateway's workers", 60)
    assert len(workers) == 2, workers
    pids += workers
    assert status["gateway"]["state"] == "running" and status["nats-server"]["state"] == "running"
    assert set(body.get("processes", {})) == {"nats-server", "identity", "points", "projects", "sns", "bookings",
                                              "notices", "signage", "gateway"}

    # Secrets: made once, owner-only, and the admin token opens the staff API.
    for name in ("admin-token", "card-key"):
        path = node.data_dir / "secrets" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex((node.data_dir / "secrets" / "card-key").read_text().strip())) == 32
    token = (node.data_dir / "secrets" / "admin-token").read_text().strip()
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get(f"{node.base}/api/v1/points/cards/0123456789ABCDEF/balance")
        assert r.status_code == 401
        r = await c.get(f"{node.base}/api/v1/points/cards/0123456789ABCDEF/balance",
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        r = await c.get(f"{node.base}/api/v1/facilities")  # the bookings service answers through the gateway
        assert r.status_code == 200 and r.json() == [], r.text
    for name in ("nats-server", "identity", "points", "projects", "sns", "bookings", "notices", "signage", "gateway"):
        assert (node.data_dir / "logs" / f"{name}.log").exists()

    # A second node on the same data dir is refused.
    second = run_cli("--node", NODE, "--data-dir", str(node.data_dir), "--http-port", str(free_port()))
    assert second.returncode == 1 and "already running" in second.stdout + second.stderr

    started = time.monotonic()
    assert node.stop() == 0
    assert time.monotonic() - started < 15
    assert not [pid for pid in pids if alive(pid)], "children left behind"
    out = node.output
    assert "nats-server … " in out and f"http://127.0.0.1:{node.http_port}" in out and "admin-token" in out
    assert "points … " in out and "identity … " in out


@pytest.fixture
def node_per_service(tmp_path: Path) -> Iterator[Node]:
    """A node with a process per service, as before the services were grouped (containers run them so)."""
    n = start_node(tmp_path, processes="one-per-service")
    try:
        yield n
    finally:
        finish(n)


async def test_a_killed_service_is_restarted(node_per_service: Node) -> None:
    node = node_per_service
    await node.wait_health(200)
    assert len({p["pid"] for p in (await node.status()).values()}) == 9  # each service its own process
    before = (await node.status())["points"]
    os.kill(before["pid"], signal.SIGKILL)

    body = await node.wait_health(503, timeout=5)
    assert "points" in body["down"]
    await node.wait_health(200)
    after = (await node.wait_running("points"))["points"]
    assert after["restarts"] == 1 and after["pid"] != before["pid"] and after["state"] == "running"
    assert not alive(before["pid"])
    assert "points … " in node.output and "restart #1" in node.output
    assert node.stop() == 0


async def test_a_grouped_host_keeps_each_services_bus_user_and_restarts_as_a_whole(node: Node) -> None:
    """The default layout: the services are tasks of one host process, yet each connects as its own NATS user,
    which may not say what another service may; killing the host restarts it with every service in it."""
    await node.wait_health(200)
    status = await node.status()
    services = ("identity", "points", "projects", "sns", "bookings", "notices", "signage")
    host = status["points"]["pid"]
    assert {status[s]["pid"] for s in services} == {host} and {status[s]["host"] for s in services} == {"services"}
    assert host not in (status["gateway"]["pid"], status["nats-server"]["pid"])

    # The host holds each service's own credentials and no other: no operator's, no gateway's, no shared URL.
    env = psutil.Process(host).environ()
    data = node.data_dir / "secrets"
    assert "TOWNTIP_NATS_URL" not in env
    held = {k: v for k, v in env.items() if "nats://" in v}
    assert set(held) == {f"TOWNTIP_HOSTED_{s.upper()}_NATS_URL" for s in services}
    for s in services:
        password = (data / f"nats-svc-{s}").read_text().strip()
        assert held[f"TOWNTIP_HOSTED_{s.upper()}_NATS_URL"].startswith(f"nats://svc-{s}:{password}@")
    assert (data / "nats-operator-url").read_text().split("@")[0].split(":")[-1] not in " ".join(env.values())

    # What the host's points connection may not say: identity's events, the sns service's, the node's enrolment.
    async def refused(url: str, subject: str) -> str:
        seen: list[str] = []

        async def on_error(exc: Exception) -> None:
            seen.append(str(exc))

        nc = await nats.connect(url, error_cb=on_error, inbox_prefix=service_inbox_prefix("points"))
        try:
            await nc.publish(subject, b"{}")
            await nc.flush(timeout=2)
            for _ in range(50):
                if seen:
                    break
                await asyncio.sleep(0.05)
        finally:
            await nc.close()
        return " ".join(seen).lower()

    points_url = held["TOWNTIP_HOSTED_POINTS_NATS_URL"]
    for subject in (f"evt.{NODE}.identity.profile_changed", f"evt.{NODE}.sns.post_added", f"svc.{NODE}.node.enroll"):
        assert "permissions violation" in await refused(points_url, subject), subject

    # Each service writes its own log file, from inside the host.
    for s in services:
        assert f" {s} " in (node.data_dir / "logs" / f"{s}.log").read_text(encoding="utf-8")

    os.kill(host, signal.SIGKILL)
    body = await node.wait_health(503, timeout=5)
    assert set(services) <= set(body["down"])
    await node.wait_health(200)
    after = await node.wait_running(*services)
    again = after["points"]["pid"]
    assert again != host and not alive(host)
    assert all(after[s]["pid"] == again and after[s]["restarts"] == 1 and after[s]["state"] == "running"
               for s in services), after
    assert "services (identity, points, projects, sns, bookings, notices, signage) … 停止" in node.output
    assert node.stop() == 0
    assert not alive(again)


async def test_a_killed_nats_server_is_restarted(node: Node) -> None:
    want = 200
    await node.wait_health(want)
    before = (await node.status())["nats-server"]
    os.kill(before["pid"], signal.SIGKILL)
    await node.wait_health(503, timeout=5)  # the gateway lost its NATS
    await asyncio.sleep(0.5)
    await node.wait_health(200, timeout=60)
    status = await node.status()
    assert status["nats-server"]["restarts"] == 1 and status["nats-server"]["pid"] != before["pid"]
    pids = [p["pid"] for p in status.values() if p["pid"]]
    assert node.stop(sig=signal.SIGINT) == 0  # Ctrl-C
    assert not [pid for pid in pids if alive(pid)]


async def test_node_up_on_an_existing_nats(nats_server: NatsServer, tmp_path: Path) -> None:
    node = start_node(tmp_path, nats_url=nats_server.url)
    try:
        body = await node.wait_health(200)
        assert "nats-server" not in body.get("processes", {})
        assert not (tmp_path / "var" / "nats").exists()
        assert node.stop() == 0
        assert nats_server.proc is not None and nats_server.proc.poll() is None  # not ours to stop
    finally:
        finish(node)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--node", "Not_A_Node"], "node id"),
        (["--http-port", "70000"], "--http-port"),
        (["--trace-export", "jaeger"], "--trace-export"),
        (["--service-db", "nosuch=sqlite+aiosqlite:///x.db"], "unknown service"),
        (["--service-db", "points"], "NAME=URL"),
        (["--database-url", "mysql://x"], "PostgreSQL"),
    ],
)
def test_bad_input_exits_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["node", "up", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_processes_layout_from_the_environment_exits_2(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TOWNTIP_PROCESSES", "threads")
    assert cli_main(["node", "up"]) == 2
    assert "--processes must be grouped or one-per-service" in capsys.readouterr().err


def test_a_taken_http_port_is_refused(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_cli("--node", NODE, "--data-dir", str(tmp_path / "var"), "--http-port", str(port))
    assert r.returncode == 1 and "in use" in r.stdout + r.stderr


@pytest.mark.postgres
async def test_node_up_on_existing_nats_and_postgres_credits_a_tap(nats_server: NatsServer, tmp_path: Path) -> None:
    """The production shape: the machine's NATS and one PostgreSQL database, the points service in its schema."""
    from tests.conftest import PG_URL, postgres_available

    reason = await asyncio.to_thread(postgres_available)  # it runs its own event loop
    if reason:
        pytest.skip(reason)
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg", "postgresql")
    dbname = f"towntip_node_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{dbname}"')
    node_db = PG_URL.rsplit("/", 1)[0] + f"/{dbname}"
    node = start_node(tmp_path, nats_url=nats_server.url, database_url=node_db)
    try:
        await node.wait_health(200, timeout=60)
        card = "00112233445566FF"
        nc = await nats.connect(nats_server.url)
        try:
            await nc.request(f"svc.{NODE}.points.events.put",
                             json.dumps({"code": "pg-ev", "name": "PG event"}).encode(), timeout=5)
        finally:
            await nc.close()
        sim = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())", "edge", "simulate",
             "--nats-url", nats_server.url, "--node", NODE, "--event", "pg-ev", "--card", card, "--volunteer",
             "--count", "2", "--terminal", "pg-term", "--spool", str(tmp_path / "spool.sqlite3")],
            capture_output=True, text=True, timeout=30,
        )
        assert sim.returncode == 0, sim.stderr
        # an event's points are earned once: the second touch is "already checked in"
        assert sim.stdout.strip() == "2 taps: 1 credited, 1 already checked in, 0 duplicate, 0 rejected; balance 5"
        token = (node.data_dir / "secrets" / "admin-token").read_text().strip()
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(f"{node.base}/api/v1/points/cards/{card}/balance",
                            headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == {"asset": "machi-point", "balance": 5, "taps": 1}
        conn = await asyncpg.connect(dsn.rsplit("/", 1)[0] + f"/{dbname}")
        try:
            tables = {r["table_name"] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'points'")}
            assert {"events", "accounts", "balances", "journal", "postings", "taps", "outbox", "inbox"} <= tables
            assert await conn.fetchval("SELECT count(*) FROM points.taps") == 1  # the second: already checked in
        finally:
            await conn.close()
        assert not list(node.data_dir.glob("*.sqlite3")), "no SQLite file when the node runs on PostgreSQL"
        assert node.stop() == 0
    finally:
        finish(node)
        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await admin.close()


class BusUser:
    """One connection as one of a node's NATS users, with the errors the server sent it."""

    def __init__(self, nc: nats.NATS, errors: list[str]) -> None:
        self.nc, self.errors = nc, errors

    @classmethod
    async def connect(cls, url: str, **kw: Any) -> BusUser:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc).lower())

        return cls(await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0, **kw), errors)

    async def told(self, what: str, timeout: float = 3.0) -> bool:
        """Whether the server reported `what` (lowercase) to this connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while not any(what in e for e in self.errors):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def close(self) -> None:
        await self.nc.close()


async def collect(who: BusUser, subject: str) -> list[Msg]:
    got: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        got.append(msg)

    await who.nc.subscribe(subject, cb=on_msg)
    await settle(who.nc)
    return got


async def settle(nc: nats.NATS) -> None:
    """Until the server has what `nc` sent so far. nats.py's flush() writes its PING ahead of the commands still
    queued (a SUB just made may reach the server after the PONG came back); the second PING goes after them."""
    await nc.flush(timeout=2)
    await nc.flush(timeout=2)


async def assert_cannot_read(url: str, subject: str, *, probe: str, owner: BusUser, sender: nats.NATS,
                             **kw: Any) -> None:
    """The subscription to `subject` of the user in `url` is refused, and `probe` (a subject under it), published
    by `sender`, reaches its inbox's `owner` but not that user."""
    who = await BusUser.connect(url, **kw)
    try:
        stolen = await collect(who, subject)
        assert await who.told(f'permissions violation for subscription to "{subject.lower()}"'), who.errors
        delivered = await collect(owner, probe)
        await sender.publish(probe, b"a session token")
        await sender.flush(timeout=2)
        for _ in range(60):
            if delivered:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # time enough for a copy to `who` to arrive too, had it been let through
        assert [m.subject for m in delivered] == [probe]
        assert stolen == [], [m.subject for m in stolen]
    finally:
        await who.close()


async def test_who_may_say_what_on_the_nodes_bus(node: Node) -> None:
    """Each process and terminal has its own NATS user scoped to its subjects; a test proves each refusal."""
    await node.wait_health(200)
    data = node.data_dir / "secrets"
    base = f"nats://127.0.0.1:{node.nats_port}"

    # No user: no connection.
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises its own "no servers" after the auth refusal
        await nats.connect(base, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)

    operator = await nats.connect(node.operator_url())
    try:
        answer = json.loads((await operator.request(f"svc.{NODE}.node.enroll",
                                                    json.dumps({"terminal": "hall-1"}).encode(), timeout=5)).data)
        bad = await operator.request(f"svc.{NODE}.node.enroll", b'{"terminal": "Hall 1!"}', timeout=5)
        assert bad.headers and bad.headers.get("Nats-Service-Error-Code") == "400"
        js = operator.jetstream()
        stream = f"EDGE_{NODE.upper()}"
        before = (await js.stream_info(stream)).state.messages

        async def refused(url: str, subject: str, **kw: Any) -> str:
            """Publishes to `subject` as the user in `url`; returns the server's permission error."""
            seen: list[str] = []

            async def on_error(exc: Exception) -> None:
                seen.append(str(exc))

            nc = await nats.connect(url, error_cb=on_error, **kw)
            try:
                await nc.publish(subject, b"{}")
                await nc.flush(timeout=2)
                for _ in range(50):
                    if seen:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await nc.close()
            return " ".join(seen).lower()

        # Terminal hall-1 may not publish as hall-2, nor call a service, nor read another terminal's inbox.
        term = answer["url"]
        assert "permissions violation" in await refused(term, f"edge.{NODE}.hall-2.tap",
                                                        inbox_prefix=answer["inbox_prefix"])
        assert "permissions violation" in await refused(term, f"svc.{NODE}.points.events.put",
                                                        inbox_prefix=answer["inbox_prefix"])
        nc = await nats.connect(term, inbox_prefix=answer["inbox_prefix"])
        try:
            ack = await nc.jetstream().publish(f"edge.{NODE}.hall-1.tap", b"{}", timeout=5)
            assert ack.stream == stream  # its own subject works
        finally:
            await nc.close()
        assert (await js.stream_info(stream)).state.messages == before + 1  # nothing from the refused ones

        # The gateway may not enrol terminals; the points service may not publish identity's events.
        gateway = base.replace("nats://", f"nats://gateway:{(data / 'nats-gateway').read_text().strip()}@")
        assert "permissions violation" in await refused(gateway, f"svc.{NODE}.node.enroll")
        assert "permissions violation" in await refused(gateway, f"svc.{NODE}.identity.admin.user.add")
        points = base.replace("nats://", f"nats://svc-points:{(data / 'nats-svc-points').read_text().strip()}@")
        assert "permissions violation" in await refused(points, f"evt.{NODE}.identity.profile_changed")
        assert (data / "nats-terminals.json").stat().st_mode & 0o077 == 0
        assert (node.data_dir / "nats" / "nats-server.conf").stat().st_mode & 0o077 == 0
        identity = base.replace("nats://", f"nats://svc-identity:{(data / 'nats-svc-identity').read_text().strip()}@")
        # A signage screen enrolled with the operator's CLI syncs its manifest with the URL it printed.
        cli = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())",
                             "signage", "enroll", "--screen", "lobby-1", "--place", "市役所 1F", "--group", "市役所",
                             "--nats-url", node.operator_url(), "--node", NODE],
            capture_output=True, text=True, timeout=30)
        assert cli.returncode == 0, cli.stderr
        screen = await nats.connect(cli.stdout.strip(), inbox_prefix="_INBOX._scr.lobby-1")
        try:
            reply = json.loads((await screen.request(f"signage.{NODE}.screen.lobby-1.sync", b"{}", timeout=5)).data)
            assert reply["screen"]["place"] == "市役所 1F" and reply["screen"]["groups"] == ["市役所"], reply
        finally:
            await screen.close()
        await replies_stay_with_their_asker(operator, gateway=gateway, points=points, identity=identity,
                                            term=term, term_prefix=answer["inbox_prefix"])
        await jetstream_stays_intact(operator, points)
        await a_tap_gets_its_outcome(operator, term, node.data_dir.parent)
    finally:
        await operator.close()


async def replies_stay_with_their_asker(operator: nats.NATS, *, gateway: str, points: str, identity: str, term: str,
                                       term_prefix: str) -> None:
    """Each process reads only its own inboxes (its own inbox prefix), and a service publishes into an inbox only
    the one answer to a request it received: no reading or forging of another's replies (login answers, tokens)."""
    gw = await BusUser.connect(gateway, inbox_prefix=GATEWAY_INBOX_PREFIX)
    pts = await BusUser.connect(points, inbox_prefix=service_inbox_prefix("points"))
    ident = await BusUser.connect(identity, inbox_prefix=service_inbox_prefix("identity"))
    hall = await BusUser.connect(term, inbox_prefix=term_prefix)
    try:
        spy = await collect(BusUser(operator, []), f"{GATEWAY_INBOX_PREFIX}.>")  # the operator sees all of them
        # A service reads neither the gateway's inboxes, nor another service's, nor all of them; nor does the
        # gateway read a service's, nor a terminal the gateway's.
        gw_inbox, ident_inbox = f"{GATEWAY_INBOX_PREFIX}.>", f"{service_inbox_prefix('identity')}.>"
        await assert_cannot_read(points, gw_inbox, probe=f"{GATEWAY_INBOX_PREFIX}.probe.1", owner=gw,
                                 sender=operator)
        await assert_cannot_read(points, ident_inbox, probe=f"{service_inbox_prefix('identity')}.probe.2",
                                 owner=ident, sender=operator)
        await assert_cannot_read(points, "_INBOX.>", probe=f"{GATEWAY_INBOX_PREFIX}.probe.3", owner=gw,
                                 sender=operator)
        await assert_cannot_read(gateway, ident_inbox, probe=f"{service_inbox_prefix('identity')}.probe.4",
                                 owner=ident, sender=operator)
        await assert_cannot_read(term, gw_inbox, probe=f"{GATEWAY_INBOX_PREFIX}.probe.5", owner=gw,
                                 sender=operator, inbox_prefix=term_prefix)
        spy.clear()

        # The gateway asks the points service (here: its user, on a subject no real endpoint takes) and waits.
        asked: asyncio.Queue[Msg] = asyncio.Queue()

        async def on_request(msg: Msg) -> None:
            await asked.put(msg)

        await pts.nc.subscribe(f"svc.{NODE}.points.test.answer-me", cb=on_request)
        await settle(pts.nc)
        pending = asyncio.create_task(gw.nc.request(f"svc.{NODE}.points.test.answer-me", b"?", timeout=5))
        request = await asyncio.wait_for(asked.get(), 5)
        assert request.reply.startswith(f"{GATEWAY_INBOX_PREFIX}.")
        # identity slips a forged answer into the gateway's pending request: refused, and it does not arrive.
        await ident.nc.publish(request.reply, b"forged: you are logged in as admin")
        await ident.nc.flush(timeout=2)
        assert await ident.told(f'permissions violation for publish to "{request.reply.lower()}"'), ident.errors
        # Nor into a terminal's inbox: only the points service sends terminals their taps' outcomes.
        at_hall = await collect(hall, f"{term_prefix}.outcome")
        await ident.nc.publish(f"{term_prefix}.outcome", b"forged outcome")
        await ident.nc.flush(timeout=2)
        assert await ident.told(f'permissions violation for publish to "{term_prefix.lower()}.outcome"'), ident.errors
        # The service the request was sent to answers it, once: the gateway gets that answer and nothing else.
        await request.respond(b"the real answer")
        assert (await pending).data == b"the real answer"
        await request.respond(b"a second answer")
        await pts.nc.flush(timeout=2)
        assert await pts.told(f'permissions violation for publish to "{request.reply.lower()}"'), pts.errors
        # …and answers into no other inbox of the gateway's.
        await pts.nc.publish(f"{GATEWAY_INBOX_PREFIX}.made.up", b"unasked")
        await pts.nc.flush(timeout=2)
        assert await pts.told(f'permissions violation for publish to "{GATEWAY_INBOX_PREFIX.lower()}.made.up"')
        await asyncio.sleep(0.3)
        assert [m.data for m in spy] == [b"the real answer"], [(m.subject, m.data) for m in spy]
        assert at_hall == []
        # The node's real services still answer the gateway (discovery: each answers once, into its inbox).
        pong = await gw.nc.request("$SRV.PING", b"", timeout=5)
        assert pong.subject.startswith(f"{GATEWAY_INBOX_PREFIX}.")
        assert json.loads(pong.data)["type"] == "io.nats.micro.v1.ping_response"
    finally:
        for who in (gw, pts, ident, hall):
            await who.close()


async def jetstream_stays_intact(operator: nats.NATS, points: str) -> None:
    """A service uses JetStream (its own streams and consumers) but may not delete or purge a stream."""
    js = operator.jetstream()
    stream = f"EDGE_{NODE.upper()}"
    before = (await js.stream_info(stream)).state.messages
    assert before >= 1
    pts = await BusUser.connect(points, inbox_prefix=service_inbox_prefix("points"))
    try:
        refused_js = pts.nc.jetstream(timeout=1)
        for attempt in (refused_js.purge_stream(stream), refused_js.delete_stream(stream)):
            with pytest.raises(nats.errors.TimeoutError):  # the server drops the request; nobody answers
                await attempt
        assert await pts.told(f'permissions violation for publish to "$js.api.stream.purge.{stream.lower()}"')
        assert await pts.told(f'permissions violation for publish to "$js.api.stream.delete.{stream.lower()}"')
        info = await pts.nc.jetstream().stream_info(stream)  # what a service needs still works
        assert info.state.messages == before
    finally:
        await pts.close()
    assert (await js.stream_info(stream)).state.messages == before


async def a_tap_gets_its_outcome(operator: nats.NATS, term: str, tmp: Path) -> None:
    """An enrolled terminal's tap is credited and its outcome reaches the terminal's inbox (the points service may
    publish into the inboxes of the enrolled terminals), after the enrolment's reload."""
    await operator.request(f"svc.{NODE}.points.events.put",
                           json.dumps({"code": "bus-ev", "name": "Bus event"}).encode(), timeout=5)
    sim = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())", "edge", "simulate",
         "--nats-url", term, "--node", NODE, "--event", "bus-ev", "--card", "00112233445566AA", "--volunteer",
         "--count", "1", "--terminal", "hall-1", "--spool", str(tmp / "hall-1.sqlite3")],
        capture_output=True, text=True, timeout=60,
    )
    assert sim.returncode == 0, sim.stdout + sim.stderr
    assert sim.stdout.strip() == "1 taps: 1 credited, 0 duplicate, 0 rejected; balance 5"
