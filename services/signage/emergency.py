"""Emergency broadcast (緊急情報): staff send one message to all screens or some; it takes over those screens until
cleared. Alerts in the Common Alerting Protocol (CAP 1.2) are taken too, filtered by severity and area code; a CAP
Cancel clears what it references. The pusher sends each to the screens right after the commit. No NATS, no commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage import manifest, state
from services.signage.models import bus, emergencies, screens
from services.signage.screens import require_staff
from towntip.kernel import db
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import signage as c
from towntip.kernel.db import aware

RECENT = timedelta(days=7)
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
# CAP's severities from the most severe; an alert is taken when it is at least the filter's.
SEVERITY_ORDER = ("extreme", "severe", "moderate", "minor", "unknown")


async def _check_targets(session: AsyncSession, names: tuple[str, ...] | None) -> None:
    if not names:
        return
    found = {r.name for r in await session.execute(select(screens.c.name).where(screens.c.name.in_(names)))}
    if set(names) - found:
        raise c.SCREEN_NOT_FOUND(f"no screens {', '.join(sorted(set(names) - found))}")


async def _issue(
    session: AsyncSession,
    *,
    node: str,
    now: datetime,
    title: str,
    body: str,
    severity: str,
    screens_: tuple[str, ...] | None,
    groups: tuple[str, ...],
    source: str,
    by: str | None,
    cap_key: str | None = None,
) -> c.Emergency:
    eid = str(uuid.uuid4())
    await session.execute(
        emergencies.insert().values(
            id=eid,
            title=title,
            body=body,
            severity=severity,
            screens=None if screens_ is None else list(screens_),
            groups=list(groups),
            source=source,
            cap_key=cap_key,
            issued_by=by,
            issued_at=now,
        )
    )
    await announce(
        session,
        bus,
        c.EmergencyIssued(emergency_id=eid, title=title, severity=severity, source=source),
        node=node,
        at=now,
    )
    return await _get(session, eid)


async def _get(session: AsyncSession, eid: str) -> c.Emergency:
    row = (await session.execute(select(emergencies).where(emergencies.c.id == eid))).first()
    if row is None:
        raise c.EMERGENCY_NOT_FOUND(f"no emergency message {eid}")
    return manifest.emergency_view(row)


async def send(session: AsyncSession, *, node: str, data: c.EmergencySend, now: datetime) -> c.Emergency:
    require_staff(data.actor)
    screens_ = data.screens if data.screens else None
    await _check_targets(session, screens_)
    return await _issue(
        session,
        node=node,
        now=now,
        title=data.title,
        body=data.body,
        severity=data.severity,
        screens_=screens_,
        groups=data.groups,
        source="staff",
        by=data.actor.global_handle if data.actor else None,
    )


async def _clear(session: AsyncSession, *, node: str, eid: str, now: datetime, by: str | None) -> c.Emergency:
    done = await session.execute(
        update(emergencies)
        .where(emergencies.c.id == eid, emergencies.c.cleared_at.is_(None))
        .values(cleared_at=now, cleared_by=by)
    )
    if not db.rowcount(done):
        await _get(session, eid)  # not found, or:
        raise c.EMERGENCY_CLEARED("that emergency message is cleared already")
    await state.bump(session)
    await announce(session, bus, c.EmergencyCleared(emergency_id=eid), node=node, at=now)
    return await _get(session, eid)


async def clear(session: AsyncSession, *, node: str, data: c.EmergencyAction, now: datetime) -> c.Emergency:
    require_staff(data.actor)
    return await _clear(session, node=node, eid=data.id, now=now, by=data.actor.global_handle if data.actor else None)


async def list_(session: AsyncSession, *, data: c.EmergencyListQuery, now: datetime) -> c.EmergencyList:
    require_staff(data.actor)
    rows = (await session.execute(select(emergencies).order_by(emergencies.c.issued_at.desc()))).all()
    active = [manifest.emergency_view(r) for r in rows if r.cleared_at is None]
    recent = [
        manifest.emergency_view(r) for r in rows if r.cleared_at is not None and aware(r.cleared_at) > now - RECENT
    ]
    return c.EmergencyList(active=tuple(active), recent=tuple(recent))


# ---- CAP 1.2 ----------------------------------------------------------------------------------------------------


@dataclass
class Alert:
    """What this node reads of a CAP alert."""

    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    references: list[str] = field(default_factory=list)
    headline: str = ""
    description: str = ""
    severity: str = "unknown"
    geocodes: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.sender},{self.identifier},{self.sent}"[:300]


def _text(el: Any, name: str) -> str:
    found = el.find(CAP_NS + name)
    return (found.text or "").strip() if found is not None else ""


def _pick_info(infos: list[Any]) -> Any:
    """The Japanese info block if there is one (the screens speak Japanese first), else the first."""
    for info in infos:
        if _text(info, "language").lower().startswith("ja"):
            return info
    return infos[0]


def parse_cap(xml: str) -> Alert:
    """A CAP 1.2 alert, parsed by defusedxml (no entity expansion, no external DTDs); refused if it is not one."""
    try:
        root = ElementTree.fromstring(xml.encode())
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise c.CAP_INVALID(f"not readable XML: {exc.__class__.__name__}") from None
    if root.tag != CAP_NS + "alert":
        raise c.CAP_INVALID("the root is not a CAP 1.2 <alert>")
    alert = Alert(
        identifier=_text(root, "identifier"),
        sender=_text(root, "sender"),
        sent=_text(root, "sent"),
        status=_text(root, "status"),
        msg_type=_text(root, "msgType"),
        references=_text(root, "references").split(),
    )
    if not (alert.identifier and alert.sender and alert.sent and alert.msg_type):
        raise c.CAP_INVALID("identifier, sender, sent and msgType are required")
    infos = root.findall(CAP_NS + "info")
    if infos:
        info = _pick_info(infos)
        alert.headline = _text(info, "headline") or _text(info, "event")
        alert.description = _text(info, "description")
        alert.severity = _text(info, "severity").lower() or "unknown"
        for area in info.findall(CAP_NS + "area"):
            for code in area.findall(CAP_NS + "geocode"):
                value = _text(code, "value")
                if value:
                    alert.geocodes.add(value)
    elif alert.msg_type != "Cancel":
        raise c.CAP_INVALID("an alert that is not a Cancel carries an <info>")
    return alert


def _severe_enough(severity: str, minimum: str) -> bool:
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return rank.get(severity, len(SEVERITY_ORDER)) <= rank[minimum]


def _in_area(alert: Alert, areas: tuple[str, ...]) -> bool:
    """An area filter matches a geocode equal to it or starting with it (a prefecture's code takes its towns)."""
    return not areas or any(code.startswith(a) for code in alert.geocodes for a in areas)


async def _cancel(session: AsyncSession, *, node: str, alert: Alert, now: datetime) -> c.CapOutcome:
    cleared = None
    for ref in alert.references:
        rows = await session.execute(
            select(emergencies.c.id).where(emergencies.c.cap_key == ref[:300], emergencies.c.cleared_at.is_(None))
        )
        for row in rows.all():
            cleared = await _clear(session, node=node, eid=row.id, now=now, by=None)
    return c.CapOutcome(taken=cleared is not None, why="cleared" if cleared else "nothing_to_clear", emergency=cleared)


async def ingest_cap(session: AsyncSession, *, node: str, data: c.CapIngest, now: datetime) -> c.CapOutcome:
    """A CAP alert posted by staff (the page, `POST /api/v1/signage/emergency/cap`)."""
    require_staff(data.actor)
    return await take_cap(
        session,
        node=node,
        xml=data.xml,
        min_severity=data.min_severity,
        areas=data.areas,
        screens_=data.screens,
        groups=data.groups,
        now=now,
    )


async def take_cap(
    session: AsyncSession,
    *,
    node: str,
    xml: str,
    min_severity: c.Severity,
    areas: tuple[str, ...],
    screens_: tuple[str, ...] | None = None,
    groups: tuple[str, ...] = (),
    now: datetime,
) -> c.CapOutcome:
    """Show a CAP alert if it is actual, severe enough and in the area; a Cancel clears what it references. Posted
    by staff (ingest_cap) or read from the operator's CAP feeds (cap_feed.py)."""
    alert = parse_cap(xml)
    if alert.status != "Actual":
        return c.CapOutcome(taken=False, why="not_actual")
    if alert.msg_type == "Cancel":
        return await _cancel(session, node=node, alert=alert, now=now)
    if not _severe_enough(alert.severity, min_severity):
        return c.CapOutcome(taken=False, why="below_severity")
    if not _in_area(alert, areas):
        return c.CapOutcome(taken=False, why="outside_area")
    if (await session.execute(select(emergencies.c.id).where(emergencies.c.cap_key == alert.key))).first():
        return c.CapOutcome(taken=False, why="already_taken")
    await _check_targets(session, screens_)
    if alert.msg_type == "Update":
        await _cancel(session, node=node, alert=alert, now=now)  # the update replaces what it references
    severity = alert.severity if alert.severity in SEVERITY_ORDER else "unknown"
    em = await _issue(
        session,
        node=node,
        now=now,
        title=(alert.headline or alert.identifier)[:120],
        body=(alert.description or alert.headline or alert.identifier)[:2000],
        severity=severity,
        screens_=screens_ or None,
        groups=groups,
        source="cap",
        by=None,
        cap_key=alert.key,
    )
    return c.CapOutcome(taken=True, why="shown", emergency=em)
