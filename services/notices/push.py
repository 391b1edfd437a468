"""Web Push of activity notifications (RFC 8030, encrypted per RFC 8291, signed with VAPID per RFC 8292) through
pywebpush, to the browsers a person allowed: the node's VAPID key pair, subscriptions kept per person, and the sender
that pushes each new notification once.

Security: a subscription's endpoint is a URL this node will POST to, so an attacker could name an address inside
the town's network (SSRF). Only https endpoints whose host is a public name or address are taken, unless the
service is built with `allow_local` (the tests' own push receiver). The payload is encrypted for the browser's keys:
the push service in between reads nothing. A push service that says the subscription is gone (404, 410) has it
deleted; one that keeps failing too (5 times)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices import activity
from services.notices.activity_models import activity_notes, push_subscriptions
from towntip.kernel import db
from towntip.kernel.contracts import notices_activity as c

log = logging.getLogger(__name__)
MAX_BROWSERS = 10
MAX_FAILURES = 5
BATCH = 100
TITLES = {
    "comment": "コメントがつきました / New comment",
    "friend_request": "トモダチ申請 / Friend request",
    "followed_change": "フォロー中の更新 / Update",
    "booking_reminder": "明日の予約 / Booking tomorrow",
    "points_credited": "ポイントが付きました / Points credited",
    "moderation": "職員による対応 / A decision by staff",
}


def load_or_create_vapid(data_dir: str | Path) -> Vapid:
    """The node's VAPID key pair: made on first start and kept (mode 0600) in the data dir's secrets."""
    path = Path(data_dir) / "secrets" / "vapid-private.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        vapid = Vapid()
        vapid.generate_keys()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another instance made it a moment ago: use theirs
            return Vapid.from_file(str(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(vapid.private_pem())
        return vapid
    return Vapid.from_file(str(path))


def public_key(vapid: Vapid) -> str:
    """The applicationServerKey a browser subscribes with: the uncompressed P-256 point, base64url without padding."""
    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def check_endpoint(url: str, *, allow_local: bool = False) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if allow_local and parts.scheme in ("http", "https") and host:
        return url
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith((".local", ".internal")):
        raise c.PUSH_ENDPOINT_REFUSED("a push endpoint must be an https URL of a push service on the internet")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return url
    if not ip.is_global:
        raise c.PUSH_ENDPOINT_REFUSED("a push endpoint must not be an address of a private or local network")
    return url


def _hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


async def subscribe(
    session: AsyncSession, *, data: c.PushSubscribeIn, now: datetime, allow_local: bool
) -> c.ActivitySettings:

    check_endpoint(data.endpoint, allow_local=allow_local)
    me = data.actor.global_handle
    key = _hash(data.endpoint)
    mine = (
        await session.execute(
            select(func.count())
            .select_from(push_subscriptions)
            .where(push_subscriptions.c.person == me, push_subscriptions.c.endpoint_hash != key)
        )
    ).scalar_one()
    if mine >= MAX_BROWSERS:
        raise c.PUSH_TOO_MANY(f"at most {MAX_BROWSERS} browsers per person")
    values = {
        "person": me,
        "endpoint": data.endpoint,
        "p256dh": data.p256dh,
        "auth": data.auth,
        "created_at": now,
        "failures": 0,
    }
    # A browser's endpoint belongs to whoever subscribed with it last (a shared computer changes hands).
    stmt = db.insert_on_conflict(session, push_subscriptions).values(endpoint_hash=key, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["endpoint_hash"], set_=values))
    return await activity.settings(session, q=c.SettingsQuery(actor=data.actor))


async def unsubscribe(session: AsyncSession, *, data: c.PushUnsubscribeIn) -> c.ActivitySettings:

    cond = [push_subscriptions.c.person == data.actor.global_handle]
    if data.endpoint is not None:
        cond.append(push_subscriptions.c.endpoint_hash == _hash(data.endpoint))
    await session.execute(delete(push_subscriptions).where(*cond))
    return await activity.settings(session, q=c.SettingsQuery(actor=data.actor))


def payload(note: Any) -> str:
    """What the service worker shows: a title by kind, the thing named, where to go. No post or comment text."""
    body = note.subject + (f" — {note.who}" if note.who else "")
    return json.dumps(
        {
            "title": TITLES.get(note.kind, "TownTip"),
            "body": body,
            "link": note.link or "/notifications",
            "kind": note.kind,
        },
        ensure_ascii=False,
    )


class PushSender:
    """Pushes each notification marked `push_due` once to every browser of its person (claimed first, so two
    instances never push one twice)."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], vapid: Vapid, subject: str, timeout: float = 10.0
    ) -> None:
        self.sessions, self.vapid, self.subject, self.timeout = sessions, vapid, subject, timeout
        self.wake = asyncio.Event()
        self.sent = 0

    async def _claim(self) -> list[Any]:
        async with self.sessions() as s, s.begin():
            ids = list(
                (
                    await s.execute(
                        select(activity_notes.c.id)
                        .where(activity_notes.c.push_due.is_(True))
                        .order_by(activity_notes.c.at)
                        .limit(BATCH)
                    )
                ).scalars()
            )
            if not ids:
                return []
            claimed = list(
                (
                    await s.execute(
                        update(activity_notes)
                        .where(db.among(s, activity_notes.c.id, ids), activity_notes.c.push_due.is_(True))
                        .values(push_due=False)
                        .returning(activity_notes.c.id)
                    )
                ).scalars()
            )
            return list(await s.execute(select(activity_notes).where(db.among(s, activity_notes.c.id, claimed))))

    async def round(self) -> bool:
        """Push one batch; True when more may be waiting."""
        notes = await self._claim()
        if not notes:
            return False
        async with self.sessions() as s:
            subs = list(
                await s.execute(
                    select(push_subscriptions).where(
                        db.among(s, push_subscriptions.c.person, sorted({n.person for n in notes}))
                    )
                )
            )
        for note in notes:
            for sub in (x for x in subs if x.person == note.person):
                await self._send(sub, payload(note))
        return len(notes) == BATCH

    async def _send(self, sub: Any, data: str) -> None:
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        try:
            await webpush_async(
                info,
                data=data,
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},
                timeout=self.timeout,
                ttl=24 * 3600,
            )
            self.sent += 1
            return
        except WebPushException as exc:
            status = exc.response.status if exc.response is not None else 0
            gone = status in (404, 410)
            log.info("push to a browser of %s refused (%s)%s", sub.person, status, ": removed" if gone else "")
        except Exception as exc:  # noqa: BLE001 - a push service down or unreachable: counted, tried at the next note
            gone = False
            log.info("push to a browser of %s failed: %s", sub.person, exc.__class__.__name__)
        async with self.sessions() as s, s.begin():
            where = push_subscriptions.c.endpoint_hash == sub.endpoint_hash
            if gone or sub.failures + 1 >= MAX_FAILURES:
                await s.execute(delete(push_subscriptions).where(where))
            else:
                await s.execute(update(push_subscriptions).where(where).values(failures=sub.failures + 1))
