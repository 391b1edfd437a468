"""Proof of play: each play a screen reports (JetStream, stream SIGNAGE_PLAYS_<NODE>) counted once by its play id
(made on the device), however late it comes: the consumer's inbox and the table's key both hold it for ever."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage.models import plays
from services.signage.screen_link import screen_of
from towntip.kernel import db
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import signage as c
from towntip.kernel.errors import describe_validation_error

CONSUMER = "signage-plays"
DAY = 24 * 3600.0
MAX_PLAY_BYTES = 1024


def stream_config(node: str) -> StreamConfig:
    """Plays wait here for the service; a screen's spool keeps them until acknowledged, so 30 days is plenty."""
    return StreamConfig(
        name=c.plays_stream(node),
        subjects=[c.screens_of_kind(node, "plays")],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=30 * DAY,
        duplicate_window=600.0,
        max_msg_size=MAX_PLAY_BYTES,
        discard=DiscardPolicy.OLD,
    )


def consumer_spec(node: str) -> ConsumerSpec:
    return ConsumerSpec(
        stream=c.plays_stream(node),
        durable=CONSUMER,
        filter_subject=c.screens_of_kind(node, "plays"),
        service=c.SERVICE,
        node=node,
        batch=256,
    )


class PlayHandler:
    """Decodes a screen's play; a play naming another screen than the subject it came on is refused."""

    def __init__(self, node: str) -> None:
        self.node = node

    def decode(self, msg: Msg) -> tuple[str, c.Play]:
        try:
            play = c.Play.model_validate_json(msg.data)
        except ValidationError as exc:
            raise Rejected(describe_validation_error(exc)) from None
        if play.screen != screen_of(msg.subject):
            raise Rejected(f"a play of screen {play.screen} sent on {msg.subject}")
        return f"play:{play.play_id}", play

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[c.Play]]) -> list[Outcome]:
        fresh = [d.item for d in deliveries if not d.duplicate]
        if fresh:
            await record(session, fresh, node=self.node)
        return [None] * len(deliveries)


async def record(session: AsyncSession, items: Sequence[c.Play], *, node: str, screen_suffix: str = "") -> None:
    """Insert plays; a play id already there is left as it is (the key made on the device decides)."""
    now = utcnow()
    rows = [
        {
            "play_id": p.play_id,
            "item_id": p.item_id,
            "screen": p.screen + screen_suffix,
            "node": node,
            "started_at": p.started_at,
            "ended_at": p.ended_at,
            "received_at": now,
        }
        for p in items
    ]
    await session.execute(db.insert_on_conflict(session, plays).values(rows).on_conflict_do_nothing())
