"""/api/v1/points: a card's balance and an event's rule, relayed to the points service (svc.<node>.points.*), and
/api/v1/terminals. Staff tools call them with the node's admin token. The public reads of events (GET /points/events,
/points/events/{code}) are generated from the points service's table (gateway/api/generated.py)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.api.deps import Nats, Settings, Staff
from gateway.api.types import Integer, Name
from gateway.problems import responses
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import points as c

router = APIRouter(prefix="/points", tags=["points"])
M = TypeVar("M", bound=BaseModel)

IdmPath = Annotated[str, Path(pattern=r"^[0-9A-Fa-f]{16}$", description="FeliCa IDm: 16 hex digits")]
CodePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="event code")]


class EventRule(BaseModel):
    """The rule of an event: how many points each role earns per tap."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    # Integer: `true` or "5" is refused, as the schema says (pydantic's lax int took them as 1 and 5)
    participant_points: Integer = Field(default=1, ge=0, le=1000)
    volunteer_points: Integer = Field(default=5, ge=0, le=1000)


async def _call(nc: Any, settings: Any, endpoint: str, payload: BaseModel | None, model: type[M]) -> M:
    result = await rpc.call(
        nc, subjects.svc(settings.node_id, c.SERVICE, endpoint), payload, timeout=settings.request_timeout
    )
    try:
        return model.model_validate(result)
    except ValidationError:
        raise errors.ServiceError(f"the points service answered {endpoint} with an unexpected body", code=502) from None


@router.get(
    "/cards/{idm}/balance", response_model=c.Balance, summary="Points balance of a card (staff)",
    responses=responses(401, 404, 422, 503),
)
async def card_balance(idm: IdmPath, _: Staff, nc: Nats, settings: Settings) -> c.Balance:
    return await _call(nc, settings, c.EP_BALANCE, c.BalanceQuery(card_idm=idm), c.Balance)


@router.put("/events/{code}", response_model=c.EventOut, summary="Create or change an event's rule (staff)",
            responses=responses(400, 401, 422, 503))
async def put_event(code: CodePath, rule: EventRule, _: Staff, nc: Nats, settings: Settings) -> c.EventOut:
    return await _call(nc, settings, c.EP_EVENT_PUT, c.EventIn(code=code, **rule.model_dump()), c.EventOut)


# /api/v1/terminals: the card terminals as the points service last heard them (its own router: not under /points).
terminals_router = APIRouter(prefix="/terminals", tags=["terminals"])


@terminals_router.get(
    "", response_model=c.TerminalList, summary="Card terminals: online, last seen, mode, queue (staff)",
    responses=responses(401, 503),
)
async def list_terminals(_: Staff, nc: Nats, settings: Settings) -> c.TerminalList:
    return await _call(nc, settings, c.EP_TERMINALS_LIST, None, c.TerminalList)
