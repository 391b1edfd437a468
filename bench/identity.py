"""Login and token endpoints of one node, each beside a baseline measured in the same run:
`python -m bench.identity [--db sqlite|postgres|both]`.

Baselines (once per run, they do not depend on the database): raw Argon2id verify/s in this process with the
service's parameters and its own code (identity.passwords: libsodium; one thread, and as many threads as cores;
argon2-cffi on one thread beside it), a bare FastAPI endpoint returning `{}` through each of the two HTTP client
setups (httpx for the browser-like portal figures, the lean keep-alive client of bench/lean_http.py for the
relying party's token endpoint and userinfo figures: each figure's ratio is to the bare endpoint with its own
client), raw NATS request/reply round trips to a trivial responder, raw RS256 JWT verify/s (joserfc).

For each database: own nats-server, `python -m identity` and `python -m gateway` as separate processes (env
`TOWNTIP_*`), N users and one confidential client made through the admin endpoints, then, each for a fixed time
with C concurrent clients:
  1. password logins/s through the portal (POST /login with the CSRF token of the login page; 303 = logged in),
     and the same logins straight to the identity service's NATS endpoint (svc.<node>.identity.login);
  2. code exchanges/s (POST /oauth/token, grant_type=authorization_code, PKCE S256; codes made just before);
  3. refreshes/s (POST /oauth/token, grant_type=refresh_token; every refresh token used exactly once);
  4. token verifications/s (GET /oauth/userinfo with a valid access token).
Each figure also gives the cores each process kept busy and its CPU milliseconds per operation. The report ends
with two verdicts: per core of the whole machine (every process, this bench's clients included), and counted as
Keycloak counts its per-vCPU figures: logins and refreshes per CPU-second of the node's serving processes
(gateway + identity + nats-server; with PostgreSQL's beside), the load generator and the database left out.
Everything listens on 127.0.0.1; every child process, temp dir and PostgreSQL schema is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import nats
import psutil
from argon2 import PasswordHasher
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization, RSAKey

from bench.lean_http import LeanClient
from bench.taps import (
    PG_URL,
    REPO,
    _f,
    _ratio,
    _verdict,
    cpu_seconds,
    drop_schema,
    each_database,
    log,
    machine,
    percentile,
    postgres_cpu,
    rss_mb,
    stop_process,
)
from identity.passwords import PARAMS as ARGON2_PARAMS
from identity.passwords import hash_sync, verify_sync
from towntip.kernel import errors, runtime
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.settings import GatewaySettings
from towntip.node.natsd import NatsServer, free_port, wait_for_port

NODE = "bench"
REDIRECT_URI = "http://127.0.0.1/cb"
CLIENT_ID = "bench-rp"
SCOPE = "openid profile email"
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]+)"')
ARGON2_PREFIX = "$argon2id$v=19$m=7168,t=5,p=1$"  # Keycloak's defaults: Argon2id 1.3, 7 MiB, 5 iterations, 1 lane

# Keycloak publishes 15 password logins/s and 120 refreshes/s per vCPU (Argon2id, 5 iterations, 7 MiB);
# the target is at least twice that per core.
KEYCLOAK_LOGINS_PER_VCPU = 15.0
KEYCLOAK_REFRESHES_PER_VCPU = 120.0
TARGET_LOGINS_PER_CORE = 2 * KEYCLOAK_LOGINS_PER_VCPU
TARGET_REFRESHES_PER_CORE = 2 * KEYCLOAK_REFRESHES_PER_VCPU
THROTTLE_OFF = 1_000_000_000  # TOWNTIP_LOGIN_LIMIT for the bench's gateway (one client address: 127.0.0.1)
CODE_TTL_GUARD = 40.0  # seconds: codes live 60 s, so a batch is made in at most this long before its exchanges

BARE_APP = """
import sys
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict:
    return {}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", timeout_graceful_shutdown=5,
            proxy_headers=False)
"""

ECHO_RESPONDER = """
import asyncio
import sys
import nats


async def main() -> None:
    nc = await nats.connect(sys.argv[1], connect_timeout=5)

    async def echo(msg) -> None:
        await msg.respond(b"{}")

    await nc.subscribe(sys.argv[2], queue="echo", cb=echo)
    await nc.flush()
    await asyncio.Event().wait()


asyncio.run(main())
"""


# ---- timing -------------------------------------------------------------------------------------------------

Outcome = str | None  # "ok", an error label, or None: nothing left to do (a supply of codes ran out)


class CpuMeter:
    """CPU seconds of named processes (and of all local PostgreSQL server processes) between two samples."""

    def __init__(self, pids: dict[str, int | None], with_postgres: bool) -> None:
        self.pids = {k: v for k, v in pids.items() if v is not None}
        self.with_postgres = with_postgres

    def sample(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.with_postgres:
            out["postgres"] = postgres_cpu()
        t = psutil.cpu_times()  # every process on the machine (guest time is already inside user)
        out["_machine"] = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        return out

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        """CPU seconds per process between samples a and b; "other" = the rest of the machine (not ours)."""
        out: dict[str, float] = {}
        for name, v in b.items():
            if name == "postgres":
                # a backend started after `a` spent all its CPU time in between
                out[name] = sum(t - a.get(name, {}).get(pid, 0.0) for pid, t in v.items())
            elif name != "_machine" and v is not None and a.get(name) is not None:
                out[name] = v - a[name]
        out["other"] = max(0.0, b["_machine"] - a["_machine"] - sum(out.values()))
        return out


@dataclass
class Run:
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    ran_out: bool = False  # the supply (codes) ran out before the time was up

    @property
    def per_s(self) -> float | None:
        return self.ok / self.seconds if self.seconds > 0 and self.ok else None

    def add(self, other: Run) -> None:
        self.ok += other.ok
        self.errors.update(other.errors)
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        for k, v in other.cpu_s.items():
            self.cpu_s[k] = self.cpu_s.get(k, 0.0) + v
        self.ran_out = self.ran_out or other.ran_out

    def summary(self, cores: int, **extra: Any) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "ok": self.ok, "errors": dict(self.errors), "seconds": self.seconds, "per_s": self.per_s,
            "per_core": self.per_s / cores if self.per_s else None,
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "ran_out": self.ran_out,
            "cpu_s": self.cpu_s, "busy_cores": {k: v / self.seconds for k, v in self.cpu_s.items()}
            if self.seconds > 0 else {},
            **extra,
        }


async def drive(workers: list[Callable[[], Awaitable[Outcome]]], seconds: float, meter: CpuMeter | None = None,
                *, max_ok: int | None = None) -> Run:
    """Each worker is called in its own loop until `seconds` have passed (closed loop: one request in flight per
    worker). Counts "ok" outcomes and error labels; a worker stops early when it returns None (supply gone), or when
    `max_ok` successes were counted in all. Elapsed time ends when the last worker's last request ends."""
    run = Run()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    before = meter.sample() if meter else {}

    async def loop(fn: Callable[[], Awaitable[Outcome]]) -> None:
        while time.perf_counter() < deadline and (max_ok is None or run.ok < max_ok):
            t = time.perf_counter()
            try:
                outcome = await fn()
            except Exception as exc:  # noqa: BLE001 - counted, and the loop goes on until the deadline
                outcome = exc.__class__.__name__
            if outcome is None:
                run.ran_out = True
                return
            if outcome == "ok":
                run.ok += 1
                run.latencies_ms.append((time.perf_counter() - t) * 1000.0)
            else:
                run.errors[outcome] += 1
                if outcome.startswith(("Connect", "Remote")):
                    await asyncio.sleep(0.05)  # a process is gone: don't spin

    await asyncio.gather(*(loop(w) for w in workers))
    run.seconds = time.perf_counter() - t0
    if meter:
        run.cpu_s = CpuMeter.delta(before, meter.sample())
    return run


def http_client(base_url: str, **kw: Any) -> httpx.AsyncClient:
    """One virtual client: its own connection (keep-alive) and cookie jar. The same setup for every HTTP figure."""
    return httpx.AsyncClient(base_url=base_url, follow_redirects=False, timeout=30.0,
                             limits=httpx.Limits(max_connections=1, max_keepalive_connections=1), **kw)


# ---- baselines ----------------------------------------------------------------------------------------------


def spawn_script(log_path: Path, script: str, *argv: str) -> subprocess.Popen:
    """`python -c script argv…` as a separate process (its own session), output to log_path."""
    with open(log_path, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", script, *argv], cwd=str(REPO), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def bench_argon2(seconds: float, threads: int) -> dict[str, Any]:
    """The identity service's own Argon2id verify (identity.passwords: libsodium for these parameters), in this
    process, on 1 and on `threads` threads; argon2-cffi's rate for the same string on 1 thread beside it."""
    password = "correct horse battery staple"
    stored = hash_sync(password)
    cffi = PasswordHasher(**ARGON2_PARAMS)

    def spin(deadline: float, verify: Callable[[str, str], Any] = verify_sync) -> int:
        n = 0
        while time.perf_counter() < deadline:
            assert verify(stored, password)
            n += 1
        return n

    out: dict[str, Any] = {"hash_prefix": stored[: len(ARGON2_PREFIX)],
                           "keycloak_params": stored.startswith(ARGON2_PREFIX)}
    for n_threads in sorted({1, threads}):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(n_threads) as pool:
            counts = list(pool.map(spin, [t0 + seconds] * n_threads))
        elapsed = time.perf_counter() - t0
        out[f"threads_{n_threads}"] = {"threads": n_threads, "verifies": sum(counts), "seconds": elapsed,
                                       "per_s": sum(counts) / elapsed}
    out["single"] = out["threads_1"]
    out["all_cores"] = out[f"threads_{threads}"]
    t0 = time.perf_counter()
    n = spin(t0 + seconds, cffi.verify)
    out["argon2_cffi_single"] = {"threads": 1, "verifies": n, "seconds": time.perf_counter() - t0,
                                 "per_s": n / (time.perf_counter() - t0)}
    return out


def bench_jwt(seconds: float) -> dict[str, Any]:
    """RS256 verification of an access-token-like JWT (2048-bit key), in this process, one thread.
    Also: the same with the JWKS imported from its JSON before every verification."""
    key = RSAKey.generate_key(2048)
    kid = key.thumbprint()
    public = RSAKey.import_key(key.as_dict(private=False))
    now = int(time.time())
    claims = {"iss": "http://127.0.0.1", "sub": uuid.uuid4().hex, "aud": CLIENT_ID, "client_id": CLIENT_ID,
              "scope": SCOPE, "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "handle": "bench_u000@bench"}
    token = jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, key, ["RS256"])
    jwks: KeySetSerialization = {"keys": [{**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": "RS256"}]}

    def spin(fn: Callable[[], Any], limit: float) -> dict[str, Any]:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < limit:
            fn()
            n += 1
        elapsed = time.perf_counter() - t0
        return {"verifies": n, "seconds": elapsed, "per_s": n / elapsed}

    out = spin(lambda: jwt.decode(token, public, algorithms=["RS256"]), seconds)
    out["with_keyset_import"] = spin(
        lambda: jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"]), min(seconds, 2.0))
    return out


async def bench_bare_http(workdir: Path, seconds: float, concurrency: int, lean: bool = False) -> dict[str, Any]:
    """A bare FastAPI app (GET / -> {}) under uvicorn in its own process, same uvicorn options as the gateway;
    requests from httpx (`http_client`, as the portal figures) or from the lean client (as the token figures)."""
    port = free_port()
    proc = spawn_script(workdir / "bare-http.log", BARE_APP, str(port))
    try:
        wait_for_port("127.0.0.1", port, 30.0, proc)
        base = f"http://127.0.0.1:{port}"
        clients: list[Any] = [LeanClient(base) if lean else http_client(base) for _ in range(concurrency)]
        try:
            async def get(cl: Any) -> Outcome:
                r = await cl.get("/")
                return "ok" if r.status_code == 200 else f"HTTP {r.status_code}"

            for cl in clients:  # connect first (not timed)
                await cl.get("/")
            run = await drive([functools.partial(get, cl) for cl in clients], seconds,
                              CpuMeter({"server": proc.pid, "bench": os.getpid()}, False))
        finally:
            for cl in clients:
                await cl.aclose()
        return run.summary(os.cpu_count() or 1, concurrency=concurrency)
    finally:
        stop_process(proc)


async def bench_nats_rtt(workdir: Path, seconds: float, concurrency: int) -> dict[str, Any]:
    """Request/reply round trips to a trivial responder in another process (nats-py, one subscription), on a
    nats-server of its own; C requests in flight from one connection, like the gateway's."""
    server = NatsServer(node_id=NODE, data_dir=workdir / "nats-baseline").start()
    subject = "bench.echo"
    proc = None
    nc = None
    try:
        proc = spawn_script(workdir / "echo.log", ECHO_RESPONDER, server.url, subject)
        nc = await nats.connect(server.url, connect_timeout=5)
        deadline = time.monotonic() + 30.0
        while True:  # bounded wait for the responder
            try:
                await nc.request(subject, b"{}", timeout=1.0)
                break
            except Exception:  # noqa: BLE001 - not up yet, whatever the error: asked again until the deadline
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the NATS echo responder did not answer") from None
                await asyncio.sleep(0.1)

        async def req() -> Outcome:
            await nc.request(subject, b"{}", timeout=5.0)
            return "ok"

        run = await drive([req] * concurrency, seconds,
                          CpuMeter({"responder": proc.pid, "nats-server": server.proc.pid if server.proc else None,
                                    "bench": os.getpid()}, False))
        return run.summary(os.cpu_count() or 1, concurrency=concurrency)
    finally:
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
        stop_process(proc)
        with contextlib.suppress(Exception):
            server.stop()


async def baselines(args: argparse.Namespace, cores: int) -> dict[str, Any]:
    print("\n== baselines (once for the run; they do not depend on the database) ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="towntip-bench-identity-base-"))
    out: dict[str, Any] = {}
    try:
        log(f"Argon2id verify, {ARGON2_PARAMS['time_cost']} iterations, {ARGON2_PARAMS['memory_cost']} KiB, "
            f"parallelism {ARGON2_PARAMS['parallelism']}: 1 thread and {cores} threads, {args.seconds:g} s each")
        meter = CpuMeter({"bench": os.getpid()}, False)
        before = meter.sample()
        t0 = time.perf_counter()
        out["argon2"] = await asyncio.to_thread(bench_argon2, args.seconds, cores)
        out["argon2"]["other_busy_cores"] = CpuMeter.delta(before, meter.sample())["other"] / (time.perf_counter() - t0)
        log(f"bare FastAPI GET / -> {{}} (uvicorn, own process), {args.concurrency} clients, {args.seconds:g} s")
        out["bare_http"] = await bench_bare_http(workdir, args.seconds, args.concurrency)
        log(f"the same with the lean HTTP client (bench/lean_http.py), {args.concurrency} clients, {args.seconds:g} s")
        out["bare_http_lean"] = await bench_bare_http(workdir, args.seconds, args.concurrency, lean=True)
        log(f"raw NATS request/reply to a trivial responder, {args.concurrency} in flight, {args.seconds:g} s")
        out["nats_rtt"] = await bench_nats_rtt(workdir, args.seconds, args.concurrency)
        log(f"raw RS256 JWT verify (joserfc), {args.seconds:g} s")
        out["jwt"] = await asyncio.to_thread(bench_jwt, args.seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# ---- the node under test ------------------------------------------------------------------------------------


@dataclass
class BenchUser:
    handle: str
    password: str


@dataclass
class IdentityNode:
    """nats-server + `python -m identity` + `python -m gateway`, all started by this bench."""

    workdir: Path
    database_url: str
    schema: str
    port: int = field(default_factory=free_port)
    nats: NatsServer | None = None
    identity: subprocess.Popen | None = None
    gateway: subprocess.Popen | None = None
    throttle_note: str = ""
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        assert self.nats is not None
        env = dict(os.environ)
        env.update({
            "TOWNTIP_NODE_ID": NODE,
            "TOWNTIP_NATS_URL": self.nats.url,
            "TOWNTIP_DATA_DIR": str(self.workdir / "data"),
            "TOWNTIP_PUBLIC_URL": self.public_url,
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        })
        return env

    def spawn(self, name: str, module: str, env: dict[str, str]) -> subprocess.Popen:
        path = self.workdir / f"{name}.log"
        self.logs[name] = path
        with open(path, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", module], env=env, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    async def start(self, timeout: float = 60.0) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(node_id=NODE, data_dir=self.workdir / "nats").start()
        env = self.env()
        env.update({
            "TOWNTIP_SERVICE": "identity",
            "TOWNTIP_DATABASE_URL": self.database_url,
            "TOWNTIP_DATABASE_SCHEMA": self.schema,
            "TOWNTIP_SMTP_ENABLED": "false",
        })
        self.identity = self.spawn("identity", "identity", env)
        env = self.env()
        env.update({"TOWNTIP_HTTP_HOST": "127.0.0.1", "TOWNTIP_HTTP_PORT": str(self.port),
                    "TOWNTIP_SERVICES": "identity"})
        if "login_limit" in GatewaySettings.model_fields:  # the gateway's own setting; no code is changed
            env["TOWNTIP_LOGIN_LIMIT"] = str(THROTTLE_OFF)
            self.throttle_note = f"TOWNTIP_LOGIN_LIMIT={THROTTLE_OFF} (the gateway's setting; default 10 per 5 min)"
        else:
            self.throttle_note = ("no TOWNTIP_LOGIN_LIMIT setting: the portal allows 10 logins per 5 min per address, "
                                  "so the portal figure is only that many")
        self.gateway = self.spawn("gateway", "gateway", env)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.public_url, timeout=5.0) as cl:
            while True:
                for name, proc in (("identity", self.identity), ("gateway", self.gateway)):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode}; see its log")
                with contextlib.suppress(httpx.HTTPError):
                    if (await cl.get("/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"/healthz did not answer 200 within {timeout:g} s")
                await asyncio.sleep(0.2)

    def pids(self) -> dict[str, int | None]:
        return {
            "identity": self.identity.pid if self.identity else None,
            "gateway": self.gateway.pid if self.gateway else None,
            "nats-server": self.nats.proc.pid if self.nats and self.nats.proc else None,
            "bench": os.getpid(),
        }

    def stop(self) -> None:
        for proc in (self.gateway, self.identity):
            with contextlib.suppress(Exception):
                stop_process(proc)
        if self.nats is not None:
            with contextlib.suppress(Exception):
                self.nats.stop()


@dataclass
class IdentityRun:
    """One database's run: the node, the bench's connections and what the phases hand each other (users, the
    client's Basic header, codes, refresh tokens, access tokens); each phase fills its figure into `result`."""

    node: IdentityNode
    args: argparse.Namespace
    cores: int
    result: dict[str, Any]
    rng: random.Random
    nc: Any = None
    meter: CpuMeter | None = None
    users: list[BenchUser] = field(default_factory=list)
    basic: dict[str, str] = field(default_factory=dict)
    clients: list[Any] = field(default_factory=list)
    browsers: list[httpx.AsyncClient] = field(default_factory=list)
    rps: list[LeanClient] = field(default_factory=list)
    codes: deque[tuple[str, str]] = field(default_factory=deque)
    refresh_pool: deque[str] = field(default_factory=deque)
    access_tokens: list[str] = field(default_factory=list)

    @property
    def C(self) -> int:  # the concurrency, as the module's docstring names it
        return int(self.args.concurrency)

    def svc(self, ep: str) -> str:
        return subjects.svc(NODE, c.SERVICE, ep)

    async def setup(self) -> None:
        """The node, the bench's NATS connection, the users and a confidential client through the admin endpoints."""
        node, args = self.node, self.args
        await node.start()
        log(f"identity pid {node.identity.pid if node.identity else '?'}, gateway pid "
            f"{node.gateway.pid if node.gateway else '?'} on {node.public_url}, nats "
            f"{node.nats.url if node.nats else '?'}")
        log(f"login throttle: {node.throttle_note}")
        self.result["throttle"] = node.throttle_note
        self.meter = CpuMeter(node.pids(), self.result["database"] == "postgres")
        self.nc = await nats.connect(node.nats.url, connect_timeout=5)  # type: ignore[union-attr]
        users = [BenchUser(f"bench_u{i:03d}", f"bench-pw-{i:03d}-{secrets.token_hex(4)}") for i in range(args.users)]
        t0 = time.perf_counter()
        await asyncio.gather(*(rpc.call(self.nc, self.svc(c.EP_USER_ADD), c.UserAddIn(
            handle=u.handle, email=f"{u.handle}@example.jp", password=u.password), timeout=60.0) for u in users))
        log(f"{len(users)} users made in {time.perf_counter() - t0:.1f} s (admin.user.add, Argon2id hash each)")
        self.users = users
        client = await rpc.call(self.nc, self.svc(c.EP_CLIENT_ADD), c.ClientAddIn(
            client_id=CLIENT_ID, redirect_uris=[REDIRECT_URI]), timeout=15.0)
        secret = client["client_secret"]
        self.basic = {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()}

    async def portal_logins(self) -> None:
        """1. password logins through the portal."""
        C, args, rng, users = self.C, self.args, self.rng, self.users
        login_clients = [http_client(self.node.public_url) for _ in range(C)]
        self.clients += login_clients
        csrf: dict[int, str] = {}
        for i, cl in enumerate(login_clients):  # each virtual client: its CSRF cookie and token, not timed
            page = await cl.get("/login")
            found = CSRF_RE.search(page.text)
            if page.status_code != 200 or found is None:
                raise RuntimeError(f"GET /login answered {page.status_code} without a CSRF token")
            csrf[i] = found.group(1)
        seen_cookie: list[bool] = []

        async def portal_login(i: int) -> Outcome:
            u = rng.choice(users)
            r = await login_clients[i].post("/login", data={"csrf": csrf[i], "login": u.handle,
                                                            "password": u.password, "next": "/me"})
            if r.status_code == 303:
                if not seen_cookie:
                    seen_cookie.append("tt_session=" in r.headers.get("set-cookie", ""))
                login_clients[i].cookies.delete("tt_session")  # every attempt a fresh login
                return "ok"
            return f"HTTP {r.status_code}"

        throttled = "login_limit" not in GatewaySettings.model_fields
        log(f"1. password logins through the portal (POST /login), {C} clients, {args.seconds:g} s"
            + (" — throttled: at most 10" if throttled else ""))
        run = await drive([functools.partial(portal_login, i) for i in range(C)], args.seconds, self.meter,
                          max_ok=10 if throttled else None)
        self.result["login_http"] = run.summary(self.cores, session_cookie_set=bool(seen_cookie and seen_cookie[0]),
                                                throttled=throttled)

    async def nats_logins(self) -> None:
        """1b. the same logins straight to the identity service over NATS."""
        C, args, rng, users, nc = self.C, self.args, self.rng, self.users, self.nc

        async def nats_login() -> Outcome:
            u = rng.choice(users)
            try:
                await rpc.call(nc, self.svc(c.EP_LOGIN), c.LoginIn(login=u.handle, password=u.password,
                                                                    client_ip="127.0.0.1", user_agent="bench"),
                               timeout=30.0)
            except errors.ServiceError as exc:
                return f"{exc.code}"
            return "ok"

        log(f"1b. password logins straight to svc.{NODE}.identity.login over NATS, {C} in flight, {args.seconds:g} s")
        self.result["login_nats"] = (await drive([nats_login] * C, args.seconds, self.meter)).summary(self.cores)

    async def sessions(self) -> None:
        """Browsers with a session (made through the NATS login: the portal throttle is not spent), and the relying
        party's connections: the lean client (no cookies needed), as its bare baseline."""
        for _ in range(self.C):
            u = self.rng.choice(self.users)
            sess = await rpc.call(self.nc, self.svc(c.EP_LOGIN), c.LoginIn(login=u.handle, password=u.password,
                                                                           client_ip="127.0.0.1"), timeout=30.0)
            self.browsers.append(http_client(self.node.public_url,
                                              headers={"Cookie": f"tt_session={sess['session_token']}"}))
        self.clients += self.browsers
        self.rps = [LeanClient(self.node.public_url) for _ in range(self.C)]
        self.clients += self.rps

    async def authorize(self, cl: httpx.AsyncClient) -> Outcome:
        verifier = secrets.token_urlsafe(48)
        r = await cl.get("/oauth/authorize", params={
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": SCOPE,
            "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
        location = r.headers.get("location", "")
        if r.status_code == 302 and location.startswith(REDIRECT_URI + "?"):
            self.codes.append((parse_qs(urlsplit(location).query)["code"][0], verifier))
            return "ok"
        return f"HTTP {r.status_code}"

    async def exchange(self, cl: LeanClient) -> Outcome:
        try:
            code, verifier = self.codes.popleft()
        except IndexError:
            return None
        r = await cl.post("/oauth/token", headers=self.basic, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier})
        if r.status_code != 200:
            return f"HTTP {r.status_code}"
        token = r.json()
        self.refresh_pool.append(token["refresh_token"])
        self.access_tokens.append(token["access_token"])
        return "ok"

    async def code_exchanges(self) -> None:
        """2. code exchanges: codes made just before (60 s lifetime), in batches if they run out."""
        args, C = self.args, self.C
        made, exchanged = Run(), Run()
        make_for = min(max(args.seconds * 1.5, 2.0), CODE_TTL_GUARD)
        for batch in range(1, 4):
            left = args.seconds - exchanged.seconds
            if left < 0.25 * args.seconds and batch > 1:
                break
            log(f"2. batch {batch}: authorization codes via GET /oauth/authorize for {make_for:.1f} s ({C} browsers)")
            self.codes.clear()
            m = await drive([functools.partial(self.authorize, cl) for cl in self.browsers], make_for, self.meter)
            made.add(m)
            log(f"   {m.ok} codes ({_f(m.per_s)}/s); timing POST /oauth/token authorization_code, up to {left:.1f} s")
            e = await drive([functools.partial(self.exchange, cl) for cl in self.rps], left, self.meter)
            exchanged.add(e)
            if not e.ran_out:
                break
            # the next batch: enough codes for the time left, at the rates just seen (bounded by the codes' lifetime)
            rate_make, rate_ex = m.per_s or 1.0, e.per_s or 1.0
            make_for = min(CODE_TTL_GUARD, max(1.0, 1.3 * (args.seconds - exchanged.seconds) * rate_ex / rate_make))
        self.result["authorize"] = made.summary(self.cores)
        self.result["code_exchange"] = exchanged.summary(self.cores, batches=batch)

    async def refreshes(self) -> None:
        """3. refreshes: each refresh token used once (the pool from the exchanges, then each client's own)."""
        C, args, rps, refresh_pool = self.C, self.args, self.rps, self.refresh_pool
        from_pool: Counter[str] = Counter()
        own: dict[int, str] = {}

        async def refresh(i: int) -> Outcome:
            if refresh_pool:
                token, src = refresh_pool.popleft(), "pool"
            elif i in own:
                token, src = own.pop(i), "chained"
            else:
                return None
            r = await rps[i].post("/oauth/token", headers=self.basic, data={"grant_type": "refresh_token",
                                                                          "refresh_token": token})
            if r.status_code != 200:
                return f"HTTP {r.status_code}"
            body = r.json()
            own[i] = body["refresh_token"]
            self.access_tokens.append(body["access_token"])
            from_pool[src] += 1
            return "ok"

        log(f"3. POST /oauth/token refresh_token, {C} clients, {args.seconds:g} s ({len(refresh_pool)} from the "
            "exchanges, then each client's newest)")
        self.result["refresh"] = (await drive([functools.partial(refresh, i) for i in range(C)], args.seconds,
                                              self.meter)).summary(
            self.cores, tokens_from_exchanges=from_pool["pool"], tokens_chained=from_pool["chained"])

    async def userinfo(self) -> list[str]:
        """4. userinfo with valid access tokens; the tokens used."""
        C, args, rps = self.C, self.args, self.rps
        fresh = self.access_tokens[-C:]
        if not fresh:
            raise RuntimeError("no access token to verify: the exchanges and refreshes all failed")

        async def userinfo(i: int) -> Outcome:
            r = await rps[i].get("/oauth/userinfo", headers={"Authorization": f"Bearer {fresh[i % len(fresh)]}"})
            return "ok" if r.status_code == 200 else f"HTTP {r.status_code}"

        log(f"4. GET /oauth/userinfo with a valid access token, {C} clients, {args.seconds:g} s")
        self.result["userinfo"] = (await drive([functools.partial(userinfo, i) for i in range(C)], args.seconds,
                                               self.meter)).summary(
            self.cores)
        return fresh

    async def checks(self, fresh: list[str]) -> None:
        """Not timed: the tokens are what they claim."""
        rps, result = self.rps, self.result
        keyset = KeySet.import_key_set((await rps[0].get("/oauth/jwks")).json())
        decoded = jwt.decode(fresh[-1], keyset, algorithms=["ES256"])  # access tokens: ES256 (identity/keys.py)
        info = (await rps[0].get("/oauth/userinfo", headers={"Authorization": f"Bearer {fresh[-1]}"})).json()
        result["checks"] = {
            "access_token_typ": decoded.header.get("typ"), "iss_ok": decoded.claims.get("iss") == self.node.public_url,
            "userinfo_sub_ok": info.get("sub") == decoded.claims.get("sub"),
            "portal_session_cookie": result["login_http"]["session_cookie_set"],
        }
        result["rss_mb"] = {name: rss_mb(pid) for name, pid in self.node.pids().items() if name != "bench"}

    async def close(self) -> None:
        for cl in self.clients:
            with contextlib.suppress(Exception):
                await cl.aclose()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
        self.node.stop()


async def run_one(kind: str, args: argparse.Namespace, cores: int) -> dict[str, Any]:
    print(f"\n== {kind} ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"towntip-bench-identity-{kind}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if kind == "postgres" else ""
    url = args.pg_url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/data/identity.sqlite3"
    node = IdentityNode(workdir=workdir, database_url=url, schema=schema)
    result: dict[str, Any] = {"database": kind, "schema": schema or None}
    bench = IdentityRun(node=node, args=args, cores=cores, result=result, rng=random.Random(args.seed))
    try:
        await bench.setup()
        await bench.portal_logins()
        await bench.nats_logins()
        await bench.sessions()
        await bench.code_exchanges()
        await bench.refreshes()
        await bench.checks(await bench.userinfo())
    except Exception as exc:  # noqa: BLE001 - a failed database run is reported in its figures, the other goes on
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        print(f"!! {kind}: {result['error']}", flush=True)
        for name, path in node.logs.items():
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-15:]
                print(f"   --- last lines of {name} log ---\n   " + "\n   ".join(tail))
    finally:
        await bench.close()
        if kind == "postgres":
            try:
                await drop_schema(args.pg_url, schema)
                log(f"dropped schema {schema}")
            except Exception as exc:  # noqa: BLE001
                print(f"!! could not drop schema {schema}: {exc}", flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def report(mach: dict[str, Any], base: dict[str, Any], results: list[dict[str, Any]], skipped: dict[str, str],
           args: argparse.Namespace) -> None:
    cores = mach["cores"] or 1
    print("\n== TownTip identity benchmark: logins and tokens ==")
    print(f"machine : {mach['cpu']}, {cores} cores, {mach['memory_gb']} GB RAM   (per core = per second ÷ {cores})")
    print(f"python  : {mach['python']} ({mach['platform']})")
    print(f"date    : {mach['date']}")
    print(f"load    : {args.concurrency} concurrent clients, {args.seconds:g} s per figure, {args.users} users")
    for kind, why in skipped.items():
        print(f"skipped : {kind} — {why}")
    for r in results:
        if "error" in r:
            print(f"error   : {r['database']} — {r['error']}")

    a2, bare, rtt, jw = base["argon2"], base["bare_http"], base["nats_rtt"], base["jwt"]
    lean = base["bare_http_lean"]
    brows = [
        (f"Argon2id verify/s, 1 thread ({a2['hash_prefix']}…)", a2["single"]["per_s"]),
        (f"Argon2id verify/s, {a2['all_cores']['threads']} threads", a2["all_cores"]["per_s"]),
        ("  argon2-cffi's verify/s of the same string, 1 thread", a2["argon2_cffi_single"]["per_s"]),
        (f"bare FastAPI GET / → {{}} req/s, {bare['concurrency']} clients (httpx)", bare["per_s"]),
        (f"  same, {lean['concurrency']} lean clients (bench/lean_http.py)", lean["per_s"]),
        (f"raw NATS request/reply/s, {rtt['concurrency']} in flight", rtt["per_s"]),
        ("raw RS256 JWT verify/s (joserfc, 1 thread)", jw["per_s"]),
        ("  same, JWKS imported before each verify", jw["with_keyset_import"]["per_s"]),
    ]
    width = max(len(label) for label, _ in brows)
    print("\nbaselines (same run, same machine)")
    print(f"{'baseline':<{width}} | {'per s':>8} | {'per core':>8}")
    print("-" * (width + 24))
    for label, v in brows:
        print(f"{label:<{width}} | {_f(v):>8} | {_f(v / cores if v else None):>8}")
    busy = bare.get("busy_cores", {})
    print(f"(cores busy by processes not of this bench: {a2['other_busy_cores']:.2f} during Argon2id, "
          f"{busy.get('other', 0):.2f} during bare HTTP, {rtt['busy_cores'].get('other', 0):.2f} during NATS; ~0 "
          "expected)")
    lb = lean.get("busy_cores", {})
    print(f"(bare HTTP: server {busy.get('server', 0):.2f} + bench {busy.get('bench', 0):.2f} cores busy with httpx, "
          f"{lb.get('server', 0):.2f} + {lb.get('bench', 0):.2f} with the lean client; "
          f"Argon2id parameters = Keycloak's defaults: {'yes' if a2['keycloak_params'] else 'NO'})")

    ok = [r for r in results if "refresh" in r]
    if not ok:
        return
    cols = [r["database"] for r in ok]
    rows: list[tuple[str, list[str], str]] = []

    def add(label: str, values: list[str], target: str = "") -> None:
        rows.append((label, values, target))

    def figure(key: str, label: str, ratios: list[tuple[str, float | None]], target: str = "",
               per_core_target: str = "") -> None:
        xs = [r[key] for r in ok]
        add(label, [_f(x["per_s"], "{:,.1f}") + (" (ran out)" if x.get("ran_out") and key != "code_exchange"
                                                  else "") for x in xs], target)
        add("  per core", [_f(x["per_core"], "{:,.1f}") for x in xs], per_core_target)
        for name, b in ratios:
            add(f"  ÷ {name}", [_f(_ratio(x["per_s"], b), "{:.1%}") for x in xs])
        add("  ok / errors", [f"{x['ok']:,} / {sum(x['errors'].values()):,}"
                              + (f" {_errs(x['errors'])}" if x["errors"] else "") for x in xs])
        add("  latency p50 / p99 ms", [f"{_f(x['p50_ms'], '{:.0f}')} / {_f(x['p99_ms'], '{:.0f}')}" for x in xs])
        add("  cores busy: identity/gateway/nats/pg/bench/other",
            ["/".join(_f(x["busy_cores"].get(n), "{:.2f}") for n in ("identity", "gateway", "nats-server",
                                                                         "postgres", "bench", "other")) for x in xs])
        add("  CPU ms each: identity/gateway/nats/pg/bench",
            ["/".join(_f(_cpu_ms_each(x, n), "{:.1f}") for n in ("identity", "gateway", "nats-server", "postgres",
                                                                   "bench")) for x in xs])

    a2c = a2["all_cores"]["per_s"]
    figure("login_http", "1. password logins/s, portal POST /login (HTTP)",
           [(f"Argon2id verify/s ({a2['all_cores']['threads']} threads)", a2c),
            ("Argon2id verify/s (1 thread)", a2["single"]["per_s"]),
            ("bare FastAPI req/s", bare["per_s"])],
           "", f"≥ {TARGET_LOGINS_PER_CORE:.0f}/core")
    figure("login_nats", "1b. password logins/s, NATS svc.bench.identity.login",
           [(f"Argon2id verify/s ({a2['all_cores']['threads']} threads)", a2c),
            ("Argon2id verify/s (1 thread)", a2["single"]["per_s"]),
            ("raw NATS request/reply/s", rtt["per_s"])])
    figure("authorize", "   (setup) codes issued/s, GET /oauth/authorize", [("bare FastAPI req/s", bare["per_s"])])
    figure("code_exchange", "2. code exchanges/s, POST /oauth/token (code)",
           [("bare FastAPI req/s, lean client", lean["per_s"]), ("raw NATS request/reply/s", rtt["per_s"])])
    add("  code batches (made just before timing)", [str(r["code_exchange"]["batches"]) for r in ok])
    figure("refresh", "3. refreshes/s, POST /oauth/token (refresh_token)",
           [("bare FastAPI req/s, lean client", lean["per_s"]), ("raw NATS request/reply/s", rtt["per_s"])],
           "", f"≥ {TARGET_REFRESHES_PER_CORE:.0f}/core")
    add("  tokens: from exchanges / chained", [f"{r['refresh']['tokens_from_exchanges']:,} / "
                                               f"{r['refresh']['tokens_chained']:,}" for r in ok])
    figure("userinfo", "4. token verifications/s, GET /oauth/userinfo",
           [("raw RS256 JWT verify/s", jw["per_s"]), ("bare FastAPI req/s, lean client", lean["per_s"]),
            ("raw NATS request/reply/s", rtt["per_s"])])
    add("RSS MB identity / gateway / nats-server (end)",
        [" / ".join(_f(r["rss_mb"].get(n)) for n in ("identity", "gateway", "nats-server")) for r in ok])
    add("checks: at+jwt, iss, userinfo sub, session cookie",
        [" ".join("ok" if v in (True, "at+jwt") else "FAIL" for v in r["checks"].values()) for r in ok])

    width = max(len(label) for label, _, _ in rows)
    cw = [max(len(col), *(len(v[i]) for _, v, _ in rows)) for i, col in enumerate(cols)]
    print()
    print(f"{'figure':<{width}} | " + " | ".join(f"{col:>{cw[i]}}" for i, col in enumerate(cols)) + " | target")
    print("-" * (width + 3 + sum(w + 3 for w in cw) + 12))
    for label, values, target in rows:
        print(f"{label:<{width}} | " + " | ".join(f"{v:>{cw[i]}}" for i, v in enumerate(values)) + f" | {target}")
    print()
    print(f"Login throttle: {ok[0]['throttle']}.")
    print("cores busy = CPU seconds of the process during the figure ÷ its wall time (pg = all local postgres "
          "processes; bench = the HTTP/NATS clients; other = everything else on the machine, which should be ~0).")
    print(f"Targets: Keycloak publishes {KEYCLOAK_LOGINS_PER_VCPU:.0f} password logins/s and "
          f"{KEYCLOAK_REFRESHES_PER_VCPU:.0f} refreshes/s per vCPU (Argon2id, 5 iterations, 7 MiB); "
          "the target is twice that per core.")
    print("Verdict against the targets (per core):")
    for r in ok:
        held = r["login_http"] if not r["login_http"]["throttled"] else r["login_nats"]
        which = "portal" if not r["login_http"]["throttled"] else "NATS, portal throttled"
        verdicts = [
            _verdict(f"logins/s/core ({which})", held["per_core"], TARGET_LOGINS_PER_CORE, higher=True),
            _verdict("refreshes/s/core", r["refresh"]["per_core"], TARGET_REFRESHES_PER_CORE, higher=True),
        ]
        print(f"  {r['database']:<8}: " + "; ".join(verdicts))
    print("Counted as Keycloak counts (its per-vCPU figures are the CPU of Keycloak's own pods, which serve HTTP, "
          "run the logic and hash the passwords; not the database's, not the load generator's): operations per "
          "CPU-second of the node's serving processes, gateway + identity + nats-server, and with PostgreSQL's too:")
    for r in ok:
        held = r["login_http"] if not r["login_http"]["throttled"] else r["login_nats"]
        parts: list[str] = []
        for what, x, goal in (("logins", held, TARGET_LOGINS_PER_CORE),
                              ("refreshes", r["refresh"], TARGET_REFRESHES_PER_CORE)):
            serving = _cpu_ms_serving(x)
            db = _cpu_ms_each(x, "postgres") if r["database"] == "postgres" else None
            rate = 1000.0 / serving if serving else None
            parts.append(_verdict(f"{what}/CPU-s", rate, goal, higher=True)
                         + (f" ({_f(1000.0 / (serving + db) if serving else None, '{:,.1f}')} with PostgreSQL)"
                            if db is not None else "")
                         + (f", identity alone {_f(1000.0 / each, '{:,.0f}')}"
                            if (each := _cpu_ms_each(x, "identity")) else ""))
        print(f"  {r['database']:<8}: " + "; ".join(parts))


def _cpu_ms_serving(x: dict[str, Any]) -> float | None:
    """CPU milliseconds per operation of the processes that serve it: gateway, identity, nats-server."""
    each = [_cpu_ms_each(x, n) for n in ("gateway", "identity", "nats-server")]
    return sum(e for e in each if e is not None) if all(e is not None for e in each) else None


def _cpu_ms_each(x: dict[str, Any], name: str) -> float | None:
    """CPU milliseconds the process spent per successful operation of the figure."""
    return 1000.0 * x["cpu_s"][name] / x["ok"] if x["ok"] and name in x["cpu_s"] else None


def _errs(counts: dict[str, int]) -> str:
    return "(" + ", ".join(f"{k}×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3]) + ")"


# ---- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each timed figure and baseline")
    # 16: with 8 one-request-at-a-time clients the refresh path (client → gateway → NATS → identity → PostgreSQL and
    # back) left a quarter of the two cores idle; 16 keep them busy (measured: 458 → 476 refreshes/s)
    p.add_argument("--concurrency", type=int, default=16, help="concurrent clients (closed loop), default 16")
    p.add_argument("--users", type=int, default=50, help="users made before the figures, default 50")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.seconds <= 0 or not 1 <= args.concurrency <= 256 or not 1 <= args.users <= 1000:
        p.error("--seconds must be positive, --concurrency 1-256, --users 1-1000")
    return args


async def amain(args: argparse.Namespace) -> int:
    mach = machine()
    cores = mach["cores"] or 1
    started = time.perf_counter()
    base = await baselines(args, cores)
    results, skipped = await each_database(args, lambda kind, a: run_one(kind, a, cores))
    report(mach, base, results, skipped, args)
    print(f"(whole run {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": mach,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "targets": {"logins_per_s_per_core": TARGET_LOGINS_PER_CORE,
                        "refreshes_per_s_per_core": TARGET_REFRESHES_PER_CORE,
                        "keycloak_per_vcpu": {"logins": KEYCLOAK_LOGINS_PER_VCPU,
                                              "refreshes": KEYCLOAK_REFRESHES_PER_VCPU}},
            "argon2_params": {k: (str(v) if k == "type" else v) for k, v in ARGON2_PARAMS.items()},
            "baselines": base,
            "skipped": skipped,
            "results": results,
        }, indent=2, default=str))
        print(f"figures written to {args.json}")
    return 1 if any("error" in r for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    return runtime.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
