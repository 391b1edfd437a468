"""The event envelope: every fact on the bus carries an id, its type and schema version, the node and the time."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from towntip.kernel.bus import subjects

_random = random.Random()  # seeded from os.urandom when the process starts


def new_id() -> str:
    """A time-ordered unique id (UUIDv7 layout: 48-bit milliseconds, version, 74 random bits), so ids sort by
    creation. It names things, it guards nothing: the random bits come from the process's seeded generator (one
    system call per id cost more than the rest of a tap's bookkeeping)."""
    rand = _random.getrandbits(74)
    value = ((time.time_ns() // 1_000_000) & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 62) << 64 \
        | 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def event_token(event_type: str) -> str:
    """'TapRecorded' -> 'tap_recorded' (the last token of the event's subject)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_type).lower()


class Envelope(BaseModel):
    """One fact, as published by an outbox relay. Payload changes are additive; `version` says which."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_id)
    type: str
    version: int = 1
    node: str
    service: str
    time: datetime = Field(default_factory=utcnow)
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        return subjects.evt(self.node, self.service, event_token(self.type))

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)
