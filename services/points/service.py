"""Points domain logic: events and their rules, the double-entry ledger, taps. No NATS, no commits here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.models import accounts, balances, bus, events, journal, postings, taps
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import Envelope, new_id, utcnow
from towntip.kernel.bus.outbox import add_events
from towntip.kernel.contracts.points import (
    Balance,
    EventDefined,
    EventIn,
    EventOut,
    Tap,
    TapOutcome,
    TapRecorded,
)

SERVICE = "points"
ASSET_POINTS = "machi-point"  # まちづくりポイント
ISSUANCE = "system:issuance"  # where issued points come from; its balance is minus all points issued


def card_account_id(card_key: bytes, idm: str) -> str:
    """A card's ledger account: a keyed hash of its IDm, so the IDm itself is never stored."""
    return "card:" + hmac.new(card_key, idm.upper().encode(), hashlib.sha256).hexdigest()


def payload_hash(tap: Tap) -> str:
    """What a tap said, so a repeat can be told from another tap under the same id. The time is taken in UTC:
    the same instant written with another offset is the same tap."""
    same = tap.model_copy(update={"tapped_at": tap.tapped_at.astimezone(UTC)})
    return hashlib.sha256(same.model_dump_json().encode()).hexdigest()


async def ensure_accounts(session: AsyncSession, ids: dict[str, tuple[str, bool]]) -> None:
    """Create accounts that are not there yet: {id: (kind, may_go_negative)}."""
    if not ids:
        return
    now = utcnow()
    stmt = db.insert_on_conflict(session, accounts).on_conflict_do_nothing(index_elements=["id"])
    await session.execute(  # sorted: concurrent batches take the locks of new accounts in one order
        stmt, [{"id": i, "kind": k, "may_go_negative": neg, "created_at": now} for i, (k, neg) in sorted(ids.items())]
    )


async def apply_deltas(session: AsyncSession, deltas: dict[str, int], *, negative_ok: set[str], asset: str) -> None:
    """Add to balances in one statement; the CHECK constraint refuses a person's or card's balance below 0."""
    rows = [
        {"account_id": a, "asset": asset, "balance": d, "may_go_negative": a in negative_ok}
        for a, d in sorted(deltas.items())
        if d
    ]
    if not rows:
        return
    # executemany of one cached statement (the keys are distinct): a multi-row VALUES built per call would be
    # compiled anew each time, which cost more than the database work.
    stmt = db.insert_on_conflict(session, balances)
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "asset"], set_={"balance": balances.c.balance + stmt.excluded.balance}
    )
    await session.execute(stmt, rows)


async def system_balance(session: AsyncSession, account_id: str, asset: str = ASSET_POINTS) -> int:
    """A system account's balance (issuance, redemption), summed from its postings.

    System accounts keep no running balance row: they may go below zero, so there is nothing to guard, and a row
    that every transaction updates would make concurrent batches wait on each other.
    """
    total = await session.execute(
        select(func.coalesce(func.sum(postings.c.amount), 0)).where(
            postings.c.account_id == account_id, postings.c.asset == asset
        )
    )
    return int(total.scalar_one())


async def balances_of(session: AsyncSession, account_ids: Sequence[str], asset: str = ASSET_POINTS) -> dict[str, int]:
    if not account_ids:
        return {}
    rows = await session.execute(
        select(balances.c.account_id, balances.c.balance).where(
            balances.c.account_id.in_(list(account_ids)), balances.c.asset == asset
        )
    )
    return {r.account_id: r.balance for r in rows}


# ---- events -------------------------------------------------------------------------------------------------


async def put_event(*, session: AsyncSession, event_in: EventIn, node: str) -> EventOut:
    """Create an event or change its rule; announces EventDefined."""
    now = utcnow()
    stmt = db.insert_on_conflict(session, events).values(
        code=event_in.code,
        name=event_in.name,
        participant_points=event_in.participant_points,
        volunteer_points=event_in.volunteer_points,
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={
            "name": stmt.excluded.name,
            "participant_points": stmt.excluded.participant_points,
            "volunteer_points": stmt.excluded.volunteer_points,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await session.execute(stmt)
    data = EventDefined(**event_in.model_dump(exclude={"v"}))
    await add_events(
        session, bus, [Envelope(type="EventDefined", node=node, service=SERVICE, data=data.model_dump(mode="json"))]
    )
    return await get_event(session=session, code=event_in.code)


def _event_stats():
    return (
        select(
            taps.c.event_code,
            func.count().label("taps"),
            func.coalesce(func.sum(taps.c.points), 0).label("points_issued"),
            func.count(taps.c.account_id.distinct()).label("people"),
        )
        .group_by(taps.c.event_code)
        .subquery()
    )


def _event_query():
    stats = _event_stats()
    return (
        select(
            events.c.code,
            events.c.name,
            events.c.participant_points,
            events.c.volunteer_points,
            func.coalesce(stats.c.taps, 0).label("taps"),
            func.coalesce(stats.c.points_issued, 0).label("points_issued"),
            func.coalesce(stats.c.people, 0).label("people"),
        )
        .select_from(events.outerjoin(stats, stats.c.event_code == events.c.code))
    )


async def get_event(*, session: AsyncSession, code: str) -> EventOut:
    row = (await session.execute(_event_query().where(events.c.code == code))).first()
    if row is None:
        raise errors.NotFound(f"unknown event {code!r}")
    return EventOut(**row._mapping)


async def list_events(*, session: AsyncSession) -> list[EventOut]:
    rows = await session.execute(_event_query().order_by(events.c.code))
    return [EventOut(**r._mapping) for r in rows]


# ---- balances -----------------------------------------------------------------------------------------------


async def get_card_balance(*, session: AsyncSession, card_key: bytes, idm: str) -> Balance:
    """A card that never tapped has 0 points and 0 taps (the seed counts card members apart from portal ones)."""
    account = card_account_id(card_key, idm)
    balance = (await balances_of(session, [account])).get(account, 0)
    count = (await session.execute(select(func.count()).where(taps.c.account_id == account))).scalar_one()
    return Balance(asset=ASSET_POINTS, balance=balance, taps=count)


# ---- taps ---------------------------------------------------------------------------------------------------


@dataclass
class TapToApply:
    tap: Tap
    duplicate: bool  # the kernel's inbox already holds its key


TapResult = TapOutcome | errors.ServiceError


async def record_taps(
    *, session: AsyncSession, items: Sequence[TapToApply], card_key: bytes, node: str
) -> list[TapResult]:
    """Credit a batch of taps: one journal entry each, issuance → card, per the event's rule.

    Returns one result per item, in order: a TapOutcome, or the error the terminal should hear.
    """
    results: list[TapResult | None] = [None] * len(items)
    fresh = [(i, it.tap) for i, it in enumerate(items) if not it.duplicate]
    codes = {t.event for _, t in fresh}
    rules = {}
    if codes:
        rows = await session.execute(
            select(events.c.code, events.c.participant_points, events.c.volunteer_points).where(
                events.c.code.in_(codes)
            )
        )
        rules = {r.code: r for r in rows}

    accepted: list[tuple[int, Tap, int, str]] = []
    for i, tap in fresh:
        rule = rules.get(tap.event)
        if rule is None:
            results[i] = errors.NotFound(f"unknown event {tap.event!r}")
            continue
        pts = rule.volunteer_points if tap.role == "volunteer" else rule.participant_points
        accepted.append((i, tap, pts, card_account_id(card_key, tap.card_idm)))

    if accepted:
        card_ids = {a for *_, a in accepted}
        running = await balances_of(session, list(card_ids))
        # A card with a balance row has an account; only new cards need one. The issuance account comes with
        # the schema (migration 0002). In steady state this skips a statement per batch.
        await ensure_accounts(session, {a: ("card", False) for a in card_ids if a not in running})
        now = utcnow()
        journal_rows, posting_rows, tap_rows, envelopes = [], [], [], []
        deltas: dict[str, int] = {}
        for i, tap, pts, account in accepted:
            jid = new_id()
            journal_rows.append(
                {"id": jid, "idempotency_key": tap.key, "kind": "tap", "payload_hash": payload_hash(tap), "created_at": now}
            )
            if pts:
                posting_rows.append({"journal_id": jid, "account_id": ISSUANCE, "asset": ASSET_POINTS, "amount": -pts})
                posting_rows.append({"journal_id": jid, "account_id": account, "asset": ASSET_POINTS, "amount": pts})
                deltas[account] = deltas.get(account, 0) + pts
            running[account] = running.get(account, 0) + pts
            tap_rows.append({
                "key": tap.key, "terminal_id": tap.terminal_id, "tap_id": tap.tap_id, "account_id": account,
                "event_code": tap.event, "role": tap.role, "points": pts, "tapped_at": tap.tapped_at,
                "recorded_at": now, "journal_id": jid,
            })
            results[i] = TapOutcome(tap_id=tap.tap_id, status="credited", points=pts, balance=running[account])
            recorded = TapRecorded(
                key=tap.key, terminal_id=tap.terminal_id, tap_id=tap.tap_id, event=tap.event, role=tap.role,
                points=pts, card_ref=account.removeprefix("card:"), tapped_at=tap.tapped_at,
            )
            envelopes.append(
                Envelope(type="TapRecorded", node=node, service=SERVICE, time=now, data=recorded.model_dump(mode="json"))
            )
        await session.execute(journal.insert(), journal_rows)
        if posting_rows:
            await session.execute(postings.insert(), posting_rows)
        await session.execute(taps.insert(), tap_rows)
        # Only the cards' running balances: the issuance account has none (see system_balance).
        await apply_deltas(session, deltas, negative_ok=set(), asset=ASSET_POINTS)
        await add_events(session, bus, envelopes)

    dups = [(i, it.tap) for i, it in enumerate(items) if it.duplicate]
    if dups:
        rows = await session.execute(
            select(taps.c.key, taps.c.points, taps.c.account_id, journal.c.payload_hash)
            .join(journal, journal.c.id == taps.c.journal_id)
            .where(taps.c.key.in_([t.key for _, t in dups]))
        )
        stored = {r.key: r for r in rows}
        current = await balances_of(session, list({r.account_id for r in stored.values()}))
        for i, tap in dups:
            row = stored.get(tap.key)
            if row is None:
                results[i] = errors.Unprocessable("repeat of a tap that was refused")
            elif row.payload_hash != payload_hash(tap):
                results[i] = errors.Conflict(f"tap id {tap.tap_id!r} was already used for a different tap")
            else:
                results[i] = TapOutcome(
                    tap_id=tap.tap_id, status="duplicate", points=row.points, balance=current.get(row.account_id, 0)
                )
    if any(r is None for r in results):
        raise RuntimeError("a tap was left without a result")
    return results  # type: ignore[return-value]
