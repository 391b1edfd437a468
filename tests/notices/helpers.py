"""What the notices tests share: a clock the test moves, the people, and a node running the service in this process
over a real nats-server (calls go through NATS as the gateway's would; other services' events are published into
their real streams)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.notices.app import NoticesService
from services.notices.models import bus, inbox_entries, items, life_facets, life_profiles, notices, people
from tests.support.bus import wait_for
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.events import Event

NODE = "testnode"
NOW = datetime(2026, 10, 27, 1, 0, tzinfo=UTC)  # Tuesday 27 October 2026, 10:00 in Japan
HANAKO = Actor(user_id="user-hanako-01", global_handle=f"hanako@{NODE}", display_name="山田 花子")
TARO = Actor(user_id="user-taro-0001", global_handle=f"taro@{NODE}", display_name="鈴木 太郎")
JIRO = Actor(user_id="user-jiro-0001", global_handle=f"jiro@{NODE}", display_name="佐藤 次郎")
AKI = Actor(user_id="user-aki-00001", global_handle="aki@suginami", display_name="杉並 亜希")  # a visitor
CLERK = Actor(user_id="user-clerk-001", global_handle=f"clerk@{NODE}", display_name="広報 職員", roles=("staff",))
CHIEF = Actor(user_id="user-chief-001", global_handle=f"chief@{NODE}", display_name="広報 課長", roles=("staff",))
RESIDENTS = (HANAKO, TARO, JIRO)


class Clock:
    """The service's clock: fixed, moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def a(who: Actor) -> dict[str, Any]:
    return who.model_dump(mode="json")


@dataclass
class Node:
    nc: nats.NATS
    svc: NoticesService
    clock: Clock

    async def call(self, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, c.SERVICE, endpoint), payload, timeout=30)

    async def refused(self, refusal: errors.Refusal, endpoint: str, payload: Any) -> str:
        """The call is refused with this refusal (its code and status), and nothing changed."""
        before = await self.snapshot()
        with pytest.raises(errors.ServiceError) as info:
            await self.call(endpoint, payload)
        assert (info.value.error_code, info.value.code) == (refusal.code, refusal.status), info.value.reason
        assert await self.snapshot() == before, f"{endpoint} was refused but changed something"
        return info.value.reason

    async def snapshot(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with self.svc.sessions() as s:
            for table in (people, life_profiles, life_facets, items, inbox_entries, notices):
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
            out["outbox"] = sorted(r[0] for r in await s.execute(select(bus.outbox.c.event_id)))
        return out

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        async with self.svc.sessions() as s:
            rows = (await s.execute(select(bus.outbox.c.subject, bus.outbox.c.payload)
                                    .order_by(bus.outbox.c.seq))).all()
        return [(r.subject, json.loads(r.payload)) for r in rows]

    async def publish(self, event: Event, *, msg_id: str | None = None) -> None:
        """Another service's event, into its stream on this node (as its outbox relay would)."""
        env = event.envelope(node=NODE)
        await self.nc.jetstream().publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: msg_id or env.id})

    async def register(self, *who: Actor) -> None:
        """The identity service's UserRegistered for each, and wait until the notices service knows them."""
        for person in who:
            name = person.global_handle.split("@")[0]
            await self.publish(ic.UserRegistered(user_id=person.user_id, global_handle=person.global_handle,
                                                 handle=name, home_node=NODE, display_name=person.display_name))

        async def known() -> bool:
            async with self.svc.sessions() as s:
                got = set((await s.execute(select(people.c.global_handle))).scalars())
            return {p.global_handle for p in who} <= got
        await wait_for(known, "the people to be registered")

    async def life(self, who: Actor, **answers: Any) -> dict[str, Any]:
        return await self.call(c.EP_LIFE_PUT, {"actor": a(who), **answers})

    async def notice(self, target: dict[str, str], title: str = "お知らせ", who: Actor = CLERK, **more: Any
                     ) -> dict[str, Any]:
        return await self.call(c.EP_NOTICE_CREATE, {"actor": a(who), "title": title, "body": f"{title}の本文",
                                                    "target": target, **more})

    async def sent(self, notice_id: str) -> dict[str, Any]:
        """The notice once its sending is over (the job runs on its own, woken by the commit)."""
        async def done() -> dict[str, Any] | None:
            got = await self.call(c.EP_NOTICE_GET, {"actor": a(CLERK), "notice_id": notice_id})
            return got if got["state"] == "sent" else None
        return await wait_for(done, f"notice {notice_id} to be sent")

    async def inbox(self, who: Actor, **q: Any) -> dict[str, Any]:
        return await self.call(c.EP_INBOX_LIST, {"actor": a(who), **q})

    async def titles(self, who: Actor, **q: Any) -> list[str]:
        return [it["title"] for it in (await self.inbox(who, **q))["items"]]


class MemberTowns:
    """The federation's member towns as this node's projects service would answer them (it keeps them from the
    trust anchor: services/notices/towns.py asks it over the bus); `listed = None`: projects does not answer."""

    def __init__(self, listed: dict[str, str] | None = None) -> None:
        self.listed: dict[str, str] | None = listed

    async def members(self) -> dict[str, str]:
        from towntip.kernel.contracts import notices_towns as tc

        if self.listed is None:
            raise tc.TOWNS_UNAVAILABLE("projects did not answer")
        return dict(self.listed)
