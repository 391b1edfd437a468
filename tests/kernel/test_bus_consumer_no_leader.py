"""A consumer whose JetStream does not answer when it is made (a NATS cluster's new stream with no leader yet
answers 503; here a nats-server without JetStream, which no one answers) asks again until the service stops,
instead of ending its task and with it the process (what the cluster drill saw bookings' touch consumer do)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import nats
import pytest

from tests.support.bus import wait_for
from tests.support.bus_helpers import EffectHandler, make_engine, tables
from towntip.kernel import db
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.node.natsd import free_port, nats_server_binary, wait_for_port


async def test_a_consumer_waits_for_jetstream_instead_of_dying(database: tuple[str, str | None], tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    server = await asyncio.to_thread(subprocess.Popen, [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # no -js
    engine = await make_engine(*database)
    stop = asyncio.Event()
    nc = None
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        nc = await nats.connect(f"nats://127.0.0.1:{port}")
        consumer = IdempotentConsumer(
            nc=nc, js=nc.jetstream(timeout=1), sessions=db.sessionmaker(engine), tables=tables,
            handler=EffectHandler(),
            spec=ConsumerSpec(stream="WORK", durable="effects", filter_subject="work.>", service="demo",
                              node="testnode", fetch_timeout=0.3))
        with caplog.at_level(logging.WARNING, logger="towntip.kernel.bus.consumer"):
            task = asyncio.create_task(consumer.run(stop))

            async def asked_twice() -> bool:
                return sum("while making it" in r.getMessage() for r in caplog.records) >= 2

            await wait_for(asked_twice, "the consumer asking again", timeout=30)
            assert not task.done(), task
            stop.set()
            await asyncio.wait_for(task, 10)  # ends quietly once the service stops
    finally:
        stop.set()
        if nc is not None:
            await nc.close()
        await engine.dispose()
        server.terminate()
        server.wait(10)
