"""Taps and cards: check-in events and their rules, taps credited through the ledger's writer, cards bound to people.
No NATS, no commits here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import String, case, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.ledger import service as ledger
from services.points.ledger.models import accounts, balances, journal
from services.points.ledger.service import ISSUANCE
from services.points.people.models import people
from services.points.tables import bus
from services.points.taps.models import (
    card_binding_requests,
    card_bindings,
    card_registration_codes,
    event_signups,
    events,
    taps,
)
from services.points.volunteers import service as volunteers
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce, announcement_rows
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.points import (
    Balance,
    BoundCard,
    CardBindPending,
    CheckinRepeated,
    EventDefined,
    EventIn,
    EventOut,
    PersonPoints,
    Tap,
    TapOutcome,
    TapRecorded,
)
from towntip.kernel.db import aware as _aware

SERVICE = "points"
ASSET_POINTS = "machi-point"  # まちづくりポイント


def card_account_id(card_key: bytes, idm: str) -> str:
    """A card's ledger account: a keyed hash of its IDm, so the IDm itself is never stored."""
    return "card:" + hmac.new(card_key, idm.upper().encode(), hashlib.sha256).hexdigest()


def payload_hash(tap: Tap) -> str:
    """What a tap said, so a repeat can be told from another tap under the same id. The time is taken in UTC:
    the same instant written with another offset is the same tap."""
    same = tap.model_copy(update={"tapped_at": tap.tapped_at.astimezone(UTC)})
    return hashlib.sha256(same.model_dump_json().encode()).hexdigest()


async def system_balance(session: AsyncSession, account_id: str, asset: str = ASSET_POINTS) -> int:
    """A system account's balance (issuance, redemption), summed from its postings (ledger.system_balance)."""
    return await ledger.system_balance(session, account_id, asset)


async def balances_of(session: AsyncSession, account_ids: Sequence[str], asset: str = ASSET_POINTS) -> dict[str, int]:
    if not account_ids:
        return {}
    rows = await session.execute(
        select(balances.c.account_id, balances.c.balance).where(
            db.among(session, balances.c.account_id, account_ids), balances.c.asset == asset
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
        **_notebook_facts(event_in),
        **_schedule(event_in),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={
            "name": stmt.excluded.name,
            "participant_points": stmt.excluded.participant_points,
            "volunteer_points": stmt.excluded.volunteer_points,
            "updated_at": stmt.excluded.updated_at,
            # The notebook's facts change only when the request names them (null clears one).
            **{k: getattr(stmt.excluded, k) for k in _notebook_facts(event_in, only_set=True)},
            **{k: getattr(stmt.excluded, k) for k in _schedule(event_in, only_set=True)},
        },
    )
    await session.execute(stmt)
    await announce(session, bus, EventDefined(**event_in.model_dump(exclude={"v"})), node=node)
    if "capacity" in event_in.model_fields_set:  # more seats: the first waiting move up
        from services.points.signups.service import fill_seats
        await fill_seats(session, code=event_in.code, node=node, now=now)
    return await get_event(session=session, code=event_in.code)


SCHEDULE = ("starts_at", "ends_at", "venue_facility", "venue_booking", "venue_name", "capacity")


def _schedule(event_in: EventIn, *, only_set: bool = False) -> dict[str, Any]:
    """When and where, as stored (times in UTC: SQLite keeps no offset). The start and the end change together (a
    request naming one sets both), so that a stored end is never before its start."""
    named = set(event_in.model_fields_set)
    if named & {"starts_at", "ends_at"}:
        named |= {"starts_at", "ends_at"}
    out = {}
    for name in SCHEDULE:
        if only_set and name not in named:
            continue
        v = getattr(event_in, name)
        out[name] = v.astimezone(UTC) if name.endswith("_at") and v is not None else v
    return out


def _notebook_facts(event_in: EventIn, *, only_set: bool = False) -> dict[str, Any]:
    """The notebook's facts of an event as stored: minutes and grams, so sums stay exact integers."""
    facts = {
        "field": ("field", event_in.field), "activity": ("activity", event_in.activity),
        "minutes": ("hours", None if event_in.hours is None else round(event_in.hours * 60)),
        "co2_g": ("co2_kg", None if event_in.co2_kg is None else round(event_in.co2_kg * 1000)),
        "kcal": ("kcal", event_in.kcal),
    }
    return {col: v for col, (name, v) in facts.items() if not only_set or name in event_in.model_fields_set}


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
    seats = _seats()
    return (
        select(
            events.c.code,
            events.c.name,
            events.c.participant_points,
            events.c.volunteer_points,
            func.coalesce(stats.c.taps, 0).label("taps"),
            func.coalesce(stats.c.points_issued, 0).label("points_issued"),
            func.coalesce(stats.c.people, 0).label("people"),
            events.c.field,
            events.c.activity,
            (events.c.minutes / literal(60.0)).label("hours"),
            (events.c.co2_g / literal(1000.0)).label("co2_kg"),
            events.c.kcal,
            *(events.c[name] for name in SCHEDULE),
            func.coalesce(seats.c.signed_up, 0).label("signed_up"),
            func.coalesce(seats.c.waitlisted, 0).label("waitlisted"),
        )
        .select_from(events.outerjoin(stats, stats.c.event_code == events.c.code)
                     .outerjoin(seats, seats.c.event_code == events.c.code))
    )


def _seats():
    s = event_signups
    return (
        select(
            s.c.event_code,
            func.sum(case((s.c.state == "signed_up", 1), else_=0)).label("signed_up"),
            func.sum(case((s.c.state == "waitlisted", 1), else_=0)).label("waitlisted"),
        )
        .group_by(s.c.event_code)
        .subquery()
    )


def _out(row: Any) -> EventOut:
    data = dict(row._mapping)
    for name in ("starts_at", "ends_at"):
        data[name] = _aware(data[name])
    cap = data["capacity"]
    data["seats_left"] = None if cap is None else max(0, cap - data["signed_up"])
    return EventOut.model_validate(data)


async def get_event(*, session: AsyncSession, code: str) -> EventOut:
    row = (await session.execute(_event_query().where(events.c.code == code))).first()
    if row is None:
        raise pc.EVENT_NOT_FOUND(f"unknown event {code!r}")
    return _out(row)


async def list_events(*, session: AsyncSession) -> list[EventOut]:
    rows = await session.execute(_event_query().order_by(events.c.code))
    return [_out(r) for r in rows]


# ---- balances -----------------------------------------------------------------------------------------------


async def get_card_balance(*, session: AsyncSession, card_key: bytes, idm: str) -> Balance:
    """A card that never tapped has 0 points and 0 taps (the seed counts card members apart from portal ones)."""
    account = card_account_id(card_key, idm)
    balance = (await balances_of(session, [account])).get(account, 0)
    count = (await session.execute(select(func.count()).where(taps.c.account_id == account))).scalar_one()
    return Balance(asset=ASSET_POINTS, balance=balance, taps=count)


# ---- taps ---------------------------------------------------------------------------------------------------


# ---- cards bound to people --------------------------------------------------------------------------------------

BIND_WINDOW = timedelta(minutes=15)


def person_account_id(person: str) -> str:
    """A person's ledger account at this node: the identity service's user id here."""
    return f"person:{person}"


def card_ref(card_account: str) -> str:
    """What a person sees of a card: 8 hex digits of its keyed hash (never the IDm)."""
    return card_account.removeprefix("card:")[:8]


async def _routes(session: AsyncSession, cards: Sequence[str], now: Any) -> tuple[dict[str, str], set[str]]:
    """({card: person it credits}, {cards bound to nobody with a binding request waiting}), in one query."""
    if not cards:
        return {}, set()
    routes, pending, _ = await _routes_and_handles(session, cards, now)
    return routes, pending


async def _routes_and_handles(session: AsyncSession, cards: Sequence[str], now: Any
                              ) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """_routes, and {person account: global handle} of the people the bound cards credit (from the people
    directory, where it knows them): in the same one query."""
    if not cards:
        return {}, set(), {}
    b, r = card_bindings, card_binding_requests
    rows = await session.execute(
        select(b.c.card_account, b.c.person_account, literal("bound").label("state"),
               people.c.global_handle.label("handle"))
        .select_from(b.outerjoin(people, literal("person:") + people.c.user_id == b.c.person_account))
        .where(db.among(session, b.c.card_account, cards))
        .union_all(
            select(r.c.card_account, r.c.person_account, literal("pending").label("state"),
                   literal(None, String).label("handle"))
            .where(db.among(session, r.c.card_account, cards), r.c.expires_at > now)
        )
    )
    found = list(rows)
    routes = {row.card_account: row.person_account for row in found if row.state == "bound"}
    pending = {row.card_account for row in found if row.state == "pending" and row.card_account not in routes}
    handles = {row.person_account: row.handle for row in found if row.state == "bound" and row.handle}
    return routes, pending, handles


async def request_binding(*, session: AsyncSession, card_key: bytes, person: str, idm: str) -> CardBindPending:
    """A person asks to bind a card. Typing an IDm proves nothing (anyone with a reader can read one), so the request
    binds nothing by itself: while it waits (BIND_WINDOW), the card's ordinary taps at any terminal show a one-time
    code with the card's outcome (_pending_codes), and whoever then enters that code while logged in
    (register_with_code) gets the card: the person who saw the screen when the card touched it, its holder."""
    card = card_account_id(card_key, idm)
    mine = person_account_id(person)
    bound = (await session.execute(select(card_bindings.c.person_account)
                                   .where(card_bindings.c.card_account == card))).first()
    if bound is not None:
        if bound.person_account == mine:
            raise pc.CARD_ALREADY_YOURS("this card is already yours / このカードは登録済みです")
        raise pc.CARD_BOUND_ELSEWHERE("this card is bound to another account: it must be reported lost there first "
                              "/ 別のアカウントに登録されています")
    now = utcnow()
    stmt = db.insert_on_conflict(session, card_binding_requests).values(
        card_account=card, person_account=mine, requested_at=now, expires_at=now + BIND_WINDOW)
    await session.execute(stmt.on_conflict_do_update(index_elements=["card_account"], set_={
        "person_account": stmt.excluded.person_account, "requested_at": stmt.excluded.requested_at,
        "expires_at": stmt.excluded.expires_at}))
    return CardBindPending(card_ref=card_ref(card), expires_at=now + BIND_WINDOW)


async def unbind_card(*, session: AsyncSession, person: str, ref: str) -> PersonPoints:
    """A lost card: its taps no longer credit the person (who keeps the points already earned)."""
    mine = person_account_id(person)
    rows = (await session.execute(select(card_bindings.c.card_account)
                                  .where(card_bindings.c.person_account == mine))).scalars().all()
    match = [c for c in rows if c.removeprefix("card:").startswith(ref)]
    if len(match) != 1:
        raise pc.CARD_NOT_FOUND(f"no card {ref!r} is bound to this account")
    await session.execute(delete(card_bindings).where(card_bindings.c.card_account == match[0]))
    return await person_points(session=session, person=person)


async def person_points(*, session: AsyncSession, person: str) -> PersonPoints:
    mine = person_account_id(person)
    balance = (await balances_of(session, [mine])).get(mine, 0)
    cards = (await session.execute(select(card_bindings.c.card_account, card_bindings.c.bound_at)
                                   .where(card_bindings.c.person_account == mine)
                                   .order_by(card_bindings.c.bound_at))).all()
    pending = (await session.execute(select(card_binding_requests.c.card_account, card_binding_requests.c.expires_at)
                                     .where(card_binding_requests.c.person_account == mine,
                                            card_binding_requests.c.expires_at > utcnow()))).all()
    return PersonPoints(
        asset=ASSET_POINTS, balance=balance,
        cards=[BoundCard(card_ref=card_ref(r.card_account), bound_at=_aware(r.bound_at)) for r in cards],
        pending=[CardBindPending(card_ref=card_ref(r.card_account), expires_at=_aware(r.expires_at)) for r in pending],
    )


# ---- card registration at a terminal ------------------------------------------------------------------------

REG_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read off a screen and typed on a phone
REG_LENGTH = 8  # 40 bits: with 10 minutes to live and the portal's throttle, not guessable
REG_WINDOW = timedelta(minutes=10)


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


async def _registration_touch(session: AsyncSession, tap: Tap, card_key: bytes) -> TapResult:
    """A touch at a terminal in registration mode: a one-time code for the terminal to show. Entered on the portal
    by a logged-in person (register_with_code), it binds this card to them."""
    card = card_account_id(card_key, tap.card_idm)
    bound = (await session.execute(select(card_bindings.c.person_account)
                                   .where(card_bindings.c.card_account == card))).first()
    if bound is not None:
        return pc.CARD_ALREADY_REGISTERED("this card is already registered: report it lost on My Page first "
                               "/ このカードは登録済みです")
    code = await _new_code(session, tap_key=tap.key, card=card, now=utcnow())
    balance = (await balances_of(session, [card])).get(card, 0)
    return TapOutcome(tap_id=tap.tap_id, status="credited", points=0, balance=balance, display=code)


async def _new_code(session: AsyncSession, *, tap_key: str, card: str, now: Any) -> str:
    """A one-time code for the card, made by the tap `tap_key` (unique: one tap makes one code at most); only its
    hash is kept. Returns it as the terminal shows it (XXXX-XXXX)."""
    code = "".join(secrets.choice(REG_ALPHABET) for _ in range(REG_LENGTH))
    await session.execute(card_registration_codes.insert().values(
        code_hash=_code_hash(code), tap_key=tap_key, card_account=card, created_at=now, expires_at=now + REG_WINDOW))
    return f"{code[:4]}-{code[4:]}"


def pending_display(code: str) -> str:
    """What an ordinary tap of a card with a binding request waiting shows besides its points (the terminal appends
    it to both of its lines, edge/feedback/messages.py): the code, and where to enter it. Short: a small screen."""
    return f"{code}（登録申請中：マイページで入力 / registration pending: enter on My Page）"


async def _pending_codes(session: AsyncSession, cards: set[str], accepted: Sequence[tuple[int, Tap, int, str]],
                         now: Any) -> tuple[dict[int, str], dict[str, str]]:
    """({index of a tap in the batch: what it displays}, {card: person}), for taps of cards with a binding request
    waiting (`cards`); the second part names those of them bound while this batch waited for their request's lock.

    The tap itself credits the card as any tap does (no binding, no transfer); a code shown with its outcome, entered
    on the portal (register_with_code), binds the card to whoever enters it: the person at the terminal when the
    card touched it. A card gets a new code only while it has no live (unused, unexpired) one, and then from its last
    tap in the batch: one live code per card at a time, however often it touches (a spool re-sent after a day
    offline makes one); a person who missed it touches a terminal in registration mode, which always makes one.
    The request rows are locked first (PostgreSQL; SQLite has one writer): two batches with taps of one card wait
    for each other, and the second sees the first's code. Everything is in the batch's transaction, with its inbox
    rows: a redelivered tap is a duplicate and reaches none of this."""
    if not cards:
        return {}, {}
    r, c = card_binding_requests, card_registration_codes
    waiting = set((await session.execute(select(r.c.card_account).where(
        db.among(session, r.c.card_account, sorted(cards)), r.c.expires_at > now,
    ).order_by(r.c.card_account).with_for_update())).scalars())
    bound: dict[str, str] = {}
    if cards - waiting:  # a code entered meanwhile bound the card (bind_card removes the request first)
        rows = await session.execute(select(card_bindings.c.card_account, card_bindings.c.person_account).where(
            db.among(session, card_bindings.c.card_account, sorted(cards - waiting))))
        bound = {row.card_account: row.person_account for row in rows}
    if not waiting:
        return {}, bound
    live = set((await session.execute(select(c.c.card_account).where(
        db.among(session, c.c.card_account, list(waiting)), c.c.used_at.is_(None), c.c.expires_at > now,
    ))).scalars())
    last: dict[str, tuple[int, Tap]] = {}
    for i, tap, _pts, card in accepted:
        if card in waiting and card not in live:
            last[card] = (i, tap)
    shown = {i: pending_display(await _new_code(session, tap_key=tap.key, card=card, now=now))
             for card, (i, tap) in sorted(last.items())}
    return shown, bound


async def register_with_code(*, session: AsyncSession, person: str, code: str, node: str) -> PersonPoints:
    """Bind the card whose touch showed `code` to the person; its points move to them. The touch was one in
    registration mode, or an ordinary tap while a binding request waited (_pending_codes): either way whoever enters
    the code saw the terminal's screen when the card touched it, whoever asked online (the request names nobody
    who may bind)."""
    now = utcnow()
    r = card_registration_codes
    row = (await session.execute(select(r).where(r.c.code_hash == _code_hash(code)).with_for_update())).first()
    if row is None or row.used_at is not None or _aware(row.expires_at) <= now:
        raise pc.CARD_CODE_INVALID("this code is unknown, used or expired: touch the card again in registration mode "
                              "/ コードが無効か期限切れです。もう一度カードをタッチしてください")
    mine = person_account_id(person)
    bound = (await session.execute(select(card_bindings.c.person_account)
                                   .where(card_bindings.c.card_account == row.card_account))).first()
    if bound is not None:
        if bound.person_account == mine:
            raise pc.CARD_ALREADY_YOURS("this card is already yours / このカードは登録済みです")
        raise pc.CARD_BOUND_ELSEWHERE("this card is bound to another account / 別のアカウントに登録されています")
    await bind_card(session, card=row.card_account, person=mine, method="code", node=node, now=now,
                    key=f"bind:{row.tap_key}")
    await session.execute(update(r).where(r.c.code_hash == row.code_hash).values(used_at=now, used_by=mine))
    return await person_points(session=session, person=person)


async def bind_card(session: AsyncSession, *, card: str, person: str, method: str, node: str, now: Any,
                    key: str) -> None:
    """The card's balances (every asset) move to the person in one journal entry (idempotency key `key`, from the
    action that bound it); its later taps credit them. Its binding request goes first: a tap batch locks the
    request before the card's balance (_pending_codes), so both take them in that order."""
    await session.execute(delete(card_binding_requests).where(card_binding_requests.c.card_account == card))
    held = (await session.execute(select(balances.c.asset, balances.c.balance).where(
        balances.c.account_id == card, balances.c.balance > 0).order_by(balances.c.asset))).all()
    legs = tuple(leg for h in held for leg in (ledger.Leg(card, h.asset, -h.balance),
                                               ledger.Leg(person, h.asset, h.balance)))
    if legs:
        [moved] = await ledger.post_entries(session, [ledger.Entry(
            key=key, kind="bind", legs=legs, actor=person, memo=f"card bound ({method})",
        )], node=node)
        if isinstance(moved, errors.ServiceError):
            raise moved
    for account, kind in ((card, "card"), (person, "person")):  # a card that never earned has no account yet
        await session.execute(db.insert_on_conflict(session, accounts).values(
            id=account, kind=kind, may_go_negative=False, created_at=now).on_conflict_do_nothing(index_elements=["id"]))
    await session.execute(card_bindings.insert().values(card_account=card, person_account=person, bound_at=now,
                                                        method=method))


@dataclass
class TapToApply:
    tap: Tap
    duplicate: bool  # the kernel's inbox already holds its key


TapResult = TapOutcome | errors.ServiceError


Results = list[TapResult | None]  # one per tap of the batch, filled step by step
Accepted = list[tuple[int, Tap, int, str]]  # (index in the batch, tap, points per its event's rule, card account)


async def record_taps(
    *, session: AsyncSession, items: Sequence[TapToApply], card_key: bytes, node: str
) -> list[TapResult]:
    """Credit a batch of taps: one journal entry each, issuance → card, per the event's rule.

    Returns one result per item, in order: a TapOutcome, or the error the terminal should hear. In named steps, each
    with the same statements as ever (no round trip more): the touches that are no check-in; the check-ins' rules;
    the credit through the ledger's writer (one statement); the repeats.
    """
    results: Results = [None] * len(items)
    fresh = await _other_touches(session, items, results, card_key=card_key, node=node)
    accepted = await _checkins(session, fresh, results, card_key=card_key)
    if accepted:
        await _credit(session, accepted, results, node=node)
    await _repeats(session, items, results, card_key)
    if any(r is None for r in results):
        raise RuntimeError("a tap was left without a result")
    return results  # type: ignore[return-value]


async def _other_touches(session: AsyncSession, items: Sequence[TapToApply], results: Results, *, card_key: bytes,
                         node: str) -> list[tuple[int, Tap]]:
    """Answer the touches that are no new check-in (donation, coupon, registration, a mode not taken); returns the
    new check-ins, with their index in the batch. Repeats of check-ins and registrations wait for `_repeats`."""
    fresh = []
    for i, it in enumerate(items):
        # the donor's card confirms their pledge; repeats too (services/points/donations/)
        if it.tap.mode == "donation":
            from services.points.donations.service import confirm_by_touch
            results[i] = await confirm_by_touch(session, it.tap, card_key=card_key, node=node)
        elif it.tap.mode == "coupon":  # a coupon of the terminal's kind (ref), of the card's owner; repeats too
            from services.points.coupons.service import redeem_by_touch
            results[i] = await redeem_by_touch(session, it.tap, card_key=card_key, duplicate=it.duplicate)
        elif it.duplicate:
            continue
        elif it.tap.mode == "register":
            results[i] = await _registration_touch(session, it.tap, card_key)
        elif it.tap.mode != "checkin":
            results[i] = pc.TAP_MODE_UNSUPPORTED(f"this node does not take {it.tap.mode!r} touches yet")
        else:
            fresh.append((i, it.tap))
    return fresh


async def _checkins(session: AsyncSession, fresh: list[tuple[int, Tap]], results: Results, *, card_key: bytes
                    ) -> Accepted:
    """The check-ins of known events with their points (one query for the rules); a tap at an unknown event is
    refused."""
    codes = {t.event for _, t in fresh}
    rules = {}
    if codes:
        rows = await session.execute(
            select(events.c.code, events.c.participant_points, events.c.volunteer_points).where(
                events.c.code.in_(codes)
            )
        )
        rules = {r.code: r for r in rows}
    accepted: Accepted = []
    for i, tap in fresh:
        rule = rules.get(tap.event)
        if rule is None:
            results[i] = pc.EVENT_NOT_FOUND(f"unknown event {tap.event!r}")
            continue
        pts = rule.volunteer_points if tap.role == "volunteer" else rule.participant_points
        accepted.append((i, tap, pts, card_account_id(card_key, tap.card_idm)))
    return accepted


async def _credit(session: AsyncSession, accepted: Accepted, results: Results, *, node: str) -> None:
    """Post the accepted check-ins through the ledger's one writer, with their tap rows and TapRecorded events in
    its statement; each outcome carries the credited balance just after its tap. A check-in by a person (or an
    unbound card) who checked in to that event before is answered "already" and credits nothing."""
    now = utcnow()
    card_ids = sorted({a for *_, a in accepted})
    # Where a card's points go: the person it is bound to, else the card's own account. A card with a binding
    # request waiting stays unbound: its tap credits the card and shows a code (typing an IDm proves nothing;
    # the code entered on the portal binds the card to the person who saw it when the card touched).
    routes, pending, handles = await _routes_and_handles(session, card_ids, now)
    displays, bound_meanwhile = await _pending_codes(session, pending, accepted, now)
    routes.update(bound_meanwhile)
    # A person an opening's organiser accepted as a volunteer for the event (the roster, from the sns service's
    # matching) earns the event's volunteer points whatever role the terminal was set to.
    accepted, volunteering = await _rostered(session, accepted, routes, handles)
    # Once per event: the holder (person, else card) and the card, each at most one credited tap per event.
    every = [(i, tap, pts, routes.get(card, card), card) for i, tap, pts, card in accepted]
    credited, already = await _once_per_event(session, every)
    # One journal entry per tap, through the ledger's one writer: issuance → the credited account, or, for a
    # tap worth 0 points, the entry alone. Its hash is the tap's (a repeat under the same id that says
    # something else is a conflict, see the duplicates below).
    entries = [ledger.Entry(
        key=tap.key, kind="tap", actor=f"terminal:{tap.terminal_id}", digest=payload_hash(tap),
        legs=(ledger.Leg(ISSUANCE, ASSET_POINTS, -pts), ledger.Leg(account, ASSET_POINTS, pts)) if pts else (),
    ) for _, tap, pts, account, _ in credited]
    repeated = [CheckinRepeated(key=tap.key, terminal_id=tap.terminal_id, tap_id=tap.tap_id, event=tap.event or "",
                                role=tap.role, card_ref=card.removeprefix("card:"), tapped_at=tap.tapped_at,
                                **_who(account, handles)) for _, tap, _, account, card in already]

    def tap_rows(posted: list[ledger.PostResult]) -> list[db.Rows]:
        """The taps as recorded, each naming its journal entry, and their TapRecorded events (and the batch's
        CheckinRepeated): written in the ledger's statement (one round trip on PostgreSQL)."""
        rows, recorded = [], []
        for (i, tap, pts, account, card), r in zip(credited, posted, strict=True):
            if not isinstance(r, ledger.Posted) or r.status != "posted":
                continue  # left without an outcome: reported below
            rows.append({
                "key": tap.key, "terminal_id": tap.terminal_id, "tap_id": tap.tap_id, "account_id": card,
                "event_code": tap.event, "role": "volunteer" if i in volunteering else tap.role, "points": pts,
                "tapped_at": tap.tapped_at.astimezone(UTC),  # SQLite keeps no offset: always store UTC
                "recorded_at": now, "journal_id": r.journal_id, "holder": account,
            })
            recorded.append(TapRecorded(
                key=tap.key, terminal_id=tap.terminal_id, tap_id=tap.tap_id, event=tap.event,
                role="volunteer" if i in volunteering else tap.role,
                points=pts, card_ref=card.removeprefix("card:"), tapped_at=tap.tapped_at, **_who(account, handles),
            ))
        return [db.Rows(taps, rows), announcement_rows(bus, [*recorded, *repeated], node=node, at=now)]

    running: dict[str, int] = {}
    if credited:
        # A tap's row names its card's account: every card of the batch is opened if new, and every person
        # credited, whether or not the tap earned anything (the ledger opens the accounts its legs name).
        batch = await ledger.post_batch(session, entries, node=node, announce=False, now=now, empty_ok=True,
                                        open_accounts=card_ids + sorted(set(routes.values())), also=tap_rows,
                                        keys_are_new=True)
        running = {a: b for (a, asset), b in batch.balances.items() if asset == ASSET_POINTS}
        posted = batch.results
    else:
        await db.write_rows(session, [announcement_rows(bus, repeated, node=node, at=now)])
        posted = []
    # Each tap's outcome carries the credited balance just after it: walk back from the balance after the batch.
    missing = sorted({a for _, _, _, a, _ in every} - running.keys())
    running.update(await balances_of(session, missing) if missing else {})
    outcome_of = dict(zip((i for i, *_ in credited), posted, strict=True))
    for i, tap, pts, account, _ in reversed(every):
        r = outcome_of.get(i)
        if r is None:  # already checked in: nothing credited, the balance as it stands after the taps before
            results[i] = TapOutcome(tap_id=tap.tap_id, status="already", points=0, balance=running.get(account, 0),
                                    display=displays.get(i, ""))
        elif isinstance(r, errors.ServiceError):
            results[i] = r
        elif r.status != "posted":  # twice in one batch (the inbox marks the second a duplicate first)
            results[i] = pc.TAP_ID_REUSED(f"tap id {tap.tap_id!r} was already used for another entry")
        else:
            results[i] = TapOutcome(tap_id=tap.tap_id, status="credited", points=pts,
                                    balance=running.get(account, 0), display=displays.get(i, ""))
            running[account] = running.get(account, 0) - pts


async def _rostered(session: AsyncSession, accepted: Accepted, routes: dict[str, str], handles: dict[str, str]
                    ) -> tuple[Accepted, set[int]]:
    """The check-ins of people on their event's volunteer roster get the event's volunteer points (one query for
    the roster, one for the rules of the events concerned); returns the check-ins and the indexes now
    volunteering."""
    who = {i: (tap.event, handles.get(routes.get(card, ""), "")) for i, tap, _, card in accepted if tap.event}
    on = await volunteers.rostered(session, {w for w in who.values() if w[1]})
    if not on:
        return accepted, set()
    rules = dict((await session.execute(select(events.c.code, events.c.volunteer_points).where(
        events.c.code.in_(sorted({e for e, _ in on}))))).tuples().all())
    out: Accepted = []
    volunteering: set[int] = set()
    for i, tap, pts, card in accepted:
        if who.get(i) in on:
            volunteering.add(i)
            pts = rules.get(tap.event, pts)
        out.append((i, tap, pts, card))
    return out, volunteering


Routed = list[tuple[int, Tap, int, str, str]]  # (index, tap, points, credited account = holder, card account)


async def _once_per_event(session: AsyncSession, every: Routed) -> tuple[Routed, Routed]:
    """(taps to credit, taps of a holder or card that checked in to the event before: earlier, or earlier in this
    batch). One query on the unique index (event, holder) and the card's index. A person who checked in as a
    participant and touches again as a volunteer (or the other way) earns nothing more: one credit per event,
    whichever role came first (docs/points.md)."""
    codes = sorted({tap.event for _, tap, *_ in every if tap.event})
    holders = sorted({h for *_, h, _ in every})
    cards = sorted({c for *_, c in every})
    rows = await session.execute(
        select(taps.c.event_code, taps.c.holder, taps.c.account_id).where(
            db.among(session, taps.c.event_code, codes),
            or_(db.among(session, taps.c.holder, holders), db.among(session, taps.c.account_id, cards))))
    seen: set[tuple[str | None, str | None]] = set()
    for r in rows:
        seen.update(((r.event_code, r.holder), (r.event_code, r.account_id)))
    credited: Routed = []
    already: Routed = []
    for item in every:
        _, tap, _, holder, card = item
        if (tap.event, holder) in seen or (tap.event, card) in seen:
            already.append(item)
            continue
        seen.update(((tap.event, holder), (tap.event, card)))
        credited.append(item)
    return credited, already


def _who(account: str, handles: dict[str, str]) -> dict[str, str | None]:
    """The person a tap's events name (never the card's IDm): their handle and user id, if the card is bound."""
    if not account.startswith("person:"):
        return {}
    return {"person": handles.get(account), "user_id": account.removeprefix("person:")}


async def _repeats(session: AsyncSession, items: Sequence[TapToApply], results: Results, card_key: bytes) -> None:
    """Answer the repeats the inbox told apart: as the tap was recorded (duplicate), or refused if it said
    something else under the same id, or if the first was refused."""
    dups = [(i, it.tap) for i, it in enumerate(items) if it.duplicate and results[i] is None]
    if not dups:
        return
    rows = await session.execute(
        select(taps.c.key, taps.c.points, taps.c.account_id, journal.c.payload_hash)
        .join(journal, journal.c.id == taps.c.journal_id)
        .where(db.among(session, taps.c.key, [t.key for _, t in dups]))
    )
    stored = {r.key: r for r in rows}
    current = await balances_of(session, list({r.account_id for r in stored.values()}))
    shown = set((await session.execute(select(card_registration_codes.c.tap_key).where(
        db.among(session, card_registration_codes.c.tap_key, [t.key for _, t in dups])))).scalars())
    lost = [(i, t) for i, t in dups if t.key not in stored and t.key not in shown and t.mode == "checkin"]
    already = await _already_answered(session, lost, card_key) if lost else {}
    for i, tap in dups:
        row = stored.get(tap.key)
        if row is None and tap.key in shown:  # a registration touch heard twice: its code was shown once
            results[i] = TapOutcome(tap_id=tap.tap_id, status="duplicate", points=0, balance=0)
        elif row is None and i in already:  # a check-in answered "already": so again
            results[i] = TapOutcome(tap_id=tap.tap_id, status="already", points=0, balance=already[i])
        elif row is None:
            results[i] = pc.TAP_REPEAT_OF_REFUSED("repeat of a tap that was refused")
        elif row.payload_hash != payload_hash(tap):
            results[i] = pc.TAP_ID_REUSED(f"tap id {tap.tap_id!r} was already used for a different tap")
        else:
            results[i] = TapOutcome(
                tap_id=tap.tap_id, status="duplicate", points=row.points, balance=current.get(row.account_id, 0)
            )


async def _already_answered(session: AsyncSession, lost: list[tuple[int, Tap]], card_key: bytes) -> dict[int, int]:
    """{index: balance} of the repeated check-ins without a tap row whose card (or the person it is bound to) has a
    tap at that event: the first was answered "already" (a redelivery after a lost ack)."""
    cards = {i: card_account_id(card_key, t.card_idm) for i, t in lost}
    bound = dict((await session.execute(select(card_bindings.c.card_account, card_bindings.c.person_account).where(
        db.among(session, card_bindings.c.card_account, sorted(set(cards.values())))))).tuples().all())
    who = sorted(set(cards.values()) | set(bound.values()))
    rows = await session.execute(select(taps.c.event_code, taps.c.holder, taps.c.account_id).where(
        db.among(session, taps.c.event_code, sorted({t.event for _, t in lost if t.event})),
        or_(db.among(session, taps.c.holder, who), db.among(session, taps.c.account_id, who))))
    seen = {(r.event_code, x) for r in rows for x in (r.holder, r.account_id)}
    found = {i: bound.get(cards[i], cards[i]) for i, t in lost
             if (t.event, cards[i]) in seen or (t.event, bound.get(cards[i])) in seen}
    current = await balances_of(session, sorted(set(found.values())))
    return {i: current.get(a, 0) for i, a in found.items()}
