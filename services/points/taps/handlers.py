"""NATS adapters of taps and cards: the tap consumer's handler and the request/reply endpoints of events and cards."""

from __future__ import annotations

import json
from collections.abc import Sequence

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.taps import service
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import points as contract
from towntip.kernel.uow import UnitOfWork


class TapHandler:
    """Consumes edge.<node>.*.tap: validates each tap, credits the batch in one transaction."""

    def __init__(self, *, node: str, card_key: bytes) -> None:
        self.node = node
        self.card_key = card_key

    def decode(self, msg: Msg) -> tuple[str, contract.Tap]:
        if len(msg.data) > contract.MAX_TAP_BYTES:
            raise Rejected(f"tap is {len(msg.data)} bytes; at most {contract.MAX_TAP_BYTES}", code=413,
                           body=_tap_id_body(msg))
        try:
            tap = contract.Tap.model_validate_json(msg.data)
        except ValidationError as exc:
            raise Rejected(f"malformed tap: {errors.describe_validation_error(exc)}", body=_tap_id_body(msg)) from None
        # edge.<node>.<terminal>.tap: a terminal speaks only for itself.
        parts = msg.subject.split(".")
        if len(parts) != 4 or parts[1] != self.node or parts[2] != tap.terminal_id:
            raise Rejected(f"tap of terminal {tap.terminal_id!r} arrived on {msg.subject!r}", code=403,
                           body={"tap_id": tap.tap_id})
        msg_id = (msg.headers or {}).get(subjects.HDR_MSG_ID)
        if msg_id is not None and msg_id != tap.key:
            raise Rejected(f"Nats-Msg-Id {msg_id!r} does not match the tap's key {tap.key!r}",
                           body={"tap_id": tap.tap_id})
        return tap.key, tap

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[contract.Tap]]) -> list[Outcome]:
        results = await service.record_taps(
            session=session,
            items=[service.TapToApply(d.item, d.duplicate) for d in deliveries],
            card_key=self.card_key,
            node=self.node,
        )
        out: list[Outcome] = []
        for d, r in zip(deliveries, results, strict=True):
            if isinstance(r, errors.ServiceError):
                out.append(Rejected(r.reason, code=r.code, body={"tap_id": d.item.tap_id}))
            else:
                out.append(r)
        return out


def _tap_id_body(msg: Msg) -> dict[str, str]:
    """Best effort: which tap this was, so the terminal can match a refusal to its spool."""
    try:
        raw = json.loads(msg.data)
        if isinstance(raw, dict) and isinstance(raw.get("tap_id"), str):
            return {"tap_id": raw["tap_id"][:64]}
    except (ValueError, UnicodeDecodeError):
        pass
    return {}


def add_endpoints(eps: Endpoints, *, tx: UnitOfWork, node: str, card_key: bytes) -> None:
    """Check-in events and their rules, cards bound to people, a person's points."""

    @eps.add(contract.EP_BALANCE, contract.BalanceQuery)
    async def balance(q: contract.BalanceQuery) -> contract.Balance:
        return await tx.read(lambda s: service.get_card_balance(session=s, card_key=card_key, idm=q.card_idm))

    @eps.add(contract.EP_EVENT_PUT, contract.EventIn)
    async def put_event(event_in: contract.EventIn) -> contract.EventOut:
        return await tx.write(lambda s, _now: service.put_event(session=s, event_in=event_in, node=node))

    @eps.add(contract.EP_EVENT_GET, contract.EventQuery)
    async def get_event(q: contract.EventQuery) -> contract.EventOut:
        return await tx.read(lambda s: service.get_event(session=s, code=q.code))

    @eps.add(contract.EP_EVENT_LIST)
    async def list_events(_: None) -> contract.EventList:
        return contract.EventList(events=await tx.read(lambda s: service.list_events(session=s)))

    @eps.add(contract.EP_CARD_BIND_REQUEST, contract.CardBindRequest)
    async def bind_request(q: contract.CardBindRequest) -> contract.CardBindPending:
        return await tx.write(lambda s, _now: service.request_binding(session=s, card_key=card_key, person=q.person,
                                                                idm=q.card_idm))

    @eps.add(contract.EP_CARD_UNBIND, contract.CardUnbind)
    async def unbind(q: contract.CardUnbind) -> contract.PersonPoints:
        return await tx.write(lambda s, _now: service.unbind_card(session=s, person=q.person, ref=q.card_ref))

    @eps.add(contract.EP_CARD_REGISTER_CODE, contract.CardCodeIn)
    async def register_code(q: contract.CardCodeIn) -> contract.PersonPoints:
        return await tx.write(lambda s, _now: service.register_with_code(session=s, person=q.person, code=q.code,
                                                                   node=node))

    @eps.add(contract.EP_PERSON_POINTS, contract.PersonQuery)
    async def person_points(q: contract.PersonQuery) -> contract.PersonPoints:
        return await tx.read(lambda s: service.person_points(session=s, person=q.person))
