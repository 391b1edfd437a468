"""Idempotent consumers: redelivery applies once, poison messages reach the dead-letter stream, retries are bounded."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from tests.support.bus_helpers import EffectHandler, count_effects, make_engine, tables
from towntip.kernel import db
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.streams import dlq_stream_config, ensure_stream

STREAM = "WORK"


class Work:
    """A consumer on the WORK stream, stopped and its engine disposed whatever the test does."""

    def __init__(self) -> None:
        self.engine = None
        self.consumer = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def start(self, nc, database, *, duplicate_window: float = 120.0, max_deliver: int = 3,
                    ack_wait: float = 10.0):
        self.engine = await make_engine(*database)
        js = nc.jetstream()
        await ensure_stream(js, StreamConfig(name=STREAM, subjects=["work.>"], duplicate_window=duplicate_window))
        await ensure_stream(js, dlq_stream_config("testnode"))
        self.consumer = IdempotentConsumer(
            nc=nc, js=js, sessions=db.sessionmaker(self.engine), tables=tables, handler=EffectHandler(),
            spec=ConsumerSpec(stream=STREAM, durable="effects", filter_subject="work.>", service="demo",
                              node="testnode", max_deliver=max_deliver, backoff=(0.1,), ack_wait=ack_wait,
                              fetch_timeout=0.3),
        )
        self.task = asyncio.create_task(self.consumer.run(self.stop))
        return self.engine, js, self.consumer

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 5)
            except (TimeoutError, asyncio.CancelledError):
                pass
        if self.engine is not None:
            await self.engine.dispose()


@pytest.fixture
async def work(nc):
    w = Work()
    try:
        yield w
    finally:
        await w.close()


async def _until(predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _dlq(js) -> list:
    info = await js.stream_info(subjects.dlq_stream("testnode"))
    if info.state.messages == 0:
        return []
    sub = await js.pull_subscribe("dlq.testnode.>", stream=subjects.dlq_stream("testnode"))
    msgs = await sub.fetch(info.state.messages, timeout=2)
    await sub.unsubscribe()
    return msgs


async def test_same_event_stored_twice_is_applied_once(nc, database, work):
    # A duplicate window of 0.2 s lets the stream keep both copies, as after a device comes back days later.
    engine, js, consumer = await work.start(nc, database, duplicate_window=0.2)
    body = json.dumps({"key": "e-1", "amount": 7}).encode()
    await js.publish("work.a", body, headers={"Nats-Msg-Id": "e-1"})
    await asyncio.sleep(0.4)
    ack = await js.publish("work.a", body, headers={"Nats-Msg-Id": "e-1"})
    assert not ack.duplicate, "the stream must hold a second copy for this test to mean anything"
    await _until(lambda: _stat(consumer, "duplicates", 1))
    assert await count_effects(engine) == {"e-1": 7}
    assert consumer.stats.applied == 1


async def _stat(consumer, name: str, want: int) -> bool:
    return getattr(consumer.stats, name) >= want


async def test_redelivery_after_lost_ack_is_applied_once(nc, database, work):
    engine, js, consumer = await work.start(nc, database, ack_wait=1.0)
    deliveries: list[int] = []

    # The first ack of this consumer never reaches the server, as when the service dies right after its commit:
    # JetStream delivers the message again after ack_wait, and the inbox must recognise it.
    async def lose_first_ack(msg) -> None:
        deliveries.append(msg.metadata.num_delivered)
        if len(deliveries) == 1:
            return
        await msg.ack()

    consumer._ack = lose_first_ack  # the consumer acks through this seam
    await js.publish("work.b", json.dumps({"key": "e-2", "amount": 3}).encode(), headers={"Nats-Msg-Id": "e-2"})
    await _until(lambda: _stat(consumer, "duplicates", 1))
    assert await count_effects(engine) == {"e-2": 3}
    assert deliveries == [1, 2], "the message must have come back once"
    assert consumer.stats.applied == 1
    info = await js.consumer_info(STREAM, "effects")
    assert info.num_ack_pending == 0


async def test_poison_message_reaches_dead_letter_stream_with_its_error(nc, database, work):
    engine, js, consumer = await work.start(nc, database)
    inbox = nc.new_inbox()
    replies: list[Msg] = []

    async def on_reply(msg: Msg) -> None:
        replies.append(msg)

    await nc.subscribe(inbox, cb=on_reply)
    await js.publish("work.c", b"{not json", headers={"Nats-Msg-Id": "p-1", subjects.HDR_RESULT_TO: inbox})
    await js.publish("work.c", json.dumps({"key": "ok-1"}).encode(), headers={"Nats-Msg-Id": "ok-1"})
    await _until(lambda: _stat(consumer, "applied", 1))
    await _until(lambda: _stat(consumer, "dead_lettered", 1))
    dead = await _dlq(js)
    assert len(dead) == 1
    assert dead[0].data == b"{not json"
    assert dead[0].subject == "dlq.testnode.demo.effects"
    assert dead[0].headers[subjects.HDR_ERROR].startswith("not an effect")
    assert dead[0].headers[subjects.HDR_ORIGINAL_SUBJECT] == "work.c"
    assert await count_effects(engine) == {"ok-1": 1}
    await _until(lambda: _async_len(replies, 1))
    assert replies[0].headers[subjects.HDR_SERVICE_ERROR_CODE] == "400"


async def _async_len(items: list, n: int) -> bool:
    return len(items) >= n


async def test_passing_failure_is_retried_then_dead_lettered_and_spares_the_batch(nc, database, work):
    engine, js, consumer = await work.start(nc, database, max_deliver=3)
    for key in ("a-1", "fail-1", "a-2"):
        await js.publish("work.d", json.dumps({"key": key}).encode(), headers={"Nats-Msg-Id": key})
    await _until(lambda: _stat(consumer, "dead_lettered", 1))
    assert await count_effects(engine) == {"a-1": 1, "a-2": 1}
    dead = await _dlq(js)
    assert [json.loads(m.data)["key"] for m in dead] == ["fail-1"]
    assert "gave up after 3 deliveries" in dead[0].headers[subjects.HDR_ERROR]
    assert "ConnectionError" in dead[0].headers[subjects.HDR_ERROR]
    assert consumer.stats.retried == 2
