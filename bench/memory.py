"""A whole node's memory: `python -m bench.memory [--layouts grouped one-per-service] [--gateway-workers N]`.

A node as `make run` starts it (`towntip node up`: its own nats-server, SQLite files, every service, the gateway
with its default workers), filled by `towntip demo seed`, with one resident who logs in through the portal; a few
page views (anonymous and My Page), then, once the node has settled, the resident memory (RSS, psutil) of every
process of the node: the supervisor, nats-server, the services (their host, or each its own process), the gateway
and its workers. The same run starts the node once per layout, one after the other, the old layout (one process
per service) as the baseline beside the embedded default (grouped).

Exit code 0 when the first layout's total (the default: grouped) is within issue 21's 600 MB. Everything listens
on 127.0.0.1; the nodes and their temp dirs are removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx
import psutil

from bench.portal import NODE, PW, log_in, towntip, wait_http, with_timeout_stop
from towntip.node.natsd import free_port

TARGET_MB = 600.0
PAGES = ("/", "/communities", "/events", "/themes", "/facilities")
MB = 2**20


def role(p: psutil.Process, root: psutil.Process) -> str:
    """What a process of the node is, from its command line."""
    if p.pid == root.pid:
        return "supervisor"
    try:
        line = " ".join(p.cmdline())
        parent = p.parent()
    except psutil.Error:
        return "?"
    if "nats-server" in line:
        return "nats-server"
    if "-m towntip.kernel.host" in line:
        return "services (host)"
    if "-m services." in line:
        return line.split("-m services.")[-1].split()[0]
    if "-m identity" in line:
        return "identity"
    if "-m gateway" in line:
        return "gateway"
    if parent is not None and "-m gateway" in " ".join(parent.cmdline()):
        return "gateway worker" if "spawn_main" in line else "gateway helper"
    return line[:40]


def sample(root: psutil.Process) -> list[tuple[str, int, float]]:
    """(role, pid, RSS MB) of the node's every process, the supervisor first."""
    rows = []
    for p in [root, *root.children(recursive=True)]:
        try:
            rows.append((role(p, root), p.pid, p.memory_info().rss / MB))
        except psutil.Error:
            continue
    return rows


def spawn(argv: list[str], out: Path) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    log = open(out, "wb")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True), log


async def measure(layout: str, gateway_workers: int, settle: float, keep: bool) -> list[tuple[str, int, float]]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-memory-{layout}-"))
    http_port, nats_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    argv = [sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())", "node", "up",
            "--node", NODE, "--data-dir", str(workdir / "var"), "--http-port", str(http_port),
            "--nats-port", str(nats_port), "--trace-export", "none", "--processes", layout]
    if gateway_workers:
        argv += ["--gateway-workers", str(gateway_workers)]
    node, log = spawn(argv, workdir / "node.out")
    try:
        await wait_http(f"{base}/healthz")
        operator = (workdir / "var" / "secrets" / "nats-operator-url").read_text().strip()
        towntip("demo", "seed", "--nats-url", operator, "--node", NODE)
        towntip("identity", "user", "add", "--handle", "hanako", "--email", "hanako@example.jp", "--display-name",
                "山田 花子", "--password-stdin", "--nats-url", operator, "--node", NODE, stdin=PW + "\n")
        cookie = {"Cookie": f"tt_session={await log_in(base)}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(3):  # every gateway worker likely renders each page once
                for path in PAGES:
                    r = await client.get(path)
                    assert r.status_code == 200, f"{path}: {r.status_code}"
                r = await client.get("/me", headers=cookie)
                assert r.status_code == 200, f"/me: {r.status_code}"
        await asyncio.sleep(settle)
        return sample(psutil.Process(node.pid))
    finally:
        with_timeout_stop(node)
        log.close()
        if keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def fold(rows: list[tuple[str, int, float]]) -> dict[str, tuple[int, float]]:
    """role -> (processes, MB)"""
    out: dict[str, tuple[int, float]] = {}
    for name, _pid, mb in rows:
        n, total = out.get(name, (0, 0.0))
        out[name] = (n + 1, total + mb)
    return out


def report(results: dict[str, list[tuple[str, int, float]]]) -> float:
    layouts = list(results)
    folded = {layout: fold(rows) for layout, rows in results.items()}
    names: list[str] = []
    for layout in layouts:
        names += [n for n in folded[layout] if n not in names]
    print(f"{'RSS MB (processes)':24}" + "".join(f" | {layout:>18}" for layout in layouts))
    print("-" * (24 + 21 * len(layouts)))
    for name in names:
        cells = []
        for layout in layouts:
            n, mb = folded[layout].get(name, (0, 0.0))
            cells.append(f"{mb:11.0f} ({n:2d} p)" if n else f"{'—':>18}")
        print(f"{name:24}" + "".join(f" | {c:>18}" for c in cells))
    totals = {layout: sum(mb for _n, _p, mb in results[layout]) for layout in layouts}
    print(f"{'total':24}" + "".join(f" | {totals[layout]:11.0f} ({len(results[layout]):2d} p)" for layout in layouts))
    first = layouts[0]
    ok = totals[first] <= TARGET_MB
    print(f"{first}: whole node {totals[first]:.0f} MB <= {TARGET_MB:.0f} MB? {'PASS' if ok else 'FAIL'}")
    return totals[first]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    p.add_argument("--layouts", nargs="+", default=["grouped", "one-per-service"],
                   choices=["grouped", "one-per-service"], help="the first one is judged (default: %(default)s)")
    p.add_argument("--gateway-workers", type=int, default=0, help="(default: the node's own: one per core)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds between the load and the sample")
    p.add_argument("--keep", action="store_true", help="keep the nodes' temp dirs (their logs)")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    print(f"# bench.memory: node {NODE} on SQLite, every service; {platform.processor() or platform.machine()}, "
          f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB RAM, Python "
          f"{platform.python_version()}; gateway workers: {args.gateway_workers or 'default'}")
    results = {}
    for layout in args.layouts:
        started = time.monotonic()
        results[layout] = await measure(layout, args.gateway_workers, args.settle, args.keep)
        print(f"# {layout}: measured in {time.monotonic() - started:.0f} s")
    total = report(results)
    return 0 if total <= TARGET_MB else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    os.environ.pop("TOWNTIP_GATEWAY_WORKERS", None)
    sys.exit(main())
