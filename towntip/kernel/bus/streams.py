"""JetStream streams of a node, provisioned idempotently by whoever needs them first (service or supervisor)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import NotFoundError, ServiceUnavailableError

from towntip.kernel.bus import subjects
from towntip.kernel.settings import BusSettings

DAY = 24 * 3600.0
# Only taps are kept: heartbeats are core NATS (the latest per terminal is in the points service's database), so
# they neither fill the stream nor reach the tap consumer.
EDGE_KINDS = ("tap",)
MAX_EDGE_BYTES = 8 * 1024  # the stream refuses anything larger from a device


def evt_stream_config(node: str, service: str) -> StreamConfig:
    """A service's facts. Kept 30 days; Nats-Msg-Id dedup over 10 minutes covers relay restarts."""
    return StreamConfig(
        name=subjects.evt_stream(node, service),
        subjects=[subjects.evt_all(node, service)],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=30 * DAY,
        duplicate_window=600.0,
        discard=DiscardPolicy.OLD,
    )


def edge_stream_config(node: str) -> StreamConfig:
    """What devices send. Dedup here is only a first line: the consuming service keeps the tap ids for ever."""
    return StreamConfig(
        name=subjects.edge_stream(node),
        subjects=[subjects.edge_kind(node, kind) for kind in EDGE_KINDS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=14 * DAY,
        duplicate_window=600.0,
        max_msg_size=MAX_EDGE_BYTES,
        discard=DiscardPolicy.OLD,
    )


def dlq_stream_config(node: str) -> StreamConfig:
    """Poison messages with their error, for an operator to read and replay. Kept 90 days."""
    return StreamConfig(
        name=subjects.dlq_stream(node),
        subjects=[f"dlq.{node}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=90 * DAY,
        duplicate_window=600.0,
    )


def stream_replicas() -> int:
    """TOWNTIP_STREAM_REPLICAS of this process (1 unless the node runs on a NATS cluster), read when asked."""
    return BusSettings().stream_replicas


async def ensure_stream(js: JetStreamContext, config: StreamConfig, *, replicas: int | None = None) -> None:
    """Create or update a stream. Its copies: `replicas`, else the config's own, else TOWNTIP_STREAM_REPLICAS;
    the consumers made on it inherit the stream's (they set none of their own: kernel.bus.consumer)."""
    name = config.name
    if name is None:
        raise ValueError("a stream's config needs its name")
    if replicas is not None or not config.num_replicas:
        config = dataclasses.replace(config, num_replicas=replicas or stream_replicas())
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)


async def ensure_node_streams(js: JetStreamContext, node: str, services: tuple[str, ...] = (), *,
                              patience: float = 30.0, replicas: int | None = None) -> None:
    """The edge and dead-letter streams of a node, and the event stream of each named service.

    A service starting while the nats-server restarts finds JetStream not answering for a moment: it asks again
    for up to `patience` seconds instead of failing its start."""
    deadline = time.monotonic() + patience
    while True:
        try:
            await ensure_stream(js, edge_stream_config(node), replicas=replicas)
            await ensure_stream(js, dlq_stream_config(node), replicas=replicas)
            for service in services:
                await ensure_stream(js, evt_stream_config(node, service), replicas=replicas)
            return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def peer_source(node: str, peer: str, service: str) -> StreamSource:
    """A peer node's event stream of one service, read through the hub with the peer's JetStream domain and
    delivered on this pair's own prefix (what the hub's accounts let through: towntip/node/hub.py)."""
    return StreamSource(name=subjects.evt_stream(peer, service), filter_subject=subjects.evt_all(peer, service),
                        external=ExternalStream(api=subjects.js_api(peer),
                                                deliver=subjects.source_deliver(node, peer)))


def fed_stream_config(node: str, sources: list[StreamSource], *, own: str | None = None) -> StreamConfig:
    """FED_<NODE> (identity's), or FED_<NODE>_<OWN> of service `own`: copies of peers' events this node has asked
    for. JetStream keeps each source's position, so a node cut off from a peer catches up when the link returns.
    Its own subject takes nothing."""
    name = subjects.fed_service_stream(node, own) if own else subjects.fed_stream(node)
    subject = subjects.fed_service_in(node, own) if own else f"fed.{node}.in"
    return StreamConfig(
        name=name, subjects=[subject], sources=sources or None,
        retention=RetentionPolicy.LIMITS, storage=StorageType.FILE, max_age=30 * DAY, duplicate_window=600.0,
    )


async def ensure_peer_sources(js: JetStreamContext, node: str, peers: set[str], service: str, *,
                              own: bool = False) -> list[str]:
    """Make FED_<node> (or with `own`, the service's own FED_<node>_<SERVICE>) source `service`'s events of every
    peer in `peers` (adding, never removing); returns the peers added. Idempotent; several instances of one service
    may call it at once, each with its own peers: each update writes the whole source list, so one may drop
    another's new source, and each caller reads the list again after its update and adds its peers once more until
    they are there. Two services must not share a stream (the other would not know to add them back); hence `own`."""
    name = subjects.fed_service_stream(node, service) if own else subjects.fed_stream(node)
    added: list[str] = []
    for attempt in range(6):
        exists = True
        try:
            info = await js.stream_info(name)
            sources = list(info.config.sources or [])
        except NotFoundError:
            exists, sources = False, []
        have = {s.name for s in sources}
        missing = [p for p in sorted(peers - {node}) if subjects.evt_stream(p, service) not in have]
        # A source set up before the per-pair delivery prefix is set up again with it (JetStream keeps its position).
        by_stream = {subjects.evt_stream(p, service): p for p in peers - {node}}
        current = [peer_source(node, by_stream[s.name], service) if s.name in by_stream else s for s in sources]
        stale = [s.name for s, c in zip(sources, current, strict=True) if _deliver(s) != _deliver(c)]
        if not (missing or stale or not exists):
            return added
        if attempt:
            await asyncio.sleep(0.05 * attempt)  # another instance's update came between our read and write
        added += [p for p in missing if p not in added]
        await ensure_stream(js, fed_stream_config(node, current + [peer_source(node, p, service) for p in missing],
                                                  own=service if own else None))
    raise RuntimeError(f"{name}: the sources of {sorted(peers)} did not hold after 6 updates")


def _deliver(source: StreamSource) -> tuple[str | None, str | None]:
    ext = source.external
    return (ext.api, ext.deliver) if ext else (None, None)
