"""Idempotent JetStream consumers: a batch is applied in one transaction with its inbox rows.

What happens to a message:
- decoded and applied: its inbox row commits with the effect, then it is acked (and its outcome sent to the
  `Towntip-Result-To` subject if the sender asked). Delivered again later, the inbox says so: not applied twice.
- refused for good (`Rejected`: malformed, refers to nothing): published to the dead-letter stream with the
  reason in its headers, terminated, and the sender gets a NATS service error.
- failed for a passing reason (database down, timeout): nak'ed with a growing delay; after `max_deliver`
  deliveries it goes to the dead-letter stream too. A batch that fails is retried message by message, so one
  poison message does not hold back the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import ServiceUnavailableError
from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from towntip.kernel import db, metrics
from towntip.kernel.bus import subjects
from towntip.kernel.bus.endpoints import one_line
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import BusTables
from towntip.kernel.telemetry import extract_context, tracer
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")


class Rejected(Exception):
    """This message can never be applied: it goes to the dead-letter stream, and its sender hears why."""

    def __init__(self, reason: str, *, code: int = 400, body: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.body = body


def peer_event(msg: Msg, node: str, service: str) -> tuple[str, str, Any, Any]:
    """(id, peer, type, data) of another node's event on `service`, as sourced into this node's FED stream.
    Rejected when it is no envelope, arrived on another node's or service's subject (a node speaks only as itself),
    or is this node's own event come back."""
    try:
        env = json.loads(msg.data)
        key, peer, type_, data = env["id"], env["node"], env["type"], env["data"]
    except (ValueError, KeyError, TypeError):
        raise Rejected("not an event envelope") from None
    parts = msg.subject.split(".")
    if len(parts) != 4 or parts[0] != "evt" or parts[1] != peer or parts[2] != service:
        raise Rejected(f"event of {peer!r} arrived on {msg.subject!r}", code=403)
    if peer == node:
        raise Rejected("this node's own event came back", code=409)
    return key, peer, type_, data


def own_event(msg: Msg, node: str, service: str) -> tuple[str, str, Any, datetime]:
    """(id, type, data, time) of an event of `service` at this node, as another service of the node consumes it.
    Rejected when it is no envelope, names another node, arrived on another service's subject, or has a time
    without a zone."""
    try:
        env = json.loads(msg.data)
        key, origin, type_, data, at = env["id"], env["node"], env["type"], env["data"], env["time"]
        at = datetime.fromisoformat(at)
    except (ValueError, KeyError, TypeError):
        raise Rejected("not an event envelope") from None
    if origin != node or not msg.subject.startswith(f"evt.{node}.{service}."):
        raise Rejected(f"an event of {origin!r} arrived on {msg.subject!r}", code=403)
    if at.tzinfo is None:
        raise Rejected("the event's time carries no timezone")
    return key, type_, data, at


@dataclass
class Delivery(Generic[T]):
    msg: Msg
    key: str
    item: T
    duplicate: bool = False  # already applied (found in the inbox, or repeated inside the batch)


Outcome = BaseModel | dict[str, Any] | Rejected | None


class Handler(Protocol[T]):
    def decode(self, msg: Msg) -> tuple[str, T]:
        """Parse and validate (no I/O). Returns (idempotency key, item); raises Rejected."""

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[T]]) -> list[Outcome]:
        """Apply the non-duplicate deliveries in the caller's transaction; one outcome per delivery.

        Must not commit. A duplicate gets an outcome too (what the sender should hear), with no effect.
        """


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subject: str
    service: str
    node: str
    batch: int = 256
    max_deliver: int = 5
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    ack_wait: float = 10.0
    fetch_timeout: float = 1.0  # long poll while the stream is quiet
    # While messages flow: how long a fetch may wait to fill a batch. nats.py's fetch(n) waits for all n (or its
    # timeout) once nothing is ready at once, so a long timeout there would hold early messages back.
    linger: float = 0.005
    # Pullers on the one durable consumer, each fetching and applying its own batches: while one waits on the
    # database, the next batch is decoded and sent. Same keys in two batches at once are safe: the second claim
    # of an inbox row waits for the first transaction, then finds the key taken.
    concurrency: int = 1


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    batches: int = 0
    last_error: str = ""
    extra: dict[str, int] = field(default_factory=dict)


def _nothing() -> None:
    return None


class IdempotentConsumer(Generic[T]):
    def __init__(
        self,
        *,
        nc: NATS,
        js: JetStreamContext,
        sessions: async_sessionmaker[AsyncSession],
        tables: BusTables,
        spec: ConsumerSpec,
        handler: Handler[T],
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.nc = nc
        self.js = js
        self.sessions = sessions
        self.inbox = tables.inbox
        self.spec = spec
        self.handler = handler
        self.on_commit = on_commit
        # The inbox claim, the effect and its outbox events commit together. One attempt: a failed batch is retried
        # one delivery at a time below, then redelivered by JetStream (handlers may keep counters in memory).
        self.uow = UnitOfWork(sessions, on_commit=on_commit or _nothing, attempts=1)
        self.stats = ConsumerStats()
        self._tracer = tracer(f"towntip.{spec.service}")
        # Its lag is asked of JetStream and its stats read only when the metrics are scraped.
        metrics.of(spec.node, spec.service).watch_consumer(spec.durable, spec.stream, js, self.stats)

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.spec.ack_wait,
            # The server's bound sits above ours, so the consumer decides when a message is dead.
            max_deliver=self.spec.max_deliver + 3,
            max_ack_pending=self.spec.batch * 4 * max(1, self.spec.concurrency),
            filter_subject=self.spec.filter_subject,
        )

    async def run(self, stop: asyncio.Event) -> None:
        pullers = [asyncio.create_task(self._pull(stop), name=f"{self.spec.durable}-{i}")
                   for i in range(max(1, self.spec.concurrency))]
        try:
            await asyncio.gather(*pullers)
        finally:
            for task in pullers:
                task.cancel()
            await asyncio.gather(*pullers, return_exceptions=True)

    async def _subscribe(self, stop: asyncio.Event) -> JetStreamContext.PullSubscription | None:
        """The durable consumer, made or found. On a NATS cluster a stream made a moment ago (by this process or
        another) has no leader yet, and making its consumer answers 503: wait and ask again, as `_pull` does for
        a fetch, rather than let the task end the process (the cluster drill saw bookings' touch consumer die so at
        start). None once the service stops or the connection is closed."""
        while not stop.is_set():
            try:
                return await self.js.pull_subscribe(self.spec.filter_subject, durable=self.spec.durable,
                                                    stream=self.spec.stream, config=self.consumer_config())
            except (NoRespondersError, ServiceUnavailableError, NatsTimeout) as exc:
                if self.nc.is_closed:
                    return None
                log.warning("consumer %s: %s while making it; asking again", self.spec.durable, exc)
                await asyncio.sleep(0.5)
        return None

    async def _pull(self, stop: asyncio.Event) -> None:
        psub = await self._subscribe(stop)
        if psub is None:
            return
        quiet = True
        try:
            while not stop.is_set():
                try:
                    if quiet:
                        # Returns on the first message, then takes whatever else is already there.
                        first = await self._long_poll(psub, stop)
                        if first is None:
                            break
                        msgs = first
                        if self.spec.batch > 1:
                            with contextlib.suppress(NatsTimeout, TimeoutError):
                                msgs += await psub.fetch(self.spec.batch - 1, timeout=self.spec.linger)
                    else:
                        msgs = await psub.fetch(self.spec.batch, timeout=self.spec.linger)
                    quiet = False
                except (NatsTimeout, TimeoutError):
                    quiet = True
                    continue
                except (ConnectionClosedError, NoRespondersError, ServiceUnavailableError) as exc:
                    # ServiceUnavailable (503): on a NATS cluster the consumer has no leader for a moment after a
                    # server dies (it elects another); wait as for a lost connection (tests/node/test_cluster_faults).
                    if self.nc.is_closed:
                        return
                    log.warning("consumer %s: %s; waiting for the connection", self.spec.durable, exc)
                    await asyncio.sleep(0.5)
                    continue
                await self.process(msgs)
        finally:
            try:
                await psub.unsubscribe()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass

    async def _long_poll(self, psub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> list[Msg] | None:
        """The quiet stream's long poll (`fetch_timeout`), cut short when the service stops (None): a stopping
        service does not wait out the poll. A message the cancelled poll would have brought stays unacked and
        JetStream delivers it again (to this consumer's next run); one already fetched is returned and applied."""
        fetch = asyncio.ensure_future(psub.fetch(1, timeout=self.spec.fetch_timeout))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
            await asyncio.wait({fetch})  # never raises: the fetch's own outcome is read below
        if fetch.cancelled():
            return None
        return fetch.result()

    async def process(self, msgs: Sequence[Msg]) -> None:
        self.stats.batches += 1
        decoded: list[Delivery[T]] = []
        seen: set[str] = set()
        links = [trace.Link(trace.get_current_span(extract_context(m.headers)).get_span_context()) for m in msgs[:32]]
        with self._tracer.start_as_current_span(
            f"consume {self.spec.durable}", kind=trace.SpanKind.CONSUMER, links=links,
            attributes={"messaging.batch.message_count": len(msgs)},
        ):
            for msg in msgs:
                try:
                    key, item = self.handler.decode(msg)
                except Rejected as exc:
                    await self._dead_letter(msg, _fallback_key(msg), exc)
                    continue
                except Exception as exc:  # a decoder bug must not stop the consumer
                    log.exception("consumer %s: decode failed", self.spec.durable)
                    await self._dead_letter(msg, _fallback_key(msg), Rejected(f"undecodable: {exc.__class__.__name__}"))
                    continue
                decoded.append(Delivery(msg, key, item, duplicate=key in seen))
                seen.add(key)
            if not decoded:
                return
            try:
                await self._apply_and_settle(decoded)
            except Exception as exc:  # noqa: BLE001
                if len(decoded) == 1:
                    await self._failed(decoded[0], exc)
                    return
                log.warning("consumer %s: batch of %d failed (%s); retrying one by one",
                            self.spec.durable, len(decoded), exc.__class__.__name__)
                for delivery in decoded:
                    delivery.duplicate = False
                    try:
                        await self._apply_and_settle([delivery])
                    except Exception as one_exc:  # noqa: BLE001
                        await self._failed(delivery, one_exc)

    async def _apply_and_settle(self, deliveries: list[Delivery[T]]) -> None:
        async def change(session: AsyncSession, now: datetime) -> list[Outcome]:
            # Claim the keys: the inbox rows go in first (ON CONFLICT DO NOTHING), and a key that was not
            # inserted was applied before. One statement, decided by the primary key, whatever the planner knows.
            claims = [d for d in deliveries if not d.duplicate]
            if claims:
                now = utcnow()
                rows = [{"consumer": self.spec.durable, "message_id": k, "processed_at": now}
                        for k in sorted({d.key for d in claims})]  # one lock order for concurrent batches
                claimed = {r.message_id for r in await db.write_rows(session, [db.Rows(
                    self.inbox, rows,
                    conflict=lambda ins: ins.on_conflict_do_nothing(index_elements=["consumer", "message_id"]),
                    returning=(self.inbox.c.message_id,),
                )])}
                for d in claims:
                    if d.key not in claimed:
                        d.duplicate = True
            outcomes = await self.handler.apply(session, deliveries)
            if len(outcomes) != len(deliveries):
                raise RuntimeError("handler returned the wrong number of outcomes")
            refused = [
                d.key for d, o in zip(deliveries, outcomes, strict=True) if not d.duplicate and isinstance(o, Rejected)
            ]
            if refused:
                # Nothing was applied for these: no inbox row, so a corrected resend is judged afresh.
                await session.execute(
                    delete(self.inbox).where(
                        self.inbox.c.consumer == self.spec.durable, db.among(session, self.inbox.c.message_id, refused)
                    )
                )
            return outcomes

        outcomes = await self.uow.write(change)  # on_commit runs after the commit
        for d, outcome in zip(deliveries, outcomes, strict=True):
            if isinstance(outcome, Rejected):
                await self._dead_letter(d.msg, d.key, outcome)
                continue
            await self._ack(d.msg)
            if d.duplicate:
                self.stats.duplicates += 1
            else:
                self.stats.applied += 1
            await self._reply(d.msg, outcome)

    async def _ack(self, msg: Msg) -> None:
        await msg.ack()

    async def _failed(self, delivery: Delivery[T], exc: Exception) -> None:
        msg = delivery.msg
        n = msg.metadata.num_delivered if msg.metadata else 1
        self.stats.last_error = f"{exc.__class__.__name__}: {exc}"
        if n >= self.spec.max_deliver:
            log.error("consumer %s: %s failed %d times, dead-lettering: %s",
                      self.spec.durable, delivery.key, n, self.stats.last_error)
            await self._dead_letter(
                msg, delivery.key,
                Rejected(f"gave up after {n} deliveries: {exc.__class__.__name__}: {exc}", code=500),
            )
            return
        delay = self.spec.backoff[min(n - 1, len(self.spec.backoff) - 1)]
        log.warning("consumer %s: %s failed (delivery %d, retry in %.1fs): %s",
                    self.spec.durable, delivery.key, n, delay, self.stats.last_error)
        self.stats.retried += 1
        await msg.nak(delay=delay)

    async def _dead_letter(self, msg: Msg, key: str, rejection: Rejected) -> None:
        headers = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        n = msg.metadata.num_delivered if msg.metadata else 1
        headers.update({
            subjects.HDR_MSG_ID: f"dlq:{self.spec.durable}:{key}",
            subjects.HDR_ERROR: one_line(rejection.reason),
            subjects.HDR_ERROR_CODE: str(rejection.code),
            subjects.HDR_ORIGINAL_SUBJECT: msg.subject,
            subjects.HDR_DELIVERIES: str(n),
        })
        try:
            await self.js.publish(
                subjects.dlq(self.spec.node, self.spec.service, self.spec.durable), msg.data, headers=headers, timeout=5
            )
        except Exception as exc:  # noqa: BLE001 - keep the message; it comes back
            log.error("consumer %s: dead-letter publish failed (%s); will retry", self.spec.durable, exc)
            await msg.nak(delay=self.spec.backoff[-1])
            return
        await msg.term()
        self.stats.dead_lettered += 1
        await self._reply(msg, rejection)

    async def _reply(self, msg: Msg, outcome: Outcome) -> None:
        to = (msg.headers or {}).get(subjects.HDR_RESULT_TO)
        if not to or not _safe_reply_subject(to):
            return
        try:
            if isinstance(outcome, Rejected):
                await self.nc.publish(
                    to,
                    json.dumps(outcome.body or {}).encode(),
                    headers={
                        subjects.HDR_SERVICE_ERROR: one_line(outcome.reason),
                        subjects.HDR_SERVICE_ERROR_CODE: str(outcome.code),
                    },
                )
            elif isinstance(outcome, BaseModel):
                await self.nc.publish(to, outcome.model_dump_json().encode())
            elif outcome is not None:
                await self.nc.publish(to, json.dumps(outcome, default=str).encode())
        except Exception as exc:  # noqa: BLE001 - the outcome is a courtesy; the effect is committed
            log.info("consumer %s: could not send outcome to %s: %s", self.spec.durable, to, exc)


def _fallback_key(msg: Msg) -> str:
    hdr = (msg.headers or {}).get(subjects.HDR_MSG_ID)
    if hdr:
        return hdr[:200]
    seq = msg.metadata.sequence.stream if msg.metadata else 0
    return f"seq:{seq}"


def _safe_reply_subject(subject: str) -> bool:
    """Outcomes go only to inboxes: a sender cannot make a service publish into a stream or a service."""
    return subject.startswith("_INBOX.") and len(subject) <= 256 and " " not in subject
