"""Calling a service endpoint over NATS: JSON in, JSON out, NATS service errors raised as ServiceError."""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel

from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.telemetry import inject_headers


async def call(nc: NATS, subject: str, payload: BaseModel | dict[str, Any] | None = None, *, timeout: float = 5.0) -> Any:
    """Request/reply with trace context in the headers. Raises errors.ServiceError for an error reply."""
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json().encode()
    else:
        body = json.dumps(payload or {}).encode()
    headers = inject_headers({})
    try:
        msg = await nc.request(subject, body, timeout=timeout, headers=headers or None)
    except NoRespondersError as exc:
        raise errors.Unavailable(f"no service answers on {subject}") from exc
    except NatsTimeout as exc:
        raise errors.Unavailable(f"{subject} did not answer within {timeout}s") from exc
    hdrs = msg.headers or {}
    if subjects.HDR_SERVICE_ERROR_CODE in hdrs or subjects.HDR_SERVICE_ERROR in hdrs:
        try:
            code = int(hdrs.get(subjects.HDR_SERVICE_ERROR_CODE, "500"))
        except ValueError:
            code = 500
        raise errors.from_code(code, hdrs.get(subjects.HDR_SERVICE_ERROR, "service error"))
    if not msg.data:
        return None
    return json.loads(msg.data)
