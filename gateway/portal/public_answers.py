"""Answers to a visitor's public reads, kept a moment (the portal's anonymous pages under load).

A visitor without a session who opens a list or a page (GET) makes the gateway ask the services the same public
question as every other visitor: the communities, the events, the themes, a facility. Such an answer is kept
`TTL` seconds in this gateway process and given to the visitors who ask the same question meanwhile; one of them
asks the service while the others wait for its answer (no stampede). What is kept:

- only reads: endpoints named `….list` or `….get` (contracts), or `communities.members`;
- only for requests with no session cookie and no actor in the question: a signed-in person always gets a fresh
  answer (what they just changed shows at once), and nothing personal is ever kept;
- never a refusal or a failure (they are asked again), and at most `LIMIT` questions (the oldest go first), so a
  visitor varying a search cannot grow the gateway's memory.

A visitor may see a change up to `TTL` seconds late, as behind any HTTP cache.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

TTL = 2.0
LIMIT = 512
READS = (".list", ".get")
ALSO = frozenset({"communities.members"})


def cacheable(endpoint: str, payload: BaseModel | dict[str, Any] | None) -> bool:
    if not (endpoint.endswith(READS) or endpoint in ALSO):
        return False
    if isinstance(payload, BaseModel):
        return getattr(payload, "actor", None) is None
    return payload is None or payload.get("actor") is None


def key_of(service: str, endpoint: str, payload: BaseModel | dict[str, Any] | None) -> str:
    body = (payload.model_dump_json() if isinstance(payload, BaseModel)
            else json.dumps(payload, sort_keys=True, default=str) if payload is not None else "")
    return f"{service} {endpoint} {body}"


class PublicAnswers:
    def __init__(self, ttl: float = TTL, limit: int = LIMIT) -> None:
        self.ttl = ttl
        self.limit = limit
        self.kept: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.asking: dict[str, asyncio.Task[Any]] = {}

    async def get(self, key: str, ask: Callable[[], Awaitable[Any]]) -> Any:
        hit = self.kept.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        task = self.asking.get(key)
        if task is None:  # the question goes out as a task of its own: a visitor who leaves cancels only their wait
            task = self.asking[key] = asyncio.ensure_future(ask())
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: str, done: asyncio.Task[Any]) -> None:
        del self.asking[key]
        if done.cancelled() or done.exception() is not None:  # a refusal or a failure is asked again next time
            return
        self.kept[key] = (time.monotonic(), done.result())
        self.kept.move_to_end(key)
        while len(self.kept) > self.limit:
            self.kept.popitem(last=False)
