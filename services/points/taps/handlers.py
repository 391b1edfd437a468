"""NATS adapters of the points service: the tap consumer and the request/reply endpoints. They own transactions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.points.coupons import service as coupons
from services.points.courses.service import add_course_endpoints
from services.points.donations import service as donations
from services.points.ledger import rules as asset_rules_
from services.points.ledger import service as ledger
from services.points.notebook import service as notebook
from services.points.taps import service
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import Delivery, Outcome, Rejected
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import points as contract


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


def build_endpoints(
    *, sessions: async_sessionmaker[AsyncSession], node: str, card_key: bytes, on_commit: Callable[[], None]
) -> Endpoints:
    eps = Endpoints()

    @eps.add(contract.EP_BALANCE, contract.BalanceQuery)
    async def balance(q: contract.BalanceQuery) -> contract.Balance:
        async with sessions() as session:
            return await service.get_card_balance(session=session, card_key=card_key, idm=q.card_idm)

    @eps.add(contract.EP_EVENT_PUT, contract.EventIn)
    async def put_event(event_in: contract.EventIn) -> contract.EventOut:
        async with sessions() as session, session.begin():
            out = await service.put_event(session=session, event_in=event_in, node=node)
        on_commit()
        return out

    @eps.add(contract.EP_EVENT_GET, contract.EventQuery)
    async def get_event(q: contract.EventQuery) -> contract.EventOut:
        async with sessions() as session:
            return await service.get_event(session=session, code=q.code)

    @eps.add(contract.EP_EVENT_LIST)
    async def list_events(_: None) -> contract.EventList:
        async with sessions() as session:
            return contract.EventList(events=await service.list_events(session=session))

    @eps.add(contract.EP_CARD_BIND_REQUEST, contract.CardBindRequest)
    async def bind_request(q: contract.CardBindRequest) -> contract.CardBindPending:
        async with sessions() as session, session.begin():
            return await service.request_binding(session=session, card_key=card_key, person=q.person,
                                                 idm=q.card_idm)

    @eps.add(contract.EP_CARD_UNBIND, contract.CardUnbind)
    async def unbind(q: contract.CardUnbind) -> contract.PersonPoints:
        async with sessions() as session, session.begin():
            return await service.unbind_card(session=session, person=q.person, ref=q.card_ref)

    @eps.add(contract.EP_CARD_REGISTER_CODE, contract.CardCodeIn)
    async def register_code(q: contract.CardCodeIn) -> contract.PersonPoints:
        async with sessions() as session, session.begin():
            out = await service.register_with_code(session=session, person=q.person, code=q.code, node=node)
        on_commit()
        return out

    @eps.add(contract.EP_PERSON_POINTS, contract.PersonQuery)
    async def person_points(q: contract.PersonQuery) -> contract.PersonPoints:
        async with sessions() as session:
            return await service.person_points(session=session, person=q.person)

    add_ledger_endpoints(eps, sessions=sessions, node=node, on_commit=on_commit)
    add_coupon_endpoints(eps, sessions=sessions, node=node, card_key=card_key, on_commit=on_commit)
    add_course_endpoints(eps, sessions=sessions, node=node, on_commit=on_commit)
    donations.add_endpoints(eps, sessions=sessions, node=node, on_commit=on_commit, retrying=_retrying)
    notebook.add_endpoints(eps, sessions=sessions, node=node, on_commit=on_commit)  # まちづくり手帳, staff figures
    return eps


def _result(key: str, r: ledger.PostResult) -> lc.EntryResult:
    if isinstance(r, ledger.Posted):
        return lc.EntryResult(key=key, status=r.status, journal_id=r.journal_id)  # type: ignore[arg-type]
    return lc.EntryResult(key=key, status="refused", code=r.code, reason=r.reason)


def add_ledger_endpoints(
    eps: Endpoints, *, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None]
) -> None:
    """The operator's ledger endpoints (admin.*: the gateway's NATS user may not call them)."""

    @eps.add(lc.EP_LEDGER_POST, lc.PostIn, max_bytes=1024 * 1024)
    async def post(q: lc.PostIn) -> lc.PostOut:
        entries = [ledger.Entry(key=e.key, kind=e.kind, memo=e.memo, actor=q.actor,
                                legs=tuple(ledger.Leg(g.account, g.asset, g.amount) for g in e.legs))
                   for e in q.entries]
        results = await _retrying(sessions, lambda s: ledger.post_entries(s, entries, node=node))
        on_commit()
        return lc.PostOut(results=[_result(e.key, r) for e, r in zip(entries, results, strict=True)])

    @eps.add(lc.EP_LEDGER_REVERSE, lc.ReverseIn)
    async def reverse(q: lc.ReverseIn) -> lc.EntryResult:
        r = await _retrying(sessions, lambda s: ledger.reverse(s, original_key=q.original_key, key=q.key,
                                                               node=node, actor=q.actor, memo=q.memo))
        on_commit()
        if isinstance(r, errors.ServiceError):
            raise r
        return _result(q.key, r)

    @eps.add(lc.EP_LEDGER_BALANCE, lc.BalanceIn)
    async def balance(q: lc.BalanceIn) -> lc.AccountBalance:
        async with sessions() as s:
            return lc.AccountBalance(account=q.account, asset=q.asset,
                                     balance=await ledger.balance(s, q.account, q.asset))

    @eps.add(lc.EP_ASSET_RULES, lc.AssetRulesIn)
    async def asset_rules(q: lc.AssetRulesIn) -> lc.AssetRules:
        async with sessions() as s, s.begin():
            return lc.AssetRules(**await asset_rules_.set_rules(
                s, asset=q.asset, expiry_days=q.expiry_days, demurrage_percent_per_month=q.demurrage_percent_per_month))

    @eps.add(lc.EP_ASSET_SWEEP, lc.SweepIn)
    async def sweep(q: lc.SweepIn) -> lc.Swept:
        out = await _retrying(sessions, lambda s: asset_rules_.sweep(s, node=node, now=q.at))
        on_commit()
        return lc.Swept(**out)

    @eps.add(lc.EP_LEDGER_TOTALS)
    async def totals(_: None) -> lc.Totals:
        async with sessions() as s:
            return lc.Totals(totals=await ledger.totals_by_asset(s))


RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure: PostgreSQL asks for a retry
_ledger_writer = asyncio.Lock()


def _sqlstate(exc: DBAPIError) -> str | None:
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if code:
            return str(code)
    return None


def add_coupon_endpoints(
    eps: Endpoints, *, sessions: async_sessionmaker[AsyncSession], node: str, card_key: bytes,
    on_commit: Callable[[], None],
) -> None:
    """The wallet, local currency awarded by staff, coupons bought with it and redeemed at the counter."""

    @eps.add(cc.EP_WALLET, contract.PersonQuery)
    async def wallet(q: contract.PersonQuery) -> cc.Wallet:
        async with sessions() as s:
            return await coupons.wallet(s, person=q.person)

    @eps.add(cc.EP_CURRENCY_AWARD, cc.CurrencyAwardIn)
    async def award(q: cc.CurrencyAwardIn) -> cc.Wallet:
        out = await _retrying(sessions, lambda s: coupons.award_currency(s, q=q, node=node))
        on_commit()
        return out

    @eps.add(cc.EP_COUPON_TYPE_PUT, cc.CouponTypeIn)
    async def put_type(q: cc.CouponTypeIn) -> cc.CouponType:
        async with sessions() as s, s.begin():
            return await coupons.put_type(s, q=q)

    @eps.add(cc.EP_COUPON_TYPES)
    async def types(_: None) -> cc.CouponTypeList:
        async with sessions() as s:
            return await coupons.list_types(s)

    @eps.add(cc.EP_COUPON_BUY, cc.CouponBuyIn)
    async def buy(q: cc.CouponBuyIn) -> cc.CouponBought:
        out = await _retrying(sessions, lambda s: coupons.buy(s, q=q, key=card_key, node=node))
        on_commit()
        return out

    @eps.add(cc.EP_COUPON_MINE, contract.PersonQuery)
    async def mine(q: contract.PersonQuery) -> cc.CouponList:
        async with sessions() as s:
            return await coupons.mine(s, person=q.person, key=card_key)

    @eps.add(cc.EP_COUPON_REDEEM, cc.CouponRedeemIn)
    async def redeem(q: cc.CouponRedeemIn) -> cc.CouponOut:
        async with sessions() as s, s.begin():
            return await coupons.redeem_at_counter(s, q=q, key=card_key)


async def _retrying(sessions: async_sessionmaker[AsyncSession], fn: Callable[[AsyncSession], Any],
                    attempts: int = 4) -> Any:
    """Run fn in a transaction, one ledger transaction at a time in this process (its batches never wait on each
    other's row locks). Again if a concurrent caller took one of its idempotency keys first (the second run sees
    that entry and answers duplicate or conflict), or if PostgreSQL chose it as a deadlock victim against another
    process (a tap batch, another instance): nothing of a failed run was written."""
    for attempt in range(attempts):
        try:
            async with _ledger_writer, sessions() as s, s.begin():
                return await fn(s)
        except IntegrityError:
            if attempt:
                raise
        except DBAPIError as exc:
            if _sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
