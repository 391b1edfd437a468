"""kernel.bus.endpoints against a real nats-server: validated input, coded errors, and concurrent requests."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.endpoints import Endpoints, start_service
from towntip.kernel.domain import Domain, Op, own
from towntip.kernel.uow import UnitOfWork

NODE = "testnode"


class Meet(BaseModel):
    n: int


def served(*ops: Op) -> Endpoints:
    """A demo service's endpoints from one table; the rows own their transactions (there is no database here)."""
    return Endpoints.from_domains([Domain("demo", ops=ops)], uow=UnitOfWork(None))  # type: ignore[arg-type]


async def test_requests_are_served_concurrently_with_coded_errors(nc) -> None:
    arrived: list[int] = []
    all_here = asyncio.Event()

    async def meet(q: Meet) -> dict[str, int]:
        """Answers only once all 8 requests are inside at the same time: served one at a time, it never would."""
        arrived.append(q.n)
        if len(arrived) == 8:
            all_here.set()
        await asyncio.wait_for(all_here.wait(), timeout=5)
        return {"n": q.n}

    async def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    async def nope() -> None:
        raise errors.NotFound("no such thing")

    eps = served(own("meet", Meet, None, meet), own("boom", None, None, boom), own("nope", None, None, nope))
    svc = await start_service(nc, node=NODE, service="demo", version="0.0.1", endpoints=eps)
    try:
        subject = subjects.svc(NODE, "demo", "meet")
        answers = await asyncio.gather(*(rpc.call(nc, subject, Meet(n=i), timeout=8) for i in range(8)))
        assert [a["n"] for a in answers] == list(range(8)) and sorted(arrived) == list(range(8))
        with pytest.raises(errors.ServiceError) as exc:
            await rpc.call(nc, subjects.svc(NODE, "demo", "boom"))
        assert exc.value.code == 500 and "internal detail" not in exc.value.reason
        with pytest.raises(errors.NotFound, match="no such thing"):
            await rpc.call(nc, subjects.svc(NODE, "demo", "nope"))
        with pytest.raises(errors.BadRequest):
            await rpc.call(nc, subject, {"n": "many"})
    finally:
        await svc.stop()


async def test_an_answer_goes_only_to_an_inbox_and_a_request_aimed_elsewhere_is_not_served(nc) -> None:
    """Answers are published under allow_responses, past a service's own deny list: a request whose reply subject
    names another endpoint (or the JetStream API) would turn the answer into a message there. It is not served."""
    seen: list[int] = []

    async def meet(q: Meet) -> dict[str, int]:
        seen.append(q.n)
        return {"n": q.n}

    eps = served(own("meet", Meet, None, meet))

    svc = await start_service(nc, node=NODE, service="demo", version="0.0.1", endpoints=eps)
    target = subjects.svc(NODE, "other", "admin.user.add")
    aimed = await nc.subscribe(target)
    try:
        await nc.publish(subjects.svc(NODE, "demo", "meet"), b'{"n": 1}', reply=target)
        await nc.flush()
        with pytest.raises(asyncio.TimeoutError):
            await aimed.next_msg(timeout=0.5)
        assert seen == []
        assert await rpc.call(nc, subjects.svc(NODE, "demo", "meet"), Meet(n=2), timeout=5) == {"n": 2}
        assert seen == [2]  # the same endpoint answers its inbox
    finally:
        await aimed.unsubscribe()
        await svc.stop()


REQUIREMENTS_MISSING = errors.Refusal("theme.requirements_missing", 409, "the call needs its requirements first")


async def test_a_refusal_keeps_its_code_across_the_bus(nc) -> None:
    """The machine-readable code travels beside the numeric status (which nats.micro keeps standard) and comes back
    as the same exception class with the same code; plumbing refusals carry the generic code of their status."""
    async def open_call(q: Meet) -> None:
        raise REQUIREMENTS_MISSING("set the requirements before opening the call")

    eps = served(own("open_call", Meet, None, open_call, refusals=(REQUIREMENTS_MISSING,)))

    svc = await start_service(nc, node=NODE, service="demo", version="0.0.1", endpoints=eps)
    try:
        subject = subjects.svc(NODE, "demo", "open_call")
        with pytest.raises(errors.Conflict, match="set the requirements") as exc:
            await rpc.call(nc, subject, Meet(n=1))
        assert exc.value.error_code == "theme.requirements_missing" and exc.value.status == 409
        raw = await nc.request(subject, b'{"n": 1}', timeout=5)
        assert raw.headers[subjects.HDR_SERVICE_ERROR_CODE] == "409"  # numeric, as nats.micro defines it
        assert raw.headers[subjects.HDR_REFUSAL_CODE] == "theme.requirements_missing"
        assert json.loads(raw.data) == {"code": "theme.requirements_missing", "status": 409,
                                        "reason": "set the requirements before opening the call"}
        with pytest.raises(errors.BadRequest) as bad:
            await rpc.call(nc, subject, {"n": "many"})
        assert bad.value.error_code == "request.invalid"
    finally:
        await svc.stop()


def test_a_refusal_code_has_the_declared_form() -> None:
    with pytest.raises(ValueError, match="domain.what"):
        errors.Refusal("Theme Missing", 409)
    with pytest.raises(ValueError, match="not an error status"):
        errors.Refusal("theme.ok", 200)
