"""The node's guard for its peers' consumer creations: the only way a peer sources this node's event streams.

A peer's stream that sources `EVT_<N>_<S>` sends `$JS.<n>.API.CONSUMER.CREATE.EVT_<N>_<S>.<name>.evt.<n>.<s>.>`.
The federation's hub (towntip/node/hub.py) does not pass that to this node's JetStream: the peer's account imports
it as a service that node `<n>`'s account exports under `fedsrc.<n>.CREATE.…` (a service import with `to` keeps
the wildcards), and this guard, one of the node's own processes, answers there. It passes a creation to its own
JetStream (`$JS.API.CONSUMER.CREATE.…`) only when the consumer is what sourcing needs and delivers to the
requesting peer alone:

- the stream is one that peers may source (`leafnode.FEDERATED_SERVICES`) and the filter is the stream's own;
- the deliver subject starts with `$JS.S.<peer>.<n>.` where `<peer>` is the account the hub says sent the request
  (`Nats-Request-Info`, set by the hub's service import: a value the peer puts there itself arrives replaced);
  JetStream publishes a consumer's deliveries as the server itself, past every user's permission, so without this
  check a peer could have this node's events published on `evt.<n>.points.…` or `svc.<n>.…` at this node;
- an ephemeral, push consumer that acknowledges nothing (no durable, no queue group, no pull);
- at most `BURST` creations at once and `RATE` a second after that, per peer (sources create their consumer again
  after an outage or a stall; a flood is refused with 429).

The node's own leafnode remote refuses `$JS.<n>.API.>` from the hub altogether (`leafnode.deny_imports`), so this
is the one door. Every refusal is answered with a JetStream API error (the peer's server logs it) and creates
nothing.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from towntip.kernel.bus import subjects
from towntip.kernel.settings import check_node_id
from towntip.node.leafnode import FEDERATED_SERVICES

log = logging.getLogger(__name__)

REQUEST_INFO = "Nats-Request-Info"  # set by nats-server on a service import across accounts
BURST = 20
RATE = 0.5  # creations a second per peer, after the burst
MAX_REQUEST = 4096  # bytes: a source's creation is a few hundred
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_DELIVER_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64}){0,3}$")
_RESPONSE = "io.nats.jetstream.api.v1.consumer_create_response"


def sourceable(node: str, services: tuple[str, ...] = FEDERATED_SERVICES) -> dict[str, str]:
    """The streams of `node` that peers may source, each with the one filter a source of it has."""
    return {subjects.evt_stream(node, s): subjects.evt_all(node, s) for s in services}


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class SourceGuard:
    """Answers `fedsrc.<node>.CREATE.>` on `nc` (a connection of this node's with the right to create consumers)."""

    nc: NATS
    node: str
    services: tuple[str, ...] = FEDERATED_SERVICES
    timeout: float = 5.0
    _sub: Subscription | None = None
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return subjects.source_create(self.node) + ".>"

    async def start(self) -> SourceGuard:
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_request)
        await self.nc.flush()
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_request(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            peer, local = self.check(msg)
            self._spend(peer)
        except Refused as exc:
            log.warning("source guard: refused a consumer creation on %s: %s", msg.subject, exc)
            await self._error(msg.reply, exc.code, str(exc))
            return
        try:
            answer = await self.nc.request(local, msg.data, timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 (timeout or no responders: this node's JetStream did not answer)
            await self._error(msg.reply, 503, f"this node's JetStream did not answer: {exc.__class__.__name__}")
            return
        await self.nc.publish(msg.reply, answer.data, headers=answer.headers)

    def check(self, msg: Msg) -> tuple[str, str]:
        """(the requesting peer, the local JetStream subject) for an acceptable creation, else Refused."""
        prefix = subjects.source_create(self.node) + "."
        rest = msg.subject[len(prefix):] if msg.subject.startswith(prefix) else ""
        stream, _, rest = rest.partition(".")
        name, _, filter_ = rest.partition(".")
        wanted = sourceable(self.node, self.services)
        if stream not in wanted:
            raise Refused(403, f"no peer may source {stream or 'that stream'!r} of {self.node}")
        if filter_ != wanted[stream] or not _TOKEN.match(name):
            raise Refused(403, f"a source of {stream} is a named consumer filtered on {wanted[stream]}")
        peer = self._peer(msg)
        if len(msg.data) > MAX_REQUEST:
            raise Refused(400, f"a consumer creation of more than {MAX_REQUEST} bytes")
        try:
            body = json.loads(msg.data)
            config = body["config"]
            if not isinstance(config, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise Refused(400, "not a consumer creation (JSON with a config)") from None
        if body.get("stream_name") != stream or config.get("name", name) != name:
            raise Refused(400, "the body names another stream or consumer than the subject")
        filters = config.get("filter_subjects") or [config.get("filter_subject")]
        if filters != [wanted[stream]]:
            raise Refused(403, f"the consumer must be filtered on {wanted[stream]} alone")
        deliver = config.get("deliver_subject")
        own = subjects.source_deliver(peer, self.node) + "."
        if not isinstance(deliver, str) or not deliver.startswith(own) or not _DELIVER_ID.match(deliver[len(own):]):
            raise Refused(403, f"{peer} may have deliveries only on {own}>, not {deliver!r}")
        for key in ("durable_name", "deliver_group"):
            if config.get(key):
                raise Refused(403, f"a source's consumer has no {key}")
        if config.get("ack_policy", "none") != "none":
            raise Refused(403, "a source's consumer acknowledges nothing (ack_policy none)")
        return peer, f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter_}"

    def _peer(self, msg: Msg) -> str:
        try:
            info = json.loads((msg.headers or {}).get(REQUEST_INFO, ""))
            peer = check_node_id(info["acc"])
        except (ValueError, KeyError, TypeError):
            raise Refused(403, "the request did not come through the hub's accounts (no requesting account)") from None
        if peer == self.node:
            raise Refused(403, f"{self.node} does not source itself")
        return peer

    def _spend(self, peer: str) -> None:
        now = time.monotonic()
        b = self._buckets.setdefault(peer, _Bucket(BURST, now))
        b.tokens = min(BURST, b.tokens + (now - b.at) * RATE)
        b.at = now
        if b.tokens < 1:
            raise Refused(429, f"{peer} creates consumers too often (at most {BURST}, then {RATE}/s)")
        b.tokens -= 1

    async def _error(self, reply: str, code: int, reason: str) -> None:
        body: dict[str, Any] = {"type": _RESPONSE, "error": {"code": code, "err_code": 10000 + code,
                                                            "description": f"source guard: {reason}"}}
        await self.nc.publish(reply, json.dumps(body).encode())
