"""The service's side of the screens' protocol on the bus (contracts/signage.py): sync and content requests, heartbeats,
and the pushes after a commit. An adapter: the logic is in manifest.py, blobs.py and screens.py.

A screen's name is the subject's fourth token; the node's NATS permissions let only that screen's user publish there
(towntip/node/natsauth.py), and the answer goes only into that screen's own inboxes, so no screen reads another's
manifest or content, whatever reply subject it sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.signage import blobs, manifest, screens, state
from services.signage.models import emergencies
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.endpoints import error_body, one_line
from towntip.kernel.contracts import signage as c
from towntip.kernel.db import aware

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
MAX_IN_FLIGHT = 64
# What the manifests are made of is read once per generation (and at least this often): 200 screens syncing after
# one push cost one read in all. With several instances, one that has not yet heard another's push may answer from
# the older generation for at most this long; the screens sync again every RESYNC_SECONDS.
SNAPSHOT_SECONDS = 10.0
QUEUE = "signage"  # the service's instances share the screens' requests


def screen_of(subject: str) -> str:
    return subject.split(".")[3]


class ScreenLink:
    """Subscriptions on signage.<node>.screen.*.{sync,content,status}, served one task per message."""

    def __init__(
        self, nc: NATS, *, node: str, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
    ) -> None:
        self.nc, self.node, self.sessions, self.clock = nc, node, sessions, clock
        self.subs: list[Subscription] = []
        self.snap: tuple[int, float, manifest.Snapshot] | None = None
        self.snap_lock = asyncio.Lock()
        self.epoch = 0
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for kind, serve in (("sync", self._sync), ("content", self._content), ("status", self._status)):
            self.subs.append(
                await self.nc.subscribe(c.screens_of_kind(self.node, kind), queue=QUEUE, cb=self._spawn(serve))
            )
        # every instance hears every push (no queue group): another instance's commit makes this snapshot stale
        self.subs.append(await self.nc.subscribe(c.push_changed(self.node), cb=self._heard_push))
        await self.nc.flush(timeout=10)

    async def stop(self) -> None:
        for sub in self.subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self.running:
            await asyncio.wait(self.running, timeout=5)

    def _spawn(self, serve: Callable[[Msg], Awaitable[None]]) -> Callable[[Msg], Awaitable[None]]:
        async def cb(msg: Msg) -> None:
            await self.slots.acquire()
            task = asyncio.create_task(self._guarded(serve, msg))
            self.running.add(task)
            task.add_done_callback(self._done)

        return cb

    def _done(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self.slots.release()

    async def _guarded(self, serve: Callable[[Msg], Awaitable[None]], msg: Msg) -> None:
        try:
            await serve(msg)
        except errors.ServiceError as exc:
            await self._refuse(msg, exc)
        except Exception:
            log.exception("screen message on %s failed", msg.subject)
            await self._refuse(msg, errors.ServiceError("internal error", code=500))

    async def _refuse(self, msg: Msg, exc: errors.ServiceError) -> None:
        if msg.reply and self._own_inbox(msg):
            await self.nc.publish(
                msg.reply,
                error_body(exc),
                headers={
                    subjects.HDR_SERVICE_ERROR: one_line(exc.reason),
                    subjects.HDR_SERVICE_ERROR_CODE: str(exc.code),
                    subjects.HDR_REFUSAL_CODE: exc.error_code,
                },
            )

    @staticmethod
    def _own_inbox(msg: Msg) -> bool:
        return (msg.reply or "").startswith(c.screen_inbox_prefix(screen_of(msg.subject)) + ".")

    def _request(self, msg: Msg, model: type[M]) -> M:
        if not self._own_inbox(msg):
            # Answered to nobody: an answer aimed elsewhere would hand this screen's manifest to another reader.
            raise _Drop
        try:
            return model.model_validate_json(msg.data or b"{}")
        except ValidationError as exc:
            raise c.BAD_PAYLOAD(errors.describe_validation_error(exc)) from None

    async def _sync(self, msg: Msg) -> None:
        try:
            req = self._request(msg, c.SyncRequest)
        except _Drop:
            log.warning("sync on %s with reply %r dropped: not the screen's own inbox", msg.subject, msg.reply)
            return
        name, now = screen_of(msg.subject), self.clock()
        snap = await self._snapshot()
        reply = manifest.build_from(snap, name=name, have=req.have, now=now)
        await self.nc.publish(msg.reply, reply.model_dump_json().encode())

    def stale(self, generation: int | None = None) -> None:
        """Forget the snapshot (a commit here, or a push of another instance's newer generation)."""
        if generation is None or self.snap is None or self.snap[0] != generation:
            self.snap = None
            self.epoch += 1  # a read under way when this happened is not kept

    async def _heard_push(self, msg: Msg) -> None:
        with contextlib.suppress(ValidationError, ValueError):
            self.stale(int(c.PushChanged.model_validate_json(msg.data).version))

    async def _snapshot(self) -> manifest.Snapshot:
        """The snapshot of the current generation: read again when a commit made it stale (this instance's pusher,
        or another's push heard here) or after SNAPSHOT_SECONDS; the first request that finds it stale reads it,
        the others wait for that read. No database read per sync otherwise."""
        async with self.snap_lock:
            snap = self.snap
            if snap is None or time.monotonic() - snap[1] > SNAPSHOT_SECONDS:
                async with self.sessions() as session:
                    snap = self.snap = (
                        await state.generation(session),
                        time.monotonic(),
                        await manifest.snapshot(session),
                    )
            return snap[2]

    async def _content(self, msg: Msg) -> None:
        try:
            req = self._request(msg, c.ContentRequest)
        except _Drop:
            log.warning("content on %s with reply %r dropped: not the screen's own inbox", msg.subject, msg.reply)
            return
        async with self.sessions() as session:
            row = await manifest.item_for_screen(session, name=screen_of(msg.subject), item_id=req.id, now=self.clock())
            if row.sha256 != req.sha256:
                raise c.ITEM_NOT_FOR_SCREEN(f"item {req.id} has other bytes now: sync again")
            if req.offset >= max(row.bytes, 1):
                raise c.CHUNK_OUT_OF_RANGE(f"offset {req.offset} is past the item's {row.bytes} bytes")
            data = await blobs.read(session, sha256=row.sha256, offset=req.offset, length=req.length)
        await self.nc.publish(msg.reply, data)

    async def _status(self, msg: Msg) -> None:
        try:
            status = c.ScreenStatus.model_validate_json(msg.data or b"{}")
        except ValidationError:
            log.info("heartbeat on %s does not fit the protocol; ignored", msg.subject)
            return
        async with self.sessions() as session, session.begin():
            known = await screens.record_status(session, name=screen_of(msg.subject), status=status, now=self.clock())
        if not known:
            log.info("heartbeat of unregistered screen %s ignored", screen_of(msg.subject))


class _Drop(Exception):
    """A request that gets no answer at all."""


class Pusher:
    """After a commit: tells the screens that something changed (`push.changed`, when the generation moved) and
    pushes emergencies issued or cleared (`push.emergency`). It reads what was committed, so a transaction that
    rolled back pushes nothing, and any instance's commit is pushed by the instance that made it."""

    def __init__(
        self,
        nc: NATS,
        *,
        node: str,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        link: ScreenLink | None = None,
    ) -> None:
        self.nc, self.node, self.sessions, self.clock, self.link = nc, node, sessions, clock, link
        self.event = asyncio.Event()
        self.generation: int | None = None
        self.pushed: dict[str, bool] = {}  # emergency id -> cleared, as last pushed

    def wake(self) -> None:
        self.event.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiter = asyncio.create_task(self.event.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if stop.is_set():
                return
            self.event.clear()
            try:
                await self.push_once()
            except Exception:  # the screens sync every RESYNC_SECONDS anyway
                log.exception("push after commit failed")

    async def push_once(self) -> None:
        now = self.clock()
        async with self.sessions() as session:
            generation = await state.generation(session)
            rows = (
                await session.execute(
                    select(emergencies).where(
                        or_(emergencies.c.cleared_at.is_(None), emergencies.c.cleared_at > now - timedelta(hours=1))
                    )
                )
            ).all()
        for row in sorted(rows, key=lambda r: aware(r.issued_at)):
            cleared = row.cleared_at is not None
            if self.pushed.get(row.id) != cleared:
                em = manifest.emergency_view(row)
                await self.nc.publish(c.push_emergency(self.node), em.model_dump_json().encode())
                self.pushed[row.id] = cleared
        if generation != self.generation:
            self.generation = generation
            if self.link is not None:
                self.link.stale()  # before the screens hear of it: their syncs read the new generation
            await self.nc.publish(
                c.push_changed(self.node), c.PushChanged(version=str(generation)).model_dump_json().encode()
            )
        await self.nc.flush(timeout=5)
