"""A node on a three-server NATS cluster under faults (the short version of `python -m bench.cluster`).

Three nats-servers with R3 streams, PostgreSQL, two instances of identity and points and two gateways (the long
version runs every service). Under load, each fault once: kill -9 of a nats-server, of one instance of each
service, of a gateway, and PostgreSQL's connections ended. Then every tap a terminal saw acknowledged is in the
ledger exactly once, nothing else is, and the postings sum to zero.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import nats
import pytest

from bench.cluster import PG_URL, drill, reconciled, report
from bench.taps import pg_reachable
from towntip.kernel.bus import subjects
from towntip.kernel.bus.inboxes import service_inbox_prefix
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.node.cluster import ClusterNode
from towntip.node.natsauth import service_user
from towntip.node.natsd import nats_server_binary

# It starts three nats-servers and eight Python processes and kills them: one at a time beside the other tests
# that start whole nodes.
pytestmark = [pytest.mark.xdist_group("supervisor"), pytest.mark.slow, pytest.mark.timeout(240)]


async def _need_postgres() -> None:
    why = await pg_reachable(PG_URL)
    if why is not None:
        pytest.skip(f"PostgreSQL is needed for the cluster drill: {why}")


async def test_streams_and_consumers_are_replicated_on_three_servers(tmp_path: Path) -> None:
    nats_server_binary()
    node = ClusterNode("rthree", tmp_path / "node", "postgresql+asyncpg://unused/none", services=("points",))
    node.prepare()
    await asyncio.to_thread(node.start_nats)
    try:
        nc = await nats.connect(node.operator_urls, connect_timeout=3)
        try:
            js = nc.jetstream(timeout=5)
            for _ in range(60):  # the cluster elects its JetStream meta leader first
                try:
                    await ensure_node_streams(js, "rthree", ("points",), patience=1.0, replicas=3)
                    break
                except Exception:  # noqa: BLE001 - not ready yet
                    await asyncio.sleep(0.5)
            info = await js.stream_info(subjects.edge_stream("rthree"))
            assert info.config.num_replicas == 3
            assert info.cluster is not None and len(info.cluster.replicas or []) == 2  # the leader and two copies
            await js.pull_subscribe(subjects.edge_kind("rthree", "tap"), durable="probe",
                                    stream=subjects.edge_stream("rthree"))
            consumer = await js.consumer_info(subjects.edge_stream("rthree"), "probe")
            assert consumer.cluster is not None and len(consumer.cluster.replicas or []) == 2  # inherited R3
        finally:
            await nc.close()
        # Every server has the embedded node's users and permissions: a service may not announce another's events.
        assert node.users is not None
        for server in node.nats:
            assert node.users.render() in server.config_path.read_text()
        refused: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            refused.append(exc)

        svc = await nats.connect(node.urls(service_user("points"))[2], error_cb=on_error, connect_timeout=3,
                                 inbox_prefix=service_inbox_prefix("points"))
        try:
            await svc.publish(subjects.evt("rthree", "identity", "user_added"), b"{}")
            await svc.flush()
            for _ in range(50):
                if refused:
                    break
                await asyncio.sleep(0.05)
            assert refused and "permissions violation" in str(refused[0]).lower(), refused
        finally:
            await svc.close()
    finally:
        await asyncio.to_thread(node.stop)


async def test_each_fault_once_loses_and_doubles_nothing() -> None:
    await _need_postgres()
    with tempfile.TemporaryDirectory(prefix="towntip-drill-") as tmp:
        result = await drill(rounds=1, hold=3.0, calm=3.0, taps_per_s=6.0, page_clients=1,
                             services=("identity", "points"), timeout=90.0, workdir=Path(tmp))
    print(report(result))
    r = result.ledger
    assert r["acked"] > 20, r
    assert reconciled(r), report(result)
    assert r["recorded"] == r["acked"], "every acknowledged tap is credited once, and nothing else"
    assert not result.dead, f"processes died on their own: {result.dead}"
    assert [w.fault for w in result.windows] == ["nats", "services", "gateway", "postgres"]
    calm = result.figures[0]
    assert all(bad == 0 for _, bad in calm.values()), f"errors with no fault: {calm}"
