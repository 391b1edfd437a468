"""Twenty towns under prefecture hubs and a national hub: `python -m bench.federation [--towns 20]`.

Starts, on this machine: a trust anchor (in this process), the national hub and one hub per prefecture (each a
nats-server with one account per member node: towntip/node/hub.py, `start_hierarchy`), then one real node per
town (`towntip node up`'s supervisor: its own nats-server with JetStream, identity and projects as tasks of one
host process, the gateway with one worker, SQLite, the source guard), each enrolled at the anchor. Then measures:

1. propagation of a profile change (identity), a published theme and a case (projects) from one town to every
   other: from the moment the event is in the origin's own stream to the moment it is in each peer's FED stream
   (the time stamps the two servers stored it with, read through ordered consumers), p50/p99, split by one hub
   (same prefecture) and three hubs (prefecture → national → prefecture): the one-hub figure is the baseline;
2. a prefecture hub killed for `--cut-seconds` while a town of another prefecture publishes `--hour-events`
   events (the estimate of a busy town's hour of federated events), then restarted: the time until every node
   behind it holds all of them, counted per node (nothing lost, nothing twice);
3. a node removed at the anchor and at its hubs: when each other node's identity refuses its signed query as
   untrusted (the nodes' trust cache is `--cache-seconds`);
4. resident memory (RSS) of each node's processes (supervisor, nats-server, service host, gateway).

Everything listens on 127.0.0.1; the temp dir and every process are removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
import uvicorn
from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from bench.memory import MB
from towntip.anchor import TrustAnchor
from towntip.anchor.app import anchor_app
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.streams import ensure_peer_sources
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import pilots as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.trust import TrustError
from towntip.node.hub import Hub, prefecture_peers, start_hierarchy
from towntip.node.natsd import free_port

# The RING towns (towntip/kernel/towns.csv) and more of their neighbours, twenty in eight prefectures.
PREFECTURES: dict[str, list[str]] = {
    "saitama": ["tsurugashima", "kawagoe", "sakado"],
    "tokyo": ["suginami", "shibuya", "tama", "chuo"],
    "kanagawa": ["yokohama", "kamakura"],
    "chiba": ["tateyama", "kamogawa"],
    "kyoto": ["kyoto", "fukuchiyama"],
    "miyagi": ["sendai", "ishinomaki"],
    "aichi": ["nagoya", "toyota"],
    "hyogo": ["hyogo", "kobe", "himeji"],
}
NAMES_JA = {"tsurugashima": "鶴ヶ島", "kawagoe": "川越", "sakado": "坂戸", "suginami": "杉並", "shibuya": "渋谷",
            "tama": "多摩", "chuo": "中央区", "yokohama": "横浜", "kamakura": "鎌倉", "tateyama": "館山",
            "kamogawa": "鴨川", "kyoto": "京都", "fukuchiyama": "福知山", "sendai": "仙台", "ishinomaki": "石巻",
            "nagoya": "名古屋", "toyota": "豊田", "hyogo": "兵庫", "kobe": "神戸", "himeji": "姫路"}
SERVICES = ("identity", "projects")
PW = "correct horse battery"
STAFF = {"user_id": "user-staff-bench", "global_handle": "kikaku@{node}", "display_name": "企画課", "roles": ["staff"]}
CONTENT = {"background": "路線バスが減便された", "target": "75歳以上の方", "desired_outcome": "週2回以上の外出",
           "fields": ["npo-1"], "company_points": "予約システム"}


def pick(n: int) -> dict[str, list[str]]:
    """The first `n` towns, round-robin over the prefectures so that each has members."""
    out: dict[str, list[str]] = defaultdict(list)
    queues = {p: list(t) for p, t in PREFECTURES.items()}
    while sum(len(v) for v in out.values()) < n and any(queues.values()):
        for p, q in queues.items():
            if q and sum(len(v) for v in out.values()) < n:
                out[p].append(q.pop(0))
    return dict(out)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


@dataclass
class Town:
    name: str
    prefecture: str
    data_dir: Path
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    nc: NATS | None = None
    arrivals: dict[str, float] = field(default_factory=dict)  # event id -> when it was in this town's FED streams
    origins: dict[str, float] = field(default_factory=dict)  # event id -> when it was in this town's own streams

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def operator_url(self) -> str:
        return (self.data_dir / "secrets" / "nats-operator-url").read_text().strip()


def run_node(spec: str) -> int:
    """The child process of one town: `towntip node up`'s supervisor with identity and projects only."""
    from towntip.node.supervisor import NodeConfig
    from towntip.node.supervisor import run_node as up

    c = json.loads(spec)
    return up(NodeConfig(
        node_id=c["node"], data_dir=Path(c["data_dir"]), http_port=c["http_port"], public_url=c["base"],
        trust_anchor=c["anchor"], trust_anchor_jwks=c["jwks"], hub_urls=(c["hub"],),
        hub_credentials_file=c["credentials"], services=SERVICES, gateway_workers=1, log_level="WARNING",
        federation_cache_seconds=str(c["cache"]), federation_refresh_seconds="2",
        town_name=NAMES_JA.get(c["node"], c["node"])))


async def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


async def until(check: Any, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(step)
    return False


def rss(town: Town) -> dict[str, float]:
    """RSS (MB) of a town's processes by role."""
    assert town.proc is not None
    out: dict[str, float] = defaultdict(float)
    root = psutil.Process(town.proc.pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            line = " ".join(p.cmdline())
            mb = p.memory_info().rss / MB
        except psutil.Error:
            continue
        kind = ("supervisor" if p.pid == root.pid else "nats-server" if "nats-server" in line
                else "services" if "towntip.kernel.host" in line else "gateway")
        out[kind] += mb
    return dict(out)


async def watch(town: Town, peers: list[str]) -> list[Any]:
    """Ordered consumers on the town's own event streams and its FED streams, noting when each event arrives."""
    assert town.nc is not None
    js = town.nc.jetstream()
    subs = []

    # When each server stored the event (JetStream's own time stamp; every server runs on this machine's clock),
    # so the figures do not include this process's own delivery and scheduling.
    async def own(msg: Any) -> None:
        town.origins.setdefault(msg.headers.get(subjects.HDR_MSG_ID, ""), msg.metadata.timestamp.timestamp())

    async def fed(msg: Any) -> None:
        town.arrivals.setdefault(msg.headers.get(subjects.HDR_MSG_ID, ""), msg.metadata.timestamp.timestamp())

    for service in SERVICES:
        subs.append(await js.subscribe(subjects.evt_all(town.name, service), cb=own, ordered_consumer=True,
                                       stream=subjects.evt_stream(town.name, service),
                                       deliver_policy=DeliverPolicy.NEW))
    for stream in (subjects.fed_stream(town.name), subjects.fed_service_stream(town.name, "projects")):
        subs.append(await js.subscribe("evt.>", cb=fed, ordered_consumer=True, stream=stream,
                                       deliver_policy=DeliverPolicy.NEW))
    return subs


def junk_query(asker: Town, to: Town) -> str:
    """A person query that names `asker` as its issuer and does not verify: a member's is refused as invalid
    (its chain resolves, the signature fails), a removed node's as untrusted (not a member)."""
    def b64(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return ".".join([b64({"alg": "RS256", "typ": ic.PERSON_QUERY_TYP, "kid": "bench"}),
                     b64({"iss": asker.base, "sub": f"hanako@{asker.name}", "aud": to.base, "iat": now,
                          "exp": now + 60, "jti": uuid.uuid4().hex}), "c2lnbmF0dXJl"])


async def refusal(town: Town, asker: Town) -> str:
    assert town.nc is not None
    try:
        await rpc.call(town.nc, subjects.svc(town.name, ic.SERVICE, ic.EP_REGIONS_VERIFY),
                       ic.PersonQueryIn(token=junk_query(asker, town)), timeout=10)
    except errors.ServiceError as exc:
        return exc.error_code
    return "accepted"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.prefs = pick(args.towns)
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-federation-"))
        self.towns: dict[str, Town] = {}
        self.national: Hub | None = None
        self.hubs: dict[str, Hub] = {}
        self.servers: list[Any] = []
        self.results: dict[str, Any] = {}

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- setting up -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.national, self.hubs = start_hierarchy(self.tmp / "hubs", self.prefs, monitor=True)
        self.say(f"national hub {self.national.leaf_url}, {len(self.hubs)} prefecture hubs")
        port = free_port()
        self.anchor = TrustAnchor(self.tmp / "anchor", f"http://127.0.0.1:{port}")
        server = uvicorn.Server(uvicorn.Config(anchor_app(self.anchor), host="127.0.0.1", port=port,
                                               log_level="warning"))
        self.servers.append((server, asyncio.create_task(server.serve())))
        await wait_http(f"{self.anchor.entity_id}/federation/list", 30)
        for pref, names in self.prefs.items():
            for name in names:
                self.towns[name] = Town(name, pref, self.tmp / name, free_port())
        batch = self.args.start_batch
        names = list(self.towns)
        for i in range(0, len(names), batch):
            group = [self.towns[n] for n in names[i:i + batch]]
            for town in group:
                self._spawn(town)
            await asyncio.gather(*(self._ready(t) for t in group))
            self.say(f"nodes up: {', '.join(t.name for t in group)}")
        for town in self.towns.values():
            await self.enrol(town)
        self.say(f"{len(self.towns)} nodes enrolled at the anchor")

    async def enrol(self, town: Town, patience: float = 120) -> None:
        """Pins the town's federation key; its gateway may answer 503 for a while on a loaded machine."""
        deadline = time.monotonic() + patience
        while True:
            try:
                async with httpx.AsyncClient(timeout=30) as client:
                    await self.anchor.enrol(town.base, town.name, client=client)
                return
            except TrustError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)

    def _spawn(self, town: Town) -> None:
        hub = self.hubs[town.prefecture]
        spec = {"node": town.name, "data_dir": str(town.data_dir), "http_port": town.http_port, "base": town.base,
                "anchor": self.anchor.entity_id, "jwks": str(self.anchor.jwks_path), "hub": hub.leaf_url,
                "credentials": str(hub.data_dir / "credentials" / town.name), "cache": self.args.cache_seconds}
        town.data_dir.mkdir(parents=True)
        log = open(town.data_dir / "node.log", "wb")
        town.proc = subprocess.Popen([sys.executable, "-m", "bench.federation", "--run-node", json.dumps(spec)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    async def _ready(self, town: Town) -> None:
        await wait_http(f"{town.base}/healthz", self.args.start_timeout)
        town.nc = await nats.connect(town.operator_url(), max_reconnect_attempts=-1, reconnect_time_wait=0.3)

    async def link(self) -> None:
        """Every node sources every other's identity events (as it does once it knows people of theirs) and
        projects events (the projects service does that itself from the anchor's members: waited for)."""
        everyone = set(self.towns)
        for town in self.towns.values():
            assert town.nc is not None
            await ensure_peer_sources(town.nc.jetstream(), town.name, everyone - {town.name}, "identity")

        async def projects_linked() -> bool:
            for town in self.towns.values():
                assert town.nc is not None
                info = await town.nc.jetstream().stream_info(subjects.fed_service_stream(town.name, "projects"))
                if len(info.config.sources or []) < len(everyone) - 1:
                    return False
            return True

        if not await until(projects_linked, 120, 1.0):
            raise RuntimeError("the projects services did not source every peer within 120 s")
        for town in self.towns.values():
            await watch(town, [])
        self.say("every node sources every other (identity and projects)")

    # -- 1. propagation -------------------------------------------------------------------------------------

    async def propagation(self) -> None:
        kinds: dict[str, list[tuple[str, str]]] = defaultdict(list)  # kind -> (origin, event id)
        for origin in list(self.towns.values())[: self.args.origins]:
            for _ in range(self.args.rounds):
                kinds["profile change"].append((origin.name, await self.profile_change(origin)))
                kinds["published theme"].append((origin.name, await self.publish_theme(origin)))
                kinds["case"].append((origin.name, await self.publish_case(origin)))
                await asyncio.sleep(0.3)
        peers_of = {o: [t for t in self.towns.values() if t.name != o] for o in self.towns}
        wanted = [(o, e, t) for k in kinds.values() for o, e in k for t in peers_of[o]]

        async def arrived() -> bool:
            return all(e in t.arrivals for _o, e, t in wanted) and all(
                e in self.towns[o].origins for _o, e, _t in wanted for o in [_o])

        complete = await until(arrived, 60, 0.5)
        rows = {}
        for kind, events in kinds.items():
            one: list[float] = []
            three: list[float] = []
            missing = 0
            for o, e in events:
                t0 = self.towns[o].origins.get(e)
                for t in peers_of[o]:
                    t1 = t.arrivals.get(e)
                    if t0 is None or t1 is None:
                        missing += 1
                        continue
                    (one if t.prefecture == self.towns[o].prefecture else three).append((t1 - t0) * 1000)
            rows[kind] = {"n": len(one) + len(three), "missing": missing,
                          "p50": pct(one + three, 0.5), "p99": pct(one + three, 0.99), "max": max(one + three),
                          "one_hub_p50": pct(one, 0.5), "one_hub_p99": pct(one, 0.99),
                          "three_hubs_p50": pct(three, 0.5), "three_hubs_p99": pct(three, 0.99)}
        self.results["propagation"] = {"complete": complete, "rows": rows}
        self.say("propagation (ms, origin's stream → each peer's FED stream):")
        for kind, r in rows.items():
            self.say(f"  {kind:16} n={r['n']:4} missing={r['missing']} p50={r['p50']:.1f} p99={r['p99']:.1f} "
                     f"max={r['max']:.1f} | 1 hub p50/p99 {r['one_hub_p50']:.1f}/{r['one_hub_p99']:.1f} | "
                     f"3 hubs p50/p99 {r['three_hubs_p50']:.1f}/{r['three_hubs_p99']:.1f}")

    async def call(self, town: Town, service: str, endpoint: str, payload: Any) -> Any:
        assert town.nc is not None
        return await rpc.call(town.nc, subjects.svc(town.name, service, endpoint), payload, timeout=15)

    def staff(self, town: Town) -> dict[str, Any]:
        return {**STAFF, "global_handle": f"kikaku@{town.name}"}

    async def _newest(self, town: Town, before: set[str], timeout: float = 15) -> str:
        """The id of the event the origin's stream took after `before` (its own ordered consumer saw it)."""
        async def new() -> bool:
            return bool(set(town.origins) - before)

        if not await until(new, timeout, 0.02):
            raise RuntimeError(f"{town.name}: no event in its own stream within {timeout} s")
        return sorted(set(town.origins) - before, key=lambda e: town.origins[e])[-1]

    async def profile_change(self, town: Town) -> str:
        handle = f"p{uuid.uuid4().hex[:10]}"
        await self.call(town, ic.SERVICE, ic.EP_USER_ADD, ic.UserAddIn(
            handle=handle, display_name="鶴 花子", email=f"{handle}@example.jp", password=PW))
        login = await self.call(town, ic.SERVICE, ic.EP_LOGIN, {"login": handle, "password": PW})
        await asyncio.sleep(0.3)  # the registration's own events first
        before = set(town.origins)
        await self.call(town, ic.SERVICE, ic.EP_PROFILE_UPDATE, {"session_token": login["session_token"],
                                                                 "nickname": "はなちゃん", "findable": True})
        return await self._newest(town, before)

    async def publish_theme(self, town: Town) -> str:
        who = self.staff(town)
        dept = await self.call(town, "projects", prc.EP_ORG_CREATE, {"actor": who, "kind": "department",
                                                                     "name": f"企画課 {uuid.uuid4().hex[:6]}"})
        theme = await self.call(town, "projects", prc.EP_THEME_CREATE, {
            "actor": who, "owner_department_id": dept["id"], "title": "移動の足を守る", **CONTENT})
        await asyncio.sleep(0.3)
        before = set(town.origins)
        await self.call(town, "projects", prc.EP_THEME_PUBLISH, {"actor": who, "theme_id": theme["id"]})
        return await self._newest(town, before)

    async def publish_case(self, town: Town) -> str:
        """A case as the projects service announces it when a pilot's phase 4 publishes it (the same event,
        published on the origin's own subject by its operator: the walk to phase 4 is not what is measured)."""
        assert town.nc is not None
        case = pc.CasePublished(
            id=str(uuid.uuid4()), theme_id=str(uuid.uuid4()), origin_node=town.name, owner_department_name="企画課",
            title="乗合タクシーの実証", summary="予約型乗合交通を半年運行", approach="地元タクシーと協定",
            outcomes="外出回数1.6倍", lessons="電話予約も必要", transferability="団地の多い市で有効", fields=["npo-1"],
            kpis=[], partners=["株式会社アクメ"], decision="expand", version=1, published_at=datetime.now(UTC))
        env = case.envelope(node=town.name)
        await town.nc.jetstream().publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id})
        return env.id

    # -- 2. a prefecture hub cut ----------------------------------------------------------------------------

    async def cut(self) -> None:
        a = self.args
        pref = a.cut_prefecture if a.cut_prefecture in self.hubs else next(iter(self.hubs))
        hub = self.hubs[pref]
        origin = next(t for t in self.towns.values() if t.prefecture != pref)
        behind = [t for t in self.towns.values() if t.prefecture == pref and t.name != origin.name]
        others = [t for t in self.towns.values() if t.prefecture != pref and t.name != origin.name]
        assert origin.nc is not None
        js = origin.nc.jetstream()
        ids: list[str] = []
        self.say(f"cut: {pref}'s hub down for {a.cut_seconds} s while {origin.name} publishes {a.hour_events} "
                 f"events; nodes behind it: {', '.join(t.name for t in behind)}")
        assert hub.proc is not None
        hub.proc.kill()
        hub.proc.wait()
        t_cut = time.monotonic()
        per_batch = max(1, a.hour_events // max(1, int(a.cut_seconds * 0.8)))
        sent = 0
        load_before = {k: (await self.varz(h), self.cpu(h)) for k, h in {"national": self.national, **self.hubs}.items()
                       if h is not hub and h is not None}
        t_pub = time.monotonic()
        while sent < a.hour_events:
            for _ in range(min(per_batch, a.hour_events - sent)):
                env = ic.ProfileChanged(user_id=f"user-{uuid.uuid4().hex[:12]}", handle=f"h{sent}",
                                        global_handle=f"h{sent}@{origin.name}", home_node=origin.name,
                                        display_name="花子").envelope(
                                            node=origin.name)
                await js.publish_async(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id})
                ids.append(env.id)
                sent += 1
            await js.publish_async_completed()
            await asyncio.sleep(1.0)
        want = set(ids)

        def count(t: Town) -> int:
            return len(want & set(t.arrivals))

        # the others keep receiving while the hub is down
        await until(lambda: _true(all(count(t) == len(want) for t in others)), 60, 0.5)
        others_done = {t.name: count(t) for t in others}
        took = time.monotonic() - t_pub
        busy = {}
        for k, (v0, c0) in load_before.items():
            h = self.national if k == "national" else self.hubs[k]
            assert h is not None
            v, c1 = await self.varz(h), self.cpu(h)
            msgs = v["out_msgs"] - v0["out_msgs"] + v["in_msgs"] - v0["in_msgs"]
            busy[k] = {"msgs": msgs, "cpu_s": round(c1 - c0, 3), "seconds": round(took, 1),
                       "cpu_us_per_msg": round((c1 - c0) / max(1, msgs) * 1e6, 2)}
        self.results.setdefault("hub_load", {})["while publishing (cut)"] = busy
        self.say(f"  hubs while {origin.name} published {len(want)} events in {took:.0f} s: national "
                 f"{busy['national']['msgs']} msgs, {busy['national']['cpu_s']} CPU s "
                 f"({busy['national']['cpu_us_per_msg']} µs a message)")
        rest = a.cut_seconds - (time.monotonic() - t_cut)
        if rest > 0:
            await asyncio.sleep(rest)
        during = {t.name: count(t) for t in behind}
        down = time.monotonic() - t_cut
        hub.start()
        t_up, t_up_wall = time.monotonic(), time.time()
        done: dict[str, float] = {}

        async def caught_up() -> bool:
            for t in behind:
                if t.name not in done and count(t) == len(want):
                    done[t.name] = time.monotonic() - t_up
            return len(done) == len(behind)

        complete = await until(caught_up, a.catchup_timeout, 0.1)
        # from the restart to the last of the events stored at each node behind it (the servers' own time stamps)
        stored = {t.name: max((t.arrivals[e] for e in want if e in t.arrivals), default=t_up_wall) - t_up_wall
                  for t in behind}
        counts = {}
        for t in behind:
            assert t.nc is not None
            info = await t.nc.jetstream().stream_info(subjects.fed_stream(t.name))
            counts[t.name] = {"arrived": count(t), "fed_stream_total": info.state.messages}
        self.results["cut"] = {"prefecture": pref, "origin": origin.name, "events": len(want),
                               "down_seconds": round(down, 1), "behind": counts, "last_stored_seconds": stored,
                               "during_cut": during,
                               "others_during_cut": others_done, "caught_up_seconds": done, "complete": complete,
                               "catch_up_seconds_max": max(done.values()) if done else None}
        self.say(f"  hub down {down:.1f} s; during the cut the nodes behind it got {during} and the other "
                 f"prefectures' {len(others)} nodes got all {len(want)}: {set(others_done.values())}")
        self.say(f"  the last event stored behind it {max(stored.values()):.2f} s after the restart: {stored}")
        self.say(f"  after restart, every node behind it had all {len(want)} within "
                 f"{max(done.values()) if done else float('nan'):.1f} s: {done}; counts {counts}")

    # -- 3. a node removed ----------------------------------------------------------------------------------

    async def removal(self) -> None:
        victim = self.towns[self.args.remove] if self.args.remove in self.towns else list(self.towns.values())[-1]
        others = [t for t in self.towns.values() if t.name != victim.name]
        before = {t.name: await refusal(t, victim) for t in others}
        self.say(f"removal of {victim.name}: before, each node answers its junk query with "
                 f"{sorted(set(before.values()))}")
        assert self.national is not None
        t0 = time.monotonic()
        self.anchor.remove(victim.base)
        hub = self.hubs[victim.prefecture]
        members = [n for n in hub.members if n != victim.name]
        cut_pref = await hub.set_members(members)
        prefs = {p: [n for n in ns if n != victim.name] for p, ns in self.prefs.items()}
        self.national.peers = prefecture_peers(prefs, national=True)
        cut_nat = await self.national.set_members([n for ns in prefs.values() for n in ns])
        refused: dict[str, float] = {}

        async def all_refuse() -> bool:
            for t in others:
                if t.name not in refused and await refusal(t, victim) == ic.QUERY_UNTRUSTED.code:
                    refused[t.name] = time.monotonic() - t0
            return len(refused) == len(others)

        complete = await until(all_refuse, self.args.cache_seconds * 2 + 30, 0.5)
        self.results["removal"] = {"node": victim.name, "cache_seconds": self.args.cache_seconds,
                                   "before": sorted(set(before.values())), "refused_after": refused,
                                   "max": max(refused.values()) if refused else None, "complete": complete,
                                   "cut_at_prefecture_hub": cut_pref, "cut_at_national_hub": cut_nat}
        self.say(f"  cut off by the hubs: {cut_pref} (prefecture), {cut_nat} (national); every node refused it "
                 f"({ic.QUERY_UNTRUSTED.code}) within {max(refused.values()) if refused else float('nan'):.1f} s "
                 f"(cache {self.args.cache_seconds} s); all: {complete}")

    # -- 4. memory and the hubs' view -----------------------------------------------------------------------

    async def memory(self) -> None:
        per = {t.name: rss(t) for t in self.towns.values() if t.proc and t.proc.poll() is None}
        totals = [sum(v.values()) for v in per.values()]
        roles: dict[str, list[float]] = defaultdict(list)
        for v in per.values():
            for k, mb in v.items():
                roles[k].append(mb)
        hubs = {}
        for name, hub in {"national": self.national, **self.hubs}.items():
            if hub is not None and hub.proc is not None and hub.proc.poll() is None:
                hubs[name] = psutil.Process(hub.proc.pid).memory_info().rss / MB
        self.results["memory"] = {"per_node_mb": {k: round(sum(v.values()), 1) for k, v in per.items()},
                                  "node_mean_mb": statistics.mean(totals), "node_max_mb": max(totals),
                                  "by_role_mean_mb": {k: statistics.mean(v) for k, v in roles.items()},
                                  "hub_mb": hubs}
        self.say(f"memory per node: mean {statistics.mean(totals):.0f} MB, max {max(totals):.0f} MB; by role "
                 + ", ".join(f"{k} {statistics.mean(v):.0f}" for k, v in roles.items())
                 + "; hubs " + ", ".join(f"{k} {v:.0f}" for k, v in hubs.items()) + " MB")

    async def hub_view(self) -> None:
        """What crosses between the prefecture hubs and the national hub: each leafnode's subscriptions (the
        subjects it may be sent) and message counts, from the national hub's monitoring (a spy that adds no
        interest of its own)."""
        assert self.national is not None
        leafz = await self.national_leafz()
        kinds: dict[str, int] = defaultdict(int)
        msgs_in = msgs_out = 0
        for leaf in leafz.get("leafs") or []:
            msgs_in += leaf.get("in_msgs", 0)
            msgs_out += leaf.get("out_msgs", 0)
            for sub in leaf.get("subscriptions_list") or []:
                kinds[".".join(sub.split(".")[:2]) if sub.startswith("$") else sub.split(".")[0]] += 1
        self.results["national_hub"] = {"leafnodes": len(leafz.get("leafs") or []), "in_msgs": msgs_in,
                                        "out_msgs": msgs_out, "subscription_kinds": dict(kinds)}
        self.say(f"national hub: {len(leafz.get('leafs') or [])} leafnode connections (one per node account), "
                 f"in {msgs_in} / out {msgs_out} msgs; interest by subject kind {dict(kinds)}")

    async def varz(self, hub: Hub) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            return dict((await client.get(f"http://127.0.0.1:{hub.monitor_port}/varz")).json())

    def cpu(self, hub: Hub) -> float:
        assert hub.proc is not None
        t = psutil.Process(hub.proc.pid).cpu_times()
        return float(t.user + t.system)

    async def hub_load(self, what: str, seconds: float, work: Any = None) -> dict[str, Any]:
        """Messages in and out of the national hub and the busiest prefecture hub, and their CPU seconds, over
        `seconds` of idle (sources' heartbeats only) or while `work` runs."""
        assert self.national is not None
        watched = {"national": self.national, **self.hubs}
        before = {k: (await self.varz(h), self.cpu(h)) for k, h in watched.items()}
        t0 = time.monotonic()
        if work is not None:
            await work
        rest = seconds - (time.monotonic() - t0)
        if rest > 0:
            await asyncio.sleep(rest)
        took = time.monotonic() - t0
        out = {}
        for k, h in watched.items():
            v, c = await self.varz(h), self.cpu(h)
            msgs = v["out_msgs"] - before[k][0]["out_msgs"] + v["in_msgs"] - before[k][0]["in_msgs"]
            out[k] = {"msgs_per_s": round(msgs / took, 1), "cpu_share": round((c - before[k][1]) / took, 4),
                      "msgs": msgs, "cpu_s": round(c - before[k][1], 3), "seconds": round(took, 1),
                      "leafnodes": v.get("leafnodes"), "subscriptions": v.get("subscriptions")}
        self.results.setdefault("hub_load", {})[what] = out
        n = out["national"]
        self.say(f"hub load, {what}: national {n['msgs_per_s']} msgs/s (in+out), {n['cpu_share'] * 100:.1f} % of a "
                 f"core, {n['leafnodes']} leafnodes, {n['subscriptions']} subscriptions; prefecture hubs "
                 + ", ".join(f"{k} {v['msgs_per_s']}/s" for k, v in out.items() if k != "national"))
        return out

    async def national_leafz(self) -> dict[str, Any]:
        assert self.national is not None
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(f"http://127.0.0.1:{self.national.monitor_port}/leafz?subs=1")
            return dict(r.json())

    async def stop(self) -> None:
        for town in self.towns.values():
            if town.nc is not None:
                with contextlib.suppress(Exception):
                    await town.nc.close()
        for town in self.towns.values():
            if town.proc is not None and town.proc.poll() is None:
                town.proc.terminate()
        for town in self.towns.values():
            if town.proc is not None:
                try:
                    town.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(town.proc.pid, 9)
        for server, _task in self.servers:
            server.should_exit = True
        await asyncio.gather(*(t for _s, t in self.servers), return_exceptions=True)
        for hub in (*self.hubs.values(), self.national):
            if hub is not None:
                hub.stop()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


async def _true(value: bool) -> bool:
    return value


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))


async def main(args: argparse.Namespace) -> int:
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.say(f"{args.towns} towns in {len(bench.prefs)} prefectures: "
                  + "; ".join(f"{p}: {', '.join(ns)}" for p, ns in bench.prefs.items()))
        await bench.start()
        await bench.link()
        for phase in (bench.propagation, bench.memory, bench.hub_view,
                      lambda: bench.hub_load("idle (sources' heartbeats)", 20), bench.cut, bench.removal):
            try:
                await phase()
            except Exception as exc:  # noqa: BLE001 - the other phases still run; the figures say what failed
                bench.say(f"phase failed: {exc!r}")
                bench.results.setdefault("failed", []).append(repr(exc))
            if args.json:
                write_json(Path(args.json), bench.results)
    finally:
        await bench.stop()
    bench.results["meta"] = {"towns": args.towns, "prefectures": len(bench.prefs), "python": platform.python_version(),
                             "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB",
                             "commit": commit(),
                             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                             "wall_seconds": round(time.monotonic() - started)}
    if args.json:
        write_json(Path(args.json), bench.results)
    if bench.results.get("failed"):
        bench.say("goals met: no (a phase failed)")
        return 1
    prop = bench.results["propagation"]["rows"]
    ok = all(r["p99"] <= 1000 and not r["missing"] for r in prop.values())
    cut = bench.results["cut"]
    ok = ok and cut["complete"] and (cut["catch_up_seconds_max"] or 1e9) <= 120
    ok = ok and bench.results["removal"]["complete"]
    bench.say(f"goals met: {ok}")
    return 0 if ok else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.federation", description=__doc__.splitlines()[0])
    p.add_argument("--run-node", default="", help=argparse.SUPPRESS)
    p.add_argument("--towns", type=int, default=20,
                   help=f"how many towns (at most {sum(map(len, PREFECTURES.values()))})")
    p.add_argument("--origins", type=int, default=5, help="towns that publish for the propagation figures")
    p.add_argument("--rounds", type=int, default=4, help="events of each kind per origin")
    p.add_argument("--hour-events", type=int, default=10_000,
                   help="events a busy town publishes during the cut (its hour: see bench/README.md)")
    p.add_argument("--cut-seconds", type=float, default=60.0, help="how long the prefecture hub is down")
    p.add_argument("--cut-prefecture", default="saitama")
    p.add_argument("--catchup-timeout", type=float, default=300.0)
    p.add_argument("--remove", default="kamogawa", help="the node removed at the end")
    p.add_argument("--cache-seconds", type=int, default=30, help="the nodes' trust cache (the default node: 300)")
    p.add_argument("--start-batch", type=int, default=4, help="nodes started at once")
    p.add_argument("--start-timeout", type=float, default=300.0)
    p.add_argument("--json", default="", help="write the figures here too")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    return p.parse_args(argv)


if __name__ == "__main__":
    ns = parse()
    if ns.run_node:
        sys.exit(run_node(ns.run_node))
    sys.exit(asyncio.run(main(ns)))
