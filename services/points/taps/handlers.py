"""NATS adapters of taps and cards: the tap consumer's handler, and the table of the endpoints of events and cards."""

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
from towntip.kernel.contracts import points as contract
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.domain import ANYONE, GATEWAY, GET, SIGNED_IN, STAFF, Domain, read, write


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


# ---- the endpoints: events and their rules, cards bound to people, a person's points ------------------------------


async def card_balance(*, session: AsyncSession, card_key: bytes, card_idm: str) -> contract.Balance:
    return await service.get_card_balance(session=session, card_key=card_key, idm=card_idm)


async def put_event(*, session: AsyncSession, data: contract.EventIn, node: str) -> contract.EventOut:
    return await service.put_event(session=session, event_in=data, node=node)


async def list_events(*, session: AsyncSession) -> contract.EventList:
    return contract.EventList(events=await service.list_events(session=session))


async def bind_request(*, session: AsyncSession, card_key: bytes, person: str, card_idm: str
                       ) -> contract.CardBindPending:
    return await service.request_binding(session=session, card_key=card_key, person=person, idm=card_idm)


async def my_points(*, session: AsyncSession, actor: Actor) -> contract.PersonPoints:
    return await service.person_points(session=session, person=actor.user_id)


async def unbind(*, session: AsyncSession, person: str, card_ref: str) -> contract.PersonPoints:
    return await service.unbind_card(session=session, person=person, ref=card_ref)


DOMAIN = Domain("taps", refusals=(
    contract.EVENT_NOT_FOUND, contract.CARD_ALREADY_YOURS, contract.CARD_BOUND_ELSEWHERE, contract.CARD_NOT_FOUND,
    contract.CARD_CODE_INVALID,
), ops=(
    read(contract.EP_BALANCE, contract.BalanceQuery, contract.Balance, card_balance, role=STAFF),
    # events.put stays the gateway's hand-written PUT /points/events/{code} (gateway/api/points.py): staff tooling
    # calls it with the node's admin token, which is no person, and its body is stricter than EventIn.
    write(contract.EP_EVENT_PUT, contract.EventIn, contract.EventOut, put_event, role=STAFF),
    read(contract.EP_EVENT_GET, contract.EventQuery, contract.EventOut, service.get_event, role=ANYONE,
         http=GET("/points/events/{code}", "One event and its rule")),
    read(contract.EP_EVENT_LIST, None, contract.EventList, list_events, role=ANYONE,
         http=GET("/points/events", "Events where terminals issue points")),
    write(contract.EP_CARD_BIND_REQUEST, contract.CardBindRequest, contract.CardBindPending, bind_request,
          role=GATEWAY),
    write(contract.EP_CARD_UNBIND, contract.CardUnbind, contract.PersonPoints, unbind, role=GATEWAY),
    write(contract.EP_CARD_REGISTER_CODE, contract.CardCodeIn, contract.PersonPoints, service.register_with_code,
          role=GATEWAY),
    read(contract.EP_PERSON_POINTS, contract.PersonQuery, contract.PersonPoints, service.person_points,
         role=GATEWAY),
    read(contract.EP_MY_POINTS, contract.MyPointsQuery, contract.PersonPoints, my_points, role=SIGNED_IN,
         http=GET("/points/mine", "My points and cards")),
))
