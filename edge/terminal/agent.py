"""The terminal agent: card reads in, taps out to the node over JetStream, outcomes back on its own inbox.

For each read: validate (a bad IDm is logged and refused), debounce (the same card again within
`debounce` seconds counts once), spool (durable before anything is sent), publish to
edge.<node>.<terminal>.tap with Nats-Msg-Id = tap.key and Towntip-Result-To = this run's inbox, mark
accepted on the PubAck, mark settled when the points service answers. A sender task (re)publishes pending
taps at start, after each new tap and after a reconnect, backing off while JetStream is unreachable.

Outcomes are core NATS messages to this run's inbox: taps accepted by an earlier run whose outcome was not
heard stay 'accepted' in the spool (they are durable in the stream and will be credited; the terminal just
did not hear it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import trace
from pydantic import ValidationError

from edge.readers.base import CardRead, CardReader, utcnow
from edge.terminal.spool import CREDITED, DUPLICATE, REJECTED, SETTLED, Settlement, Spool, new_tap_id
from towntip.kernel.bus import subjects
from towntip.kernel.contracts.points import Role, Tap, TapOutcome
from towntip.kernel.errors import describe_validation_error
from towntip.kernel.telemetry import inject_headers, tracer

log = logging.getLogger(__name__)

BATCH = 256  # taps published concurrently per round


@dataclass(frozen=True)
class Feedback:
    """What a terminal shows or beeps: kind is accepted | ignored | refused | credited | duplicate | rejected."""

    kind: str
    idm: str
    tap_id: str | None = None
    detail: str = ""


class TerminalAgent:
    def __init__(
        self,
        nc: NATS,
        node: str,
        terminal_id: str,
        spool: Spool,
        event: str,
        role: Role = "participant",
        *,
        debounce: float = 3.0,
        publish_timeout: float = 2.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        feedback: Callable[[Feedback], None] | None = None,
    ) -> None:
        self.nc = nc
        self.node = node
        self.terminal_id = terminal_id
        self.spool = spool
        self.event = event
        self.role: Role = role
        self.debounce = debounce
        self.publish_timeout = publish_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.feedback = feedback
        self.subject = subjects.edge(node, terminal_id, "tap")
        self.js = nc.jetstream(timeout=publish_timeout)
        self.result_to: str = ""
        self._sub = None
        self._sender: asyncio.Task[None] | None = None
        self._settler: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # new taps or connection back: send now
        self._reconnected = asyncio.Event()  # cuts a backoff short
        self._outcomes: list[Settlement] = []
        self._outcomes_ready = asyncio.Event()
        self._progress = asyncio.Event()  # something was accepted or settled
        self._waiting: set[str] = set()  # taps this run is responsible for and that are not settled yet
        self._last_counted: dict[str, datetime] = {}
        self._tracer = tracer("towntip.edge")
        self.published = 0  # publish attempts acknowledged in this run

    # --- life cycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to the result inbox, then re-send whatever the spool still holds as pending."""
        if self._sender is not None:
            return
        self.result_to = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self.result_to, cb=self._on_result)
        self._waiting.update(t.tap_id for t in self.spool.pending())
        self._settler = asyncio.create_task(self._settle_loop(), name=f"settle-{self.terminal_id}")
        self._sender = asyncio.create_task(self._send_loop(), name=f"send-{self.terminal_id}")
        self._wake.set()

    async def stop(self) -> None:
        for task in (self._sender, self._settler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sender = self._settler = None
        if self._outcomes:
            self._flush_outcomes()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def __aenter__(self) -> TerminalAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def on_reconnected(self) -> None:
        """Pass as nats.connect(reconnected_cb=agent.on_reconnected): pending taps go out at once."""
        self.connection_back()

    def connection_back(self) -> None:
        self._reconnected.set()
        self._wake.set()

    # --- reads -> taps -------------------------------------------------------------------------------------
    async def run(self, reader: CardReader) -> int:
        """Take every read of the reader until it ends; returns how many taps were spooled."""
        n = 0
        async for read in reader:
            if await self.tap(read) is not None:
                n += 1
        return n

    async def tap(self, read: CardRead | str, *, debounce: bool = True) -> Tap | None:
        """One touch: returns the spooled Tap, or None if it was refused (bad IDm) or merged (debounce)."""
        if isinstance(read, str):
            read = CardRead(idm=read, read_at=utcnow())
        tap = self._make_tap(read)
        if tap is None:
            return None
        if debounce and self._debounced(tap.card_idm, read.read_at):
            log.info("card %s touched again within %.1fs: counted once", _short(tap.card_idm), self.debounce)
            self._tell(Feedback("ignored", tap.card_idm, detail="touched again"))
            return None
        self.spool.add(tap)  # durable before it is sent
        self._waiting.add(tap.tap_id)
        self._tell(Feedback("accepted", tap.card_idm, tap.tap_id))
        self._wake.set()
        return tap

    async def tap_many(self, reads: Sequence[CardRead | str]) -> list[Tap]:
        """Several distinct touches spooled in one transaction (the simulator): no debounce."""
        taps = []
        for read in reads:
            if isinstance(read, str):
                read = CardRead(idm=read, read_at=utcnow())
            tap = self._make_tap(read)
            if tap is not None:
                taps.append(tap)
        if taps:
            self.spool.add_many(taps)
            self._waiting.update(t.tap_id for t in taps)
            self._wake.set()
        return taps

    def _make_tap(self, read: CardRead) -> Tap | None:
        try:
            return Tap(
                tap_id=new_tap_id(), terminal_id=self.terminal_id, card_idm=read.idm, event=self.event,
                role=self.role, tapped_at=read.read_at,
            )
        except ValidationError as exc:
            reason = describe_validation_error(exc)
            log.warning("refused a read from the card reader (%r): %s", read.idm[:40], reason)
            self._tell(Feedback("refused", str(read.idm)[:40], detail=reason))
            return None

    def _debounced(self, idm: str, at: datetime) -> bool:
        if self.debounce <= 0:
            return False
        last = self._last_counted.get(idm)
        if last is not None and abs((at - last).total_seconds()) < self.debounce:
            return True
        self._last_counted[idm] = at
        if len(self._last_counted) > 4096:  # forget touches long past
            horizon = at.timestamp() - self.debounce
            self._last_counted = {k: v for k, v in self._last_counted.items() if v.timestamp() >= horizon}
        return False

    def _tell(self, fb: Feedback) -> None:
        if self.feedback is not None:
            try:
                self.feedback(fb)
            except Exception:  # noqa: BLE001 - a broken beeper must not stop the terminal
                log.exception("feedback callback failed")

    # --- sending -------------------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        backoff = self.backoff_initial
        while True:
            batch = self.spool.pending(limit=BATCH)
            if not batch:
                self._wake.clear()
                if not self.spool.queue_length():
                    await self._wake.wait()
                continue
            results = await asyncio.gather(*(self._publish(s.tap) for s in batch), return_exceptions=True)
            accepted: list[tuple[str, int | None]] = []
            failed: list[str] = []
            unreachable = None
            for spooled, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append(spooled.tap_id)
                    if _unreachable(result):
                        unreachable = result
                    else:
                        log.warning("tap %s not accepted: %r", spooled.tap_id, result)
                else:
                    accepted.append((spooled.tap_id, result))
            if accepted:
                self.spool.mark_accepted(accepted)
                self.published += len(accepted)
                self._progress.set()
            if failed:
                self.spool.mark_attempt_failed(failed)
                why = f"{type(unreachable).__name__}" if unreachable else "refused"
                log.warning("%d taps not accepted (%s); retrying in %.1fs", len(failed), why, backoff)
                self._reconnected.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._reconnected.wait(), backoff)
                backoff = min(backoff * 2, self.backoff_max)
            else:
                backoff = self.backoff_initial

    async def _publish(self, tap: Tap) -> int | None:
        with self._tracer.start_as_current_span(
            "edge tap publish", kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.destination.name": self.subject, "towntip.tap_id": tap.tap_id},
        ):
            headers = inject_headers({subjects.HDR_MSG_ID: tap.key, subjects.HDR_RESULT_TO: self.result_to})
            ack = await self.js.publish(self.subject, tap.model_dump_json().encode(), headers=headers,
                                        timeout=self.publish_timeout)
            if ack.duplicate:
                log.debug("tap %s was already in the stream", tap.tap_id)
            return ack.seq

    # --- outcomes ------------------------------------------------------------------------------------------
    async def _on_result(self, msg: Msg) -> None:
        settlement = parse_outcome(msg)
        if settlement is None:
            return
        self._outcomes.append(settlement)
        self._outcomes_ready.set()

    async def _settle_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready.clear()
            self._flush_outcomes()
            await asyncio.sleep(0)  # let a burst of outcomes gather into one transaction

    def _flush_outcomes(self) -> None:
        items, self._outcomes = self._outcomes, []
        if not items:
            return
        done = set(self.spool.settle(items))
        for s in items:
            if s.tap_id in done:
                self._waiting.discard(s.tap_id)
                kind = s.outcome
                self._tell(Feedback(kind, "", s.tap_id, s.reason or ""))
                if s.outcome == REJECTED:
                    log.warning("tap %s rejected (%s): %s", s.tap_id, s.error_code, s.reason)
        self._progress.set()

    # --- waiting -------------------------------------------------------------------------------------------
    async def wait_settled(self, timeout: float, tap_ids: Sequence[str] | None = None) -> bool:
        """True once every tap this run spooled or re-sent (or the given ones) is settled; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wanted = set(tap_ids) if tap_ids is not None else None
        while True:
            if wanted is None:
                if not self._waiting:
                    return True
            else:
                if not (wanted & self._waiting) and all(
                    s.state == SETTLED for s in self.spool.get_many(sorted(wanted))
                ):
                    return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    @property
    def responsible(self) -> frozenset[str]:
        """Tap ids this run still waits on."""
        return frozenset(self._waiting)


def parse_outcome(msg: Msg) -> Settlement | None:
    """A result message from the points service as a Settlement, or None if it cannot be read."""
    headers = msg.headers or {}
    try:
        body = json.loads(msg.data or b"{}")
    except ValueError:
        log.warning("unreadable outcome on %s: %r", msg.subject, msg.data[:200])
        return None
    tap_id = body.get("tap_id") if isinstance(body, dict) else None
    if not isinstance(tap_id, str) or not tap_id:
        log.warning("outcome without tap_id on %s: %r", msg.subject, msg.data[:200])
        return None
    if subjects.HDR_SERVICE_ERROR in headers or subjects.HDR_SERVICE_ERROR_CODE in headers:
        try:
            code: int | None = int(headers.get(subjects.HDR_SERVICE_ERROR_CODE, "500"))
        except ValueError:
            code = None
        reason = headers.get(subjects.HDR_SERVICE_ERROR) or "rejected"
        return Settlement(tap_id=tap_id, outcome=REJECTED, reason=reason, error_code=code)
    try:
        outcome = TapOutcome.model_validate(body)
    except ValidationError as exc:
        log.warning("malformed outcome for tap %s: %s", tap_id, describe_validation_error(exc))
        return None
    status = CREDITED if outcome.status == "credited" else DUPLICATE
    return Settlement(tap_id=tap_id, outcome=status, points=outcome.points, balance=outcome.balance)


def _unreachable(exc: BaseException) -> bool:
    """JetStream could not be reached (retry later) rather than refusing this message."""
    if isinstance(exc, nats.js.errors.NoStreamResponseError | nats.errors.NoRespondersError):
        return True
    if isinstance(exc, nats.js.errors.APIError):
        return exc.code == 503
    return isinstance(exc, nats.errors.Error | TimeoutError | OSError)


def _short(idm: str) -> str:
    """IDms are identifiers, not secrets, but keep logs from becoming a card register."""
    return idm[:4] + "…" + idm[-2:]
