"""Calling a service endpoint over NATS: JSON in, JSON out, NATS service errors raised as ServiceError."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel

from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.telemetry import inject_headers

log = logging.getLogger(__name__)

# "No responders" is also what a caller gets for the moment a service re-subscribes (a restart, a reconnect after
# its nats-server restarted, a slow client cut off by the server): the request is asked again, with backoff, for
# at most this long (and never past the caller's timeout) before the service counts as unavailable. Nobody received
# a request that had no responders, so asking again cannot apply anything twice.
NO_RESPONDERS_PATIENCE = 1.0


async def call(nc: NATS, subject: str, payload: BaseModel | dict[str, Any] | None = None, *,
               timeout: float = 5.0) -> Any:
    """Request/reply with trace context in the headers. Raises errors.ServiceError for an error reply."""
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json().encode()
    else:
        body = json.dumps(payload or {}).encode()
    headers = inject_headers({})
    start = time.monotonic()
    patience = min(NO_RESPONDERS_PATIENCE, timeout / 2)
    pause = 0.05
    while True:
        left = timeout - (time.monotonic() - start)
        try:
            msg = await nc.request(subject, body, timeout=max(left, 0.001), headers=headers or None)
            break
        except NoRespondersError as exc:
            if time.monotonic() - start + pause > patience:
                raise errors.Unavailable(f"no service answers on {subject}") from exc
            await asyncio.sleep(pause)
            pause *= 2
            log.warning("no responders on %s after %.2f s: asking again", subject, time.monotonic() - start)
        except NatsTimeout as exc:
            raise errors.Unavailable(f"{subject} did not answer within {timeout}s") from exc
    hdrs = msg.headers or {}
    if subjects.HDR_SERVICE_ERROR_CODE in hdrs or subjects.HDR_SERVICE_ERROR in hdrs:
        try:
            code = int(hdrs.get(subjects.HDR_SERVICE_ERROR_CODE, "500"))
        except ValueError:
            code = 500
        raise errors.from_code(code, hdrs.get(subjects.HDR_SERVICE_ERROR, "service error"),
                               hdrs.get(subjects.HDR_REFUSAL_CODE) or None)
    if not msg.data:
        return None
    return json.loads(msg.data)
