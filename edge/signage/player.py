"""The signage player: syncs a screen's schedule and content from its node, keeps them in a disk cache, follows the
node's pushes (a change, an emergency), decides what is on screen when, and records each play.

- Sync: `SyncRequest` on the screen's own sync subject at start, on `push.changed`, after a reconnect and every
  RESYNC_SECONDS; the items it does not have yet are fetched in chunks and checked against their sha256 before the
  new manifest replaces the old one (cache.py), so the screen always plays a complete, verified manifest.
- What plays: the node's own `timeline()` of the hour (towntip/kernel/signage_schedule.py), so the staff's preview
  and the screen agree to the second; an item whose content is not cached yet leaves its slot empty rather than
  show something else under its name. The local clock is injectable (`clock`): the CLI's `--now` and the tests
  set "now" through it.
- Emergencies (`push.emergency`, and the active one in each sync reply) take over at once: the slot on screen ends
  there (its play recorded as far as it went) and nothing else plays until the node clears it. The last emergency
  is kept with the cached manifest: a screen that restarts offline keeps showing it (missing a warning is worse).
- Proof of play: a slot the kiosk page confirmed it showed becomes a play (plays.py: spooled, then JetStream).
- Offline: without the node the screen goes on with the cached manifest for as long as it takes; the connection is
  nats-py's (reconnecting for ever), and every reconnect syncs and sends the waiting plays.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import ValidationError

from edge.signage.cache import Cache, ContentMismatch
from edge.signage.plays import PlaySender, PlaySpool
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import utcnow
from towntip.kernel.contracts import signage as contract
from towntip.kernel.errors import describe_validation_error
from towntip.kernel.signage_schedule import timeline

log = logging.getLogger(__name__)

VERSION = "towntip-signage-player/0.1"
IDLE_RECHECK_S = 5.0  # with nothing to play, look again this often (a sync or a clock change may bring something)
_MEDIA_BY_KIND = {"image": "image/png", "video": "video/mp4", "slide": "text/html", "html": "text/html"}


@dataclass
class Slot:
    """What is on screen now: one item from `started_at` until `until` (the player's clock)."""

    id: int
    item: contract.Item
    started_at: datetime
    until: datetime
    shown_at: datetime | None = None  # when the kiosk page confirmed it was visible

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "item_id": self.item.id,
            "kind": self.item.kind,
            "title": self.item.title,
            "media": media_type(self.item),
            "src": f"/content/{self.item.sha256}",
            "started_at": self.started_at.isoformat(),
            "until": self.until.isoformat(),
        }


def media_type(item: contract.Item) -> str:
    return item.mime or _MEDIA_BY_KIND[item.kind]


@dataclass
class _Watchers:
    queues: set[asyncio.Queue[dict[str, Any]]] = field(default_factory=set)

    def tell(self, state: dict[str, Any]) -> None:
        for q in self.queues:
            if q.full():  # a page that fell behind only needs the latest state
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(state)


class Player:
    def __init__(
        self,
        node: str,
        screen: str,
        cache: Cache,
        spool: PlaySpool,
        *,
        clock: Callable[[], datetime] = utcnow,
        request_timeout: float = 5.0,
        resync_interval: float = contract.RESYNC_SECONDS,
        heartbeat_interval: float = contract.HEARTBEAT_SECONDS,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        screenshot: Callable[[int, int], Awaitable[bytes | None]] | None = None,
        screenshot_every: float = contract.SCREENSHOT_EVERY_SECONDS,
        screenshot_after: float = contract.HEARTBEAT_SECONDS,
    ) -> None:
        self.node, self.screen = node, screen
        self.screenshot, self.screenshot_every, self.screenshot_after = screenshot, screenshot_every, screenshot_after
        self.cache, self.spool = cache, spool
        self.clock = clock
        self.request_timeout = request_timeout
        self.resync_interval = resync_interval
        self.heartbeat_interval = heartbeat_interval
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.sender = PlaySender(spool, node, screen, backoff_initial=backoff_initial, backoff_max=backoff_max)
        self.nc: NATS | None = None
        self.manifest: contract.SyncReply | None = self._cached_manifest()
        self.emergency: contract.Emergency | None = self.manifest.emergency if self.manifest else None
        self.slot: Slot | None = None
        self.syncs = 0  # manifests taken in this run
        self._slot_ids = count(1)
        self._pushes = 0  # emergencies heard by push: a sync reply asked for before one of them is older news
        self._watchers = _Watchers()
        self._sync_now = asyncio.Event()
        self._replan = asyncio.Event()  # the slot on screen must end now (emergency, new manifest)
        self._emergency_over = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Any = None

    # --- life cycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start playing from the cache at once; syncing starts when a connection is attached."""
        self.spool.prune()  # plays acknowledged long ago: the screen's file stays small over the years
        for name, work in (
            ("conduct", self._conduct),
            ("sync", self._sync_loop),
            ("plays", self.sender.run),
            ("status", self._heartbeat_loop),
            *((("screenshot", self._screenshot_loop),) if self.screenshot else ()),
        ):
            self._tasks.append(asyncio.create_task(work(), name=f"signage-{name}-{self.screen}"))

    async def attach(self, nc: NATS) -> None:
        """The node's connection (made after start when the node was out of reach): subscribe, sync, send."""
        self.nc = nc
        self.sender.attach(nc)
        self._subscription = await nc.subscribe(contract.push_all(self.node), cb=self._on_push)
        self.connection_back()

    def connection_back(self) -> None:
        """Pass `on_reconnected` to nats.connect(reconnected_cb=...): sync and send at once."""
        self._sync_now.set()
        self.sender.wake.set()
        self._tell()

    async def on_reconnected(self) -> None:
        self.connection_back()

    async def on_disconnected(self) -> None:
        self._tell()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._subscription.unsubscribe()
            self._subscription = None

    @property
    def online(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    # --- what the kiosk page sees ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        screen = self.manifest.screen if self.manifest else None
        em = self.emergency
        return {
            "screen": screen.model_dump(mode="json") if screen else {"name": self.screen, "place": ""},
            "now": self.clock().isoformat(),
            "online": self.online,
            "version": self.manifest.version if self.manifest else None,
            "slot": self.slot.as_json() if self.slot and em is None else None,
            "emergency": (
                {
                    "id": em.id,
                    "title": em.title,
                    "body": em.body,
                    "severity": em.severity,
                    "issued_at": em.issued_at.isoformat(),
                }
                if em
                else None
            ),
        }

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of states, one at each change, for as long as the block lasts (an SSE connection)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=4)
        self._watchers.queues.add(queue)
        try:
            yield queue
        finally:
            self._watchers.queues.discard(queue)

    def _tell(self) -> None:
        self._watchers.tell(self.state())

    def confirm(self, slot_id: int) -> bool:
        """The page shows slot `slot_id`; False when that is not the slot on screen (a stale page)."""
        if self.slot is None or self.slot.id != slot_id:
            return False
        if self.slot.shown_at is None:
            self.slot.shown_at = self.clock()
        return True

    def content(self, sha256: str) -> tuple[Path, str] | None:
        """The cached file and media type of an item of the current manifest, or None."""
        item = next((i for i in self.manifest.items if i.sha256 == sha256), None) if self.manifest else None
        if item is None or not self.cache.has(sha256):
            return None
        return self.cache.path(sha256), media_type(item)

    # --- pushes ----------------------------------------------------------------------------------------------
    async def _on_push(self, msg: Msg) -> None:
        try:
            if msg.subject == contract.push_emergency(self.node):
                self._pushes += 1
                self._take_emergency(contract.Emergency.model_validate_json(msg.data))
            elif msg.subject == contract.push_changed(self.node):
                changed = contract.PushChanged.model_validate_json(msg.data)
                if changed.screens is None or self.screen in changed.screens:
                    self._sync_now.set()
        except ValidationError as exc:
            log.warning("unreadable push on %s: %s", msg.subject, describe_validation_error(exc))

    def _for_me(self, em: contract.Emergency) -> bool:
        if not em.screens and not em.groups:
            return True
        groups = set(self.manifest.screen.groups) if self.manifest else set()
        return self.screen in (em.screens or ()) or bool(groups & set(em.groups))

    def _take_emergency(self, em: contract.Emergency | None) -> None:
        """An emergency from a push or a sync: shown at once; its clearing (or None from a sync) ends it."""
        if em is not None and not self._for_me(em):
            return
        if em is not None and em.cleared:
            if self.emergency is None or self.emergency.id != em.id:
                return
            em = None
        if em == self.emergency:
            return
        self.emergency = em
        if self.manifest is not None:
            self.manifest = self.manifest.model_copy(update={"emergency": em})
            self.cache.save_manifest(self.manifest.model_dump(mode="json"))
        if em is None:
            self._emergency_over.set()
        else:
            self._emergency_over.clear()
            self._replan.set()
        self._tell()

    # --- sync ------------------------------------------------------------------------------------------------
    def _cached_manifest(self) -> contract.SyncReply | None:
        data = self.cache.load_manifest()
        if data is None:
            return None
        try:
            return contract.SyncReply.model_validate(data)
        except ValidationError as exc:
            log.warning("cached manifest unreadable (%s): waiting for the node", describe_validation_error(exc))
            return None

    async def _sync_loop(self) -> None:
        backoff = self.backoff_initial
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_now.wait(), self.resync_interval)
            self._sync_now.clear()
            if not self.online:
                continue
            try:
                await self.sync()
                backoff = self.backoff_initial
            except (
                errors.ServiceError,
                nats.errors.Error,
                OSError,
                TimeoutError,
                ValueError,
                ContentMismatch,
            ) as exc:  # ValidationError is a ValueError
                log.warning("sync failed (%s): playing from the cache, again in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                self._sync_now.set()

    async def sync(self) -> contract.SyncReply:
        """One sync: the manifest, then whatever content is missing, then the switch to the new manifest."""
        assert self.nc is not None
        pushes = self._pushes
        have = self.manifest.version if self.manifest else None
        raw = await rpc.call(
            self.nc,
            contract.sync_subject(self.node, self.screen),
            contract.SyncRequest(have=have),
            timeout=self.request_timeout,
        )
        reply = contract.SyncReply.model_validate(raw)
        if reply.unchanged and self.manifest is not None:
            reply = self.manifest.model_copy(
                update={
                    "version": reply.version,
                    "screen": reply.screen,
                    "node_time": reply.node_time,
                    "emergency": reply.emergency,
                }
            )
        else:
            for item in reply.items:
                if not self.cache.has(item.sha256):
                    await self._fetch(item)
        skew = (reply.node_time - utcnow()).total_seconds()
        if abs(skew) > 30:
            log.warning("this screen's clock is %+.0f s off the node's: dayparts will be off too", -skew)
        emergency = reply.emergency if pushes == self._pushes else self.emergency  # a newer push wins
        changed = self.manifest is None or reply.version != self.manifest.version
        self.manifest = reply.model_copy(update={"emergency": self.emergency})
        self.cache.save_manifest(self.manifest.model_dump(mode="json"))
        self.cache.keep_only({i.sha256 for i in reply.items})
        self.syncs += 1
        self._take_emergency(emergency if emergency is not None else _cleared(self.emergency))
        now_bytes = {i.id: i.sha256 for i in reply.items}
        if changed and (self.slot is None or now_bytes.get(self.slot.item.id) != self.slot.item.sha256):
            # nothing on screen, its item withdrawn, or new bytes for it (a data slide the node rendered again):
            # the new manifest takes over now
            self._replan.set()
        self._tell()
        return reply

    async def _fetch(self, item: contract.Item) -> None:
        """An item's bytes in chunks, hashed as they come; kept only if they match its sha256."""
        assert self.nc is not None
        incoming = self.cache.incoming(item.sha256)
        try:
            while incoming.size < item.bytes or (item.bytes == 0 and incoming.size == 0):
                ask = contract.ContentRequest(
                    id=item.id,
                    sha256=item.sha256,
                    offset=incoming.size,
                    length=min(contract.CHUNK_MAX, max(item.bytes - incoming.size, 1)),
                )
                chunk = await _request_bytes(
                    self.nc, contract.content_subject(self.node, self.screen), ask, self.request_timeout
                )
                if not chunk:
                    break
                incoming.write(chunk)
            incoming.commit()
        except BaseException:
            incoming.discard()
            raise

    # --- what plays when -------------------------------------------------------------------------------------
    async def _conduct(self) -> None:
        ended: datetime | None = None  # when the last slot ran out (not cut short)
        while True:
            if self.emergency is not None:
                await self._emergency_over.wait()
                continue
            # A timer may fire a hair before the slot's end: never pick the slot that just ended again.
            now = max(self.clock(), ended) if ended else self.clock()
            slot = self._next_slot(now)
            self.slot = slot
            self._replan.clear()
            self._tell()
            wait = (slot.until - now).total_seconds() if slot else IDLE_RECHECK_S
            try:
                await asyncio.wait_for(self._replan.wait(), max(wait, 0.05))
                ended = None
            except TimeoutError:
                ended = slot.until if slot else None
            if slot is not None:
                self._record(slot)
            if self.emergency is not None:
                self.slot = None

    def _next_slot(self, now: datetime) -> Slot | None:
        """The slot of the hour's timeline that holds `now`, if its content is here."""
        if self.manifest is None:
            return None
        hour, slots = timeline(self.manifest, now)
        offset = (now - hour).total_seconds()
        current = next((s for s in slots if s.start <= offset < s.end), None)
        if current is None:
            return None
        item = next((i for i in self.manifest.items if i.id == current.item_id), None)
        until = hour + timedelta(seconds=current.end)
        if item is None or not self.cache.has(item.sha256):
            log.info("item %s is due but not cached yet: its slot stays empty", current.item_id)
            return None
        return Slot(next(self._slot_ids), item, now, until)

    def _record(self, slot: Slot) -> None:
        """A slot that was on screen becomes a play: from when the page showed it until now."""
        if slot.shown_at is None:
            return
        end = max(self.clock(), slot.shown_at)
        self.spool.add(slot.item.id, slot.shown_at, end)
        self.sender.wake.set()

    # --- heartbeat -------------------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            if self.online:
                with contextlib.suppress(nats.errors.Error, OSError):
                    await self._beat()
            await asyncio.sleep(self.heartbeat_interval)

    async def _beat(self, screenshot: str | None = None) -> None:
        assert self.nc is not None
        playing = f"emergency:{self.emergency.id}" if self.emergency else self.slot.item.id if self.slot else None
        status = contract.ScreenStatus(
            version=self.manifest.version if self.manifest else None,
            playing=playing,
            cache_bytes=self.cache.size(),
            player_version=VERSION,
            screenshot_png_b64=screenshot,
        )
        await self.nc.publish(contract.status_subject(self.node, self.screen), status.model_dump_json().encode())

    async def _screenshot_loop(self) -> None:
        """A screenshot every `screenshot_every` seconds once there is something to show, sent with a heartbeat of
        its own (a slow render never holds up the regular heartbeat)."""
        assert self.screenshot is not None
        await asyncio.sleep(self.screenshot_after)  # the page has settled and the start-up's work is done
        while True:
            if self.online and self.manifest is not None:
                screen = self.manifest.screen
                png = await self.screenshot(screen.width, screen.height)
                if png and self.online:
                    with contextlib.suppress(nats.errors.Error, OSError):
                        await self._beat(base64.b64encode(png).decode())
                await asyncio.sleep(self.screenshot_every)
            else:
                await asyncio.sleep(min(self.screenshot_every, IDLE_RECHECK_S))


def _cleared(em: contract.Emergency | None) -> contract.Emergency | None:
    """The node's sync says no emergency is active: the one shown (if any) is cleared."""
    return em.model_copy(update={"cleared": True}) if em is not None else None


async def _request_bytes(nc: NATS, subject: str, payload: contract.ContentRequest, timeout: float) -> bytes:
    """A request whose answer is raw bytes; an error reply raises its ServiceError as rpc.call does."""
    try:
        msg = await nc.request(subject, payload.model_dump_json().encode(), timeout=timeout)
    except nats.errors.TimeoutError as exc:
        raise errors.Unavailable(f"{subject} did not answer within {timeout}s") from exc
    headers = msg.headers or {}
    if subjects.HDR_SERVICE_ERROR_CODE in headers or subjects.HDR_SERVICE_ERROR in headers:
        try:
            code = int(headers.get(subjects.HDR_SERVICE_ERROR_CODE, "500"))
        except ValueError:
            code = 500
        raise errors.from_code(
            code,
            headers.get(subjects.HDR_SERVICE_ERROR, "service error"),
            headers.get(subjects.HDR_REFUSAL_CODE) or None,
        )
    return bytes(msg.data)
