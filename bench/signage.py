"""200 simulated screens on one node: `python -m bench.signage [--screens 200] [--rounds 10] [--plays 20000]`.

In one run, on one freshly started nats-server and a signage service (`python -m services.signage`, a separate
process, SQLite in a temp dir):
  1. baseline: raw JetStream publish_async/s of plays-sized messages into a throwaway stream (bench.taps's baseline);
  2. emergency: staff send `emergency.send` to every screen; each simulated screen (its own NATS connection with its
     own inbox prefix, as the player connects) notes when `push.emergency` arrives; p50/p99 over screens × rounds
     (the target: on screen within 2 s, p99); cleared between rounds;
  3. schedule change: staff replace a playlist (`playlists.put`); each screen, told by `push.changed`, syncs and
     notes when the manifest with the new version is in its hands; p50/p99 over screens × rounds;
  4. proof of play: the screens publish `--plays` plays into JetStream (publish_async, Nats-Msg-Id = play id); the
     time until the service has counted all of them gives plays ingested/s, beside the raw JetStream figure.
The screens are plain nats-py clients speaking the protocol of towntip/kernel/contracts/signage.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from PIL import Image

from bench.taps import Node, bench_jetstream, log, machine, percentile
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts.actor import Actor

NODE = "bench"
TARGET_EMERGENCY_P99_S = 2.0
STAFF = Actor(user_id="bench-staff-01", global_handle=f"clerk@{NODE}", display_name="職員", roles=("staff",))
CHIEF = Actor(user_id="bench-staff-02", global_handle=f"chief@{NODE}", display_name="係長", roles=("staff",))


class Screen:
    """One simulated screen: hears the pushes, syncs on `changed`, notes when each thing reached it."""

    def __init__(self, name: str, nc: NATS) -> None:
        self.name, self.nc = name, nc
        self.emergencies: dict[str, float] = {}
        self.versions: dict[str, float] = {}  # manifest version -> when it arrived
        self.syncing = asyncio.Lock()

    async def start(self) -> None:
        await self.nc.subscribe(c.push_emergency(NODE), cb=self._emergency)
        await self.nc.subscribe(c.push_changed(NODE), cb=self._changed)

    async def _emergency(self, msg: Any) -> None:
        em = c.Emergency.model_validate_json(msg.data)
        if not em.cleared:
            self.emergencies.setdefault(em.id, time.perf_counter())

    async def _changed(self, msg: Any) -> None:
        asyncio.get_running_loop().create_task(self.sync())

    async def sync(self) -> None:
        async with self.syncing:
            reply = await self.nc.request(c.sync_subject(NODE, self.name), b"{}", timeout=10)
            got = c.SyncReply.model_validate_json(reply.data)
            self.versions.setdefault(",".join(sorted(p.id + p.name for p in got.playlists)), time.perf_counter())


async def call(nc: NATS, endpoint: str, payload: Any, timeout: float = 10.0) -> Any:
    return await rpc.call(nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=timeout)


async def start_signage(node: Node, nc: NATS, timeout: float = 60.0) -> None:
    (node.workdir / "data").mkdir(parents=True, exist_ok=True)
    proc = node.spawn("signage", "services.signage", node.env("signage"))
    node.more_points.append(proc)  # stopped with the node's other processes
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"signage service exited with {proc.returncode}; see {node.logs['signage']}")
        try:
            await call(nc, c.EP_SCREEN_LIST, c.ScreenListQuery(), timeout=2.0)
            return
        except errors.ServiceError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def an_item(nc: NATS) -> str:
    img = Image.new("RGB", (640, 360), (11, 110, 79))
    out = io.BytesIO()
    img.save(out, "JPEG")
    upload_id = str(uuid.uuid4())
    await call(
        nc,
        c.EP_UPLOAD_PART,
        c.UploadPart(actor=STAFF, upload_id=upload_id, seq=0, data_b64=base64.b64encode(out.getvalue()).decode()),
    )
    item = await call(
        nc,
        c.EP_CONTENT_CREATE,
        c.ContentCreate(
            actor=STAFF, upload_id=upload_id, parts=1, title="bench", valid_from=datetime.now(UTC) - timedelta(hours=1)
        ),
    )
    await call(nc, c.EP_CONTENT_APPROVE, c.ItemAction(actor=CHIEF, item_id=item["id"]))
    return str(item["id"])


def figures(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": _ms(percentile(ordered, 50)),
        "p99_ms": _ms(percentile(ordered, 99)),
        "max_ms": _ms(ordered[-1] if ordered else None),
    }


def _ms(s: float | None) -> float | None:
    return None if s is None else s * 1000


async def wait_until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.01)
    return bool(check())


async def emergency_rounds(nc: NATS, screens: list[Screen], rounds: int) -> dict[str, Any]:
    delays: list[float] = []
    missed = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        em = await call(nc, c.EP_EMERGENCY_SEND, c.EmergencySend(actor=STAFF, title="bench", body="bench"))
        await wait_until(lambda: all(em["id"] in s.emergencies for s in screens), 10)  # noqa: B023 (awaited here)
        for s in screens:
            if em["id"] in s.emergencies:
                delays.append(s.emergencies[em["id"]] - t0)
            else:
                missed += 1
        await call(nc, c.EP_EMERGENCY_CLEAR, c.EmergencyAction(actor=STAFF, id=em["id"]))
        await asyncio.sleep(0.2)
    return figures(delays) | {"missed": missed}


async def schedule_rounds(nc: NATS, screens: list[Screen], item: str, rounds: int) -> dict[str, Any]:
    delays: list[float] = []
    missed = 0
    playlist_id = str(uuid.uuid4())
    for r in range(rounds):
        name = f"bench-{r}"
        t0 = time.perf_counter()
        put = c.PlaylistPut(
            actor=STAFF,
            id=playlist_id if r else None,
            name=name,
            entries=(c.PlaylistEntry(item_id=item, duration_s=10 + r),),
        )
        got = await call(nc, c.EP_PLAYLIST_PUT, put)
        playlist_id = got["id"]
        key = playlist_id + name
        await wait_until(lambda: all(key in s.versions for s in screens), 20)  # noqa: B023 (awaited here)
        for s in screens:
            if key in s.versions:
                delays.append(s.versions[key] - t0)
            else:
                missed += 1
        await asyncio.sleep(0.3)
    return figures(delays) | {"missed": missed}


async def plays_ingest(nc: NATS, screens: list[Screen], item: str, n: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    since = now - timedelta(hours=1)
    t0 = time.perf_counter()
    futs = []
    for i in range(n):
        s = screens[i % len(screens)]
        pid = str(uuid.uuid4())
        body = c.Play(play_id=pid, item_id=item, screen=s.name, started_at=now, ended_at=now + timedelta(seconds=10))
        futs.append(
            await s.nc.jetstream().publish_async(
                c.plays_subject(NODE, s.name), body.model_dump_json().encode(), headers={subjects.HDR_MSG_ID: pid}
            )
        )
    await asyncio.wait_for(asyncio.gather(*futs), timeout=300)
    published = time.perf_counter() - t0

    async def counted() -> int:
        got = await call(nc, c.EP_PLAYS_SUMMARY, c.PlaysQuery(since=since, until=now + timedelta(hours=1)))
        return sum(r["plays"] for r in got["rows"])

    while (done := await counted()) < n:
        await asyncio.sleep(0.2)
        if time.perf_counter() - t0 > 600:
            break
    elapsed = time.perf_counter() - t0
    return {"plays": n, "counted": done, "published_s": published, "seconds": elapsed, "per_s": done / elapsed}


async def amain(args: argparse.Namespace) -> int:
    mach = machine()
    with tempfile.TemporaryDirectory(prefix="bench-signage-") as tmp:
        work = Path(tmp)
        node = Node(workdir=work, database_url=f"sqlite+aiosqlite:///{work}/signage.sqlite3", schema="")
        node.start_nats()
        assert node.nats is not None
        try:
            log("baseline: raw JetStream publish")
            raw = await bench_jetstream(node.nats.url, args.plays)
            nc = await nats.connect(node.nats.url)
            await start_signage(node, nc)
            log(f"registering and connecting {args.screens} screens")
            screens = []
            for i in range(args.screens):
                name = f"scr-{i:03d}"
                await call(nc, c.EP_ADMIN_SCREEN_ENROLLED, c.ScreenRegister(name=name, groups=("bench",)))
                conn = await nats.connect(node.nats.url, inbox_prefix=c.screen_inbox_prefix(name))
                screens.append(Screen(name, conn))
            for s in screens:
                await s.start()
            item = await an_item(nc)
            log("emergency rounds")
            emergency = await emergency_rounds(nc, screens, args.rounds)
            log("schedule rounds")
            schedule = await schedule_rounds(nc, screens, item, args.rounds)
            log("plays")
            plays = await plays_ingest(nc, screens, item, args.plays)
            for s in screens:
                await s.nc.close()
            await nc.close()
        finally:
            node.stop()
    report(mach, args, raw, emergency, schedule, plays)
    return 0 if (emergency["p99_ms"] or 1e9) <= TARGET_EMERGENCY_P99_S * 1000 else 1


def report(
    mach: dict[str, Any],
    args: argparse.Namespace,
    raw: dict[str, Any],
    emergency: dict[str, Any],
    schedule: dict[str, Any],
    plays: dict[str, Any],
) -> None:
    print(f"\nbench.signage: {args.screens} screens, {args.rounds} rounds, SQLite; machine: {mach}")
    print(f"  raw JetStream publish_async (baseline): {raw['per_s']:,.0f} msg/s")
    print(
        f"  emergency to every screen: p50 {emergency['p50_ms']:.1f} ms, p99 {emergency['p99_ms']:.1f} ms, "
        f"max {emergency['max_ms']:.1f} ms over {emergency['n']} deliveries, missed {emergency['missed']} "
        f"(target p99 <= {TARGET_EMERGENCY_P99_S * 1000:.0f} ms)"
    )
    print(
        f"  schedule change to every screen's manifest: p50 {schedule['p50_ms']:.1f} ms, p99 "
        f"{schedule['p99_ms']:.1f} ms, max {schedule['max_ms']:.1f} ms over {schedule['n']}, missed "
        f"{schedule['missed']}"
    )
    print(
        f"  plays ingested: {plays['counted']:,} of {plays['plays']:,} in {plays['seconds']:.1f} s = "
        f"{plays['per_s']:,.0f} plays/s ({plays['per_s'] / raw['per_s']:.1%} of raw JetStream publish)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.signage", description=__doc__.splitlines()[0])
    p.add_argument("--screens", type=int, default=200)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--plays", type=int, default=20_000)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
