"""Official messages from the municipality to one person (a booking confirmed or declined, a donation's receipt
ready, a certificate issued): one inbox item each, delivered once. `send` serves other services over the bus
(svc.<node>.notices.message.send); the consumers here turn other services' events into messages.

Once means once: the item's `dedup_key` (`<service>:<key>`) is unique, so the same key again, from a retry, a
redelivered event or a second instance, delivers nothing more and answers the first item."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices.models import bus, inbox_entries, items, people
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import notices as c
from towntip.kernel.db import insert_on_conflict


@dataclass(frozen=True)
class Message:
    service: str
    key: str
    person: str  # global handle
    title: str
    body: str
    sender: str
    links: tuple[c.Link, ...] = ()
    ref: str | None = None


async def deliver(session: AsyncSession, message: Message, *, node: str, now: datetime) -> c.MessageSent:
    """The message in the person's inbox, unless its key was delivered before."""
    key = f"{message.service}:{message.key}"
    item_id = str(uuid.uuid4())
    made = await session.execute(insert_on_conflict(session, items).values(
        id=item_id, kind=c.KIND_MESSAGE, title=message.title, body=message.body,
        links=[ln.model_dump() for ln in message.links], category=None, sender=message.sender, ref=message.ref,
        dedup_key=key, origin_node=node, version=1, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(items.c.id))
    if made.scalar() is None:
        first = await session.scalar(select(items.c.id).where(items.c.dedup_key == key))
        return c.MessageSent(item_id=str(first), delivered=False)
    await session.execute(inbox_entries.insert().values(
        person=message.person, item_id=item_id, kind=c.KIND_MESSAGE, delivered_at=now))
    await announce(session, bus, c.MessageDelivered(item_id=item_id, service=message.service, at=now), node=node)
    return c.MessageSent(item_id=item_id, delivered=True)


async def send(*, session: AsyncSession, data: c.MessageSend, node: str, now: datetime) -> c.MessageSent:
    """From another service of this node (NATS permissions admit only those granted in natsauth.SERVICE_CALLS). A
    person of this node must be one the service knows; a visitor (name@other) is kept under their home ID."""
    if data.person.endswith(f"@{node}") and await session.scalar(
            select(people.c.global_handle).where(people.c.global_handle == data.person)) is None:
        raise c.MESSAGE_UNKNOWN_PERSON(f"{data.person} is no person of this node")
    return await deliver(session, Message(
        service=data.service, key=data.key, person=data.person, title=data.title, body=data.body,
        sender=data.sender, links=tuple(data.links), ref=data.ref), node=node, now=now)
