"""The activity feature inside the notices service process: its event consumers, the push sender, the digest's mail
sender and the periodic jobs (reminders of tomorrow's bookings, the digest, forgetting old notifications).

Each job is safe with several instances running it at once (a reminder and a digest are keyed once per person and
thing or day); a job that fails is logged and runs again the next round."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices import activity, activity_events, push
from services.notices.activity_models import mail
from services.notices.navi_bus import OverBus
from towntip.kernel.bus.consumer import IdempotentConsumer
from towntip.kernel.bus.outbox import BusTables
from towntip.kernel.bus.streams import ensure_node_streams, ensure_peer_sources
from towntip.kernel.loops import sleep_or_stop, woken_rounds
from towntip.kernel.mail import MailSender, SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
SOURCES = ("sns", "points", "bookings", "projects")


class ActivityFeature:
    """Built by the service before its endpoints (their `features` context), started after its outbox relay."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        sessions: async_sessionmaker[AsyncSession],
        nc: NATS,
        clock: Callable[[], datetime],
        smtp: SmtpSettings | None = None,
        allow_local_push: bool = False,
        jobs_every: float | None = 60.0,
    ) -> None:
        self.node, self.sessions, self.nc, self.clock = settings.node_id, sessions, nc, clock
        self.bus = OverBus(nc, self.node)
        self.vapid = push.load_or_create_vapid(settings.data_dir)
        subject = (
            settings.public_url if settings.public_url.startswith("https://") else f"mailto:webpush@{self.node}.invalid"
        )
        self.pusher = push.PushSender(sessions=sessions, vapid=self.vapid, subject=subject)
        self.mailer = MailSender(sessions=sessions, table=mail, settings=smtp or SmtpSettings())
        self.allow_local_push = allow_local_push
        self.jobs_every = jobs_every  # None: no loop (tests run `jobs_round` themselves)
        self.consumers: list[IdempotentConsumer[Any]] = []

    def context(self) -> dict[str, Any]:
        """What the feature's endpoint handlers take (services/notices/activity_handlers.py)."""
        return {
            "candidates": self.bus,
            "vapid_public": push.public_key(self.vapid),
            "allow_local": self.allow_local_push,
        }

    def committed(self) -> None:
        """After a commit that may have made notifications: push them."""
        self.pusher.wake.set()

    async def start(
        self, js: JetStreamContext, tables: BusTables, stop: asyncio.Event, on_commit: Callable[[], None]
    ) -> list[asyncio.Task[None]]:
        await ensure_node_streams(js, self.node, SOURCES)
        # The peers' projects facts are the projects service's own stream: made (without sources) if it has not
        # started yet, as projects makes it, so that the consumer of the peers has something to read.
        await ensure_peer_sources(js, self.node, set(), "projects", own=True)

        def woken() -> None:
            on_commit()
            self.committed()

        for spec in activity_events.consumer_specs(self.node):
            source = spec.durable.removeprefix("notices-activity-")
            handler = activity_events.ActivityHandler(
                self.node, "projects" if source == "peers" else source, self.bus.followers, peers=source == "peers"
            )
            self.consumers.append(
                IdempotentConsumer(
                    nc=self.nc,
                    js=js,
                    sessions=self.sessions,
                    tables=tables,
                    spec=spec,
                    handler=handler,
                    on_commit=woken,
                )
            )
        tasks = [asyncio.create_task(c.run(stop), name=c.spec.durable) for c in self.consumers]
        tasks.append(
            asyncio.create_task(
                woken_rounds("notices-push", self.pusher.round, wake=self.pusher.wake, stop=stop, poll_interval=5.0),
                name="notices-push",
            )
        )
        tasks.append(asyncio.create_task(self.mailer.run(stop), name="notices-mail"))
        if self.jobs_every is not None:
            tasks.append(asyncio.create_task(self._jobs(stop), name="notices-activity-jobs"))
        return tasks

    async def jobs_round(self, now: datetime | None = None) -> dict[str, int]:
        """Each job once, in its own transaction: reminders, the digest, forgetting."""
        uow = UnitOfWork(self.sessions, clock=lambda: now or self.clock())
        done = {
            "reminders": await uow.write(lambda s, at: activity.remind_tomorrow(s, now=at)),
            "digests": await uow.write(lambda s, at: activity.queue_digests(s, now=at, mail=mail)),
            "forgotten": await uow.write(lambda s, at: activity.forget_old(s, now=at)),
        }
        if done["reminders"]:
            self.committed()
        if done["digests"]:
            self.mailer.wake()
        return done

    async def _jobs(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.jobs_round()
            except Exception:  # a passing database error: the next round tries again
                log.exception("activity jobs failed; next try in %s s", self.jobs_every)
            await sleep_or_stop(stop, self.jobs_every or 60.0)
