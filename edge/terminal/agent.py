"""The terminal agent: card reads in, taps out to the node over JetStream, outcomes back on its own inbox.

The agent runs in one mode, set by staff (and changed with set_mode): `checkin` for an event (role participant
or volunteer), `register` (card registration), `donation` and `coupon` (each touch confirms one donation or
coupon: staff enters its reference first with set_pending_ref, or passes it with the read; the reference is
used by the next touch only and expires after `ref_ttl` seconds).

For each read: validate (a bad IDm is refused and shown), debounce (the same card again within `debounce`
seconds counts once; in donation/coupon mode the same card with another reference is another touch), spool
(durable before anything is sent), publish to edge.<node>.<terminal>.tap with Nats-Msg-Id = tap.key and
Towntip-Result-To = this run's inbox, mark accepted on the PubAck, mark settled when the points service
answers. A sender task (re)publishes pending taps at start, after each new tap and after a reconnect, backing
off while JetStream is unreachable; while the connection is down it waits instead of publishing.

Feedback (what the person sees and hears, edge.feedback) is told for the touches made in this run: credited,
duplicate or rejected when the node answers; "queued" at once when the node is out of reach, or when it has not
answered within `outcome_timeout` seconds (the tap waits on the device and is credited later, exactly once).

Heartbeats (core NATS, edge.<node>.<terminal>.heartbeat) go out at start, every `heartbeat_interval` seconds,
on reconnect and on a change of mode: mode, event, taps waiting to be sent, taps without an outcome, the last
touch. The agent may start without a connection (nc=None) and be attached later (attach): taps are spooled
meanwhile.

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
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from opentelemetry import trace
from pydantic import TypeAdapter, ValidationError

from edge.feedback.messages import Feedback
from edge.readers.base import CardRead, CardReader, utcnow
from edge.terminal.spool import ALREADY, CREDITED, DUPLICATE, REJECTED, SETTLED, Settlement, Spool, new_tap_id
from towntip.kernel.bus import subjects
from towntip.kernel.contracts.points import Code, Heartbeat, Mode, Ref, Role, Tap, TapOutcome
from towntip.kernel.errors import describe_validation_error
from towntip.kernel.telemetry import inject_headers, tracer

log = logging.getLogger(__name__)

BATCH = 256  # taps published concurrently per round
VERSION = "towntip-edge/0.1"
MODES: tuple[str, ...] = ("checkin", "register", "donation", "coupon")
REF_MODES = ("donation", "coupon")  # a touch confirms something staff named first

__all__ = ["Feedback", "TerminalAgent", "parse_outcome"]


@dataclass
class _Live:
    """A touch made in this run, whose person may still stand at the terminal."""

    idm: str
    mode: str
    told_queued: bool = False
    timer: asyncio.TimerHandle | None = None


def check_mode(mode: str, event: str | None, role: str = "participant") -> None:
    """Raises ValueError when the mode, event and role do not make a valid terminal setting."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if role not in ("participant", "volunteer"):
        raise ValueError(f"role must be participant or volunteer, not {role!r}")
    if mode == "checkin" and not event:
        raise ValueError("check-in mode needs an event code")
    if event is not None:
        try:
            TypeAdapter(Code).validate_python(event)
        except ValidationError:
            raise ValueError(f"event code {event!r} must be 1-64 characters of a-z, 0-9, '-' and '_'") from None


def check_ref(ref: str) -> str:
    try:
        return TypeAdapter(Ref).validate_python(ref)
    except ValidationError:
        raise ValueError(f"reference {ref!r} must be 4-64 characters of A-Z, a-z, 0-9, '-' and '_'") from None


class TerminalAgent:
    def __init__(
        self,
        nc: NATS | None,
        node: str,
        terminal_id: str,
        spool: Spool,
        event: str | None = None,
        role: Role = "participant",
        *,
        mode: Mode = "checkin",
        debounce: float = 3.0,
        publish_timeout: float = 2.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        feedback: Callable[[Feedback], object] | None = None,
        clock: Callable[[], datetime] = utcnow,
        heartbeat_interval: float = 30.0,
        outcome_timeout: float = 3.0,
        ref_ttl: float = 120.0,
        version: str = VERSION,
    ) -> None:
        check_mode(mode, event, role)
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.node = node
        self.terminal_id = terminal_id
        self.spool = spool
        self.mode: Mode = mode
        self.event = event
        self.role: Role = role
        self.debounce = debounce
        self.publish_timeout = publish_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.feedback = feedback
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval
        self.outcome_timeout = outcome_timeout
        self.ref_ttl = ref_ttl
        self.version = version
        self.subject = subjects.edge(node, terminal_id, "tap")
        self.heartbeat_subject = subjects.edge(node, terminal_id, "heartbeat")
        self.result_to: str = ""
        self._sub: Subscription | None = None
        self._started = False
        self._sender: asyncio.Task[None] | None = None
        self._settler: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # new taps or connection back: send now
        self._reconnected = asyncio.Event()  # cuts a backoff short
        self._beat_now = asyncio.Event()  # a heartbeat now (reconnect, change of mode)
        self._outcomes: list[Settlement] = []
        self._outcomes_ready = asyncio.Event()
        self._progress = asyncio.Event()  # something was accepted or settled
        self._waiting: set[str] = set()  # taps this run is responsible for and that are not settled yet
        self._live: dict[str, _Live] = {}
        self._last_counted: dict[tuple[str, str | None], datetime] = {}
        self._pending_ref: tuple[str, datetime] | None = None
        self._last_tap_at: datetime | None = None
        self._tracer = tracer("towntip.edge")
        self.published = 0  # publish attempts acknowledged in this run
        self.heartbeats = 0  # heartbeats sent in this run
        if nc is not None:
            self._use(nc)

    def _use(self, nc: NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=self.publish_timeout)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    # --- life cycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start sending (whatever the spool still holds as pending goes first) and beating; subscribe to the
        result inbox now if connected, else when attached."""
        if self._started:
            return
        self._started = True
        self._waiting.update(t.tap_id for t in self.spool.pending())
        last = self.spool.last()
        self._last_tap_at = last.tap.tapped_at if last is not None else None
        if self.connected:
            await self._subscribe()
        self._settler = asyncio.create_task(self._settle_loop(), name=f"settle-{self.terminal_id}")
        self._sender = asyncio.create_task(self._send_loop(), name=f"send-{self.terminal_id}")
        if self.heartbeat_interval > 0:
            self._beater = asyncio.create_task(self._heartbeat_loop(), name=f"beat-{self.terminal_id}")
        self._wake.set()

    async def attach(self, nc: NATS) -> None:
        """A connection made after start (the node was out of reach at boot): subscribe, then send."""
        self._use(nc)
        if self._started and self._sub is None:
            await self._subscribe()
        self.connection_back()

    async def _subscribe(self) -> None:
        assert self.nc is not None
        self.result_to = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(self.result_to, cb=self._on_result)

    async def stop(self) -> None:
        tasks = [t for t in (self._beater, self._sender, self._settler) if t is not None]
        for task in tasks:  # all cancelled before any is awaited: none runs another step
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._sender = self._settler = self._beater = None
        self._started = False
        for live in self._live.values():
            if live.timer is not None:
                live.timer.cancel()
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
        self._beat_now.set()

    # --- what staff sets -----------------------------------------------------------------------------------
    def set_mode(self, mode: Mode, event: str | None = None, role: Role = "participant") -> None:
        """Switch the terminal (e.g. from check-in to coupons); the next heartbeat says so at once."""
        check_mode(mode, event, role)
        self.mode, self.event, self.role = mode, event, role
        self._pending_ref = None
        self._beat_now.set()

    def set_pending_ref(self, ref: str) -> None:
        """What the next touch confirms (donation or coupon mode): used once, forgotten after ref_ttl seconds."""
        if self.mode not in REF_MODES:
            raise ValueError(f"a reference is for donation or coupon mode; this terminal is in {self.mode} mode")
        self._pending_ref = (check_ref(ref), self.clock())

    def clear_pending_ref(self) -> None:
        self._pending_ref = None

    @property
    def pending_ref(self) -> str | None:
        if self._pending_ref is None:
            return None
        ref, at = self._pending_ref
        if (self.clock() - at).total_seconds() > self.ref_ttl:
            self._pending_ref = None
            return None
        return ref

    # --- reads -> taps -------------------------------------------------------------------------------------
    async def run(self, reader: CardReader) -> int:
        """Take every read of the reader until it ends; returns how many taps were spooled."""
        n = 0
        async for read in reader:
            if await self.tap(read) is not None:
                n += 1
        return n

    async def tap(self, read: CardRead | str, *, ref: str | None = None, debounce: bool = True) -> Tap | None:
        """One touch: returns the spooled Tap, or None if it was refused (bad IDm, no reference where one is
        needed) or merged (debounce). In donation/coupon mode the reference is `ref`, else the pending one."""
        if isinstance(read, str):
            read = CardRead(idm=read, read_at=self.clock())
        from_pending = False
        if self.mode in REF_MODES and ref is None:
            ref = self.pending_ref
            from_pending = ref is not None
            if ref is None:
                log.info("a %s touch without a reference: staff enters it first", self.mode)
                self._tell(Feedback("needs_ref", str(read.idm)[:40], mode=self.mode))
                return None
        tap = self._make_tap(read, ref if self.mode in REF_MODES else None)
        if tap is None:
            return None
        if debounce and self._debounced((tap.card_idm, tap.ref), read.read_at):
            log.info("card %s touched again within %.1fs: counted once", _short(tap.card_idm), self.debounce)
            self._tell(Feedback("ignored", tap.card_idm, mode=tap.mode, detail="touched again"))
            return None
        self.spool.add(tap)  # durable before it is sent
        if from_pending:
            self._pending_ref = None  # one reference, one touch
        self._waiting.add(tap.tap_id)
        self._note_tap(tap)
        self._tell(Feedback("accepted", tap.card_idm, tap.tap_id, mode=tap.mode))
        live = self._live[tap.tap_id] = _Live(idm=tap.card_idm, mode=tap.mode)
        if not self.connected:
            self._tell_queued(tap.tap_id, "offline")
        elif self.outcome_timeout > 0:
            live.timer = asyncio.get_running_loop().call_later(
                self.outcome_timeout, self._tell_queued, tap.tap_id, "no answer yet")
        self._wake.set()
        return tap

    async def tap_many(self, reads: Sequence[CardRead | str], *, refs: Sequence[str | None] | None = None,
                       ) -> list[Tap]:
        """Several distinct touches spooled in one transaction (the simulator): no debounce, no feedback.
        In donation/coupon mode `refs` gives each touch its reference (one per read)."""
        if refs is not None and len(refs) != len(reads):
            raise ValueError(f"{len(reads)} reads but {len(refs)} references")
        taps = []
        for i, read in enumerate(reads):
            if isinstance(read, str):
                read = CardRead(idm=read, read_at=self.clock())
            ref = refs[i] if refs is not None else None
            if self.mode in REF_MODES and ref is None:
                self._tell(Feedback("needs_ref", str(read.idm)[:40], mode=self.mode))
                continue
            tap = self._make_tap(read, ref if self.mode in REF_MODES else None)
            if tap is not None:
                taps.append(tap)
        if taps:
            self.spool.add_many(taps)
            self._waiting.update(t.tap_id for t in taps)
            self._note_tap(taps[-1])
            self._wake.set()
        return taps

    def _make_tap(self, read: CardRead, ref: str | None) -> Tap | None:
        try:
            return Tap(
                tap_id=new_tap_id(), terminal_id=self.terminal_id, card_idm=read.idm, event=self.event,
                role=self.role, mode=self.mode, ref=ref, tapped_at=read.read_at,
            )
        except ValidationError as exc:
            reason = describe_validation_error(exc)
            log.warning("refused a read from the card reader (%r): %s", read.idm[:40], reason)
            self._tell(Feedback("refused", str(read.idm)[:40], mode=self.mode, detail=reason))
            return None

    def _note_tap(self, tap: Tap) -> None:
        if self._last_tap_at is None or tap.tapped_at > self._last_tap_at:
            self._last_tap_at = tap.tapped_at

    def _debounced(self, key: tuple[str, str | None], at: datetime) -> bool:
        if self.debounce <= 0:
            return False
        last = self._last_counted.get(key)
        if last is not None and abs((at - last).total_seconds()) < self.debounce:
            return True
        self._last_counted[key] = at
        if len(self._last_counted) > 4096:  # forget touches long past
            horizon = at.timestamp() - self.debounce
            self._last_counted = {k: v for k, v in self._last_counted.items() if v.timestamp() >= horizon}
        return False

    def _tell(self, fb: Feedback) -> None:
        if self.feedback is not None:
            try:
                self.feedback(fb)
            except Exception:  # a broken beeper must not stop the terminal
                log.exception("feedback callback failed")

    def _tell_queued(self, tap_id: str, why: str) -> None:
        """The person should not wait: the tap is safe on the device and will be credited later."""
        live = self._live.get(tap_id)
        if live is None or live.told_queued or tap_id not in self._waiting:
            return
        live.told_queued = True
        self._tell(Feedback("queued", live.idm, tap_id, mode=live.mode, detail=why))

    # --- heartbeats ----------------------------------------------------------------------------------------
    def status(self) -> Heartbeat:
        """What the next heartbeat says."""
        counts = self.spool.counts()
        return Heartbeat(
            terminal_id=self.terminal_id, sent_at=self.clock(), mode=self.mode, event=self.event,
            queue=counts["pending"], unsettled=counts["accepted"], last_tap_at=self._last_tap_at,
            version=self.version[:32], interval=max(1, round(self.heartbeat_interval or 30)),
        )

    async def heartbeat(self) -> bool:
        """Send one heartbeat now (core NATS: nothing is kept if nobody listens). False when not connected."""
        if not self.connected:
            return False
        assert self.nc is not None
        try:
            await self.nc.publish(self.heartbeat_subject, self.status().model_dump_json().encode())
        except (nats.errors.Error, OSError) as exc:
            log.debug("heartbeat not sent: %r", exc)
            return False
        self.heartbeats += 1
        return True

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except Exception:  # a heartbeat must never stop the terminal
                log.exception("heartbeat failed")
            self._beat_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), self.heartbeat_interval)

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
            if not self.connected:  # the connection is down: nothing to publish into; wait for it
                for s in batch:
                    self._tell_queued(s.tap_id, "offline")
                self._reconnected.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._reconnected.wait(), self.backoff_max)
                continue
            if self._sub is None:
                try:
                    await self._subscribe()
                except (nats.errors.Error, OSError) as exc:
                    log.debug("result inbox not subscribed yet: %r", exc)
                    await asyncio.sleep(backoff)
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
                if unreachable is not None:
                    for tap_id in failed:
                        self._tell_queued(tap_id, "offline")
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
            assert self.js is not None
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
                live = self._live.pop(s.tap_id, None)
                if live is not None:
                    if live.timer is not None:
                        live.timer.cancel()
                    if not live.told_queued:  # once told "queued", the person has gone: the screen moved on
                        self._tell(Feedback("already" if s.already else s.outcome, live.idm, s.tap_id,
                                            s.reason or "", mode=live.mode,
                                            points=s.points, balance=s.balance, display=s.display,
                                            code=s.error_code))
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
    # "already" (checked in to this event before, nothing credited) is settled in the spool as credited with 0 points:
    # the node decided the tap for good; the person is told "already checked in".
    status = DUPLICATE if outcome.status == "duplicate" else CREDITED
    already = outcome.status == "already"
    return Settlement(tap_id=tap_id, outcome=status, points=outcome.points, balance=outcome.balance,
                      display=outcome.display, already=already, reason=ALREADY if already else None)


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
