"""NATS adapter of activity notifications: durable consumers of this node's sns, points, bookings and projects
events (and the peers' projects events sourced into FED_<NODE>_PROJECTS), each applied once through the kernel's
inbox, so an event delivered again never notifies twice (the notification's `source_key` guards a second time).

What tells whom:
- sns CommentPublished: the post's author (not when they commented on their own post); FriendRequested: its
  addressee; ModerationDecided: the person staff decided about (hide, warn, suspend; an appeal upheld or lifted),
  linking to /moderation where they see the reason and may appeal; OpeningApplied: the opening's organiser;
  OpeningApplicationAccepted, OpeningApplicationDeclined: the applicant (matching);
- points TapRecorded of a bound card with points, DonationConfirmed with points: the person credited;
- bookings BookingConfirmed: kept for the reminder the day before (activity.remind_tomorrow); BookingCancelled,
  BookingRejected, BookingNoShow forget it;
- projects ThemeChanged, ThemePhaseAdvanced, ThemeCallOpened, ThemeCompleted, CaseChanged (this node's, or a
  peer's): every follower, asked of the projects service over the bus (the follows stay there; no handle is put
  on a projects stream, which peers source)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.notices import activity
from services.notices.activity_models import activity_bookings
from towntip.kernel import db
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, Delivery, Outcome, Rejected, own_event, peer_event
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import federation as f
from towntip.kernel.contracts import notices_activity as c

SERVICE = c.SERVICE


@dataclass(frozen=True)
class FollowedChange:
    """A followed theme or case changed: its followers are asked of the projects service when applied."""

    kind: str  # theme | case
    origin_node: str
    item_id: str
    what: str  # the event type
    key: str
    at: datetime
    title: str = ""  # the event's own title where it has one (the projects copy may lag behind it)


@dataclass(frozen=True)
class BookingSeen:
    booking_id: str
    booker: str | None
    facility_id: str
    starts_at: datetime | None  # None: the booking is gone (cancelled, rejected, no-show)


Item = list[activity.NewNote] | FollowedChange | BookingSeen | None
Followers = Callable[[f.FollowersQuery], Awaitable[f.Followers]]


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str | int) or value == "":
        raise Rejected(f"the event has no {name}")
    return str(value)


def _sns(type_: str, data: dict[str, Any], key: str, at: datetime) -> Item:
    if type_ == "CommentPublished":
        author, post_author = _text(data, "author"), _text(data, "post_author")
        if author == post_author:
            return None
        return [
            activity.NewNote(
                person=post_author,
                kind="comment",
                subject=_text(data, "post_id"),
                who=author,
                at=at,
                link=f"/communities/{_text(data, 'community_id')}/posts/{_text(data, 'post_id')}",
                source_key=f"sns:comment:{_text(data, 'comment_id')}",
            )
        ]
    if type_ == "FriendRequested":
        return [
            activity.NewNote(
                person=_text(data, "addressee"),
                kind="friend_request",
                subject=str(data.get("sender_name") or ""),
                who=_text(data, "sender"),
                link="/friends",
                at=at,
                source_key=f"sns:friend:{_text(data, 'request_id')}",
            )
        ]
    if type_ in ("OpeningApplied", "OpeningApplicationAccepted", "OpeningApplicationDeclined"):
        return _opening(type_, data, at)
    if type_ == "ModerationDecided":
        action = _text(data, "action")
        return [
            activity.NewNote(
                person=_text(data, "person"),
                kind="moderation",
                subject=action,
                link="/moderation",
                at=at,
                source_key=f"sns:moderation:{_text(data, 'action_id')}:{action}",
            )
        ]
    return None


def _opening(type_: str, data: dict[str, Any], at: datetime) -> Item:
    """Matching (issue 20 point 5): the organiser hears of an application, the applicant of the answer."""
    oid, aid = _text(data, "opening_id"), _text(data, "application_id")
    if type_ == "OpeningApplied":
        if not data.get("organiser"):
            return None  # the organiser's account is gone
        return [activity.NewNote(person=_text(data, "organiser"), kind="opening_applied",
                                 subject=str(data.get("title") or ""), who=_text(data, "applicant"), at=at,
                                 link=f"/openings/{oid}/applicants", source_key=f"sns:opening:{aid}:applied:{at}")]
    kind: c.Kind = "opening_accepted" if type_ == "OpeningApplicationAccepted" else "opening_declined"
    return [activity.NewNote(person=_text(data, "person"), kind=kind, subject=str(data.get("title") or ""), at=at,
                             link=f"/openings/{oid}", source_key=f"sns:opening:{aid}:{kind}")]


def _points(type_: str, data: dict[str, Any], key: str, at: datetime) -> Item:
    points, person = data.get("points"), data.get("person")
    if type_ not in ("TapRecorded", "DonationConfirmed") or not isinstance(points, int) or points <= 0 or not person:
        return None
    what = str(data.get("event") or data.get("project") or "")
    return [
        activity.NewNote(
            person=str(person),
            kind="points_credited",
            subject=str(points),
            who=what,
            link="/points",
            at=at,
            source_key=f"points:{key}",
        )
    ]


def _time(data: dict[str, Any], name: str) -> datetime:
    try:
        t = datetime.fromisoformat(_text(data, name))
    except ValueError:
        raise Rejected(f"the event's {name} is no time") from None
    if t.tzinfo is None:
        raise Rejected(f"the event's {name} carries no timezone")
    return t


def _bookings(type_: str, data: dict[str, Any], key: str, at: datetime) -> Item:
    if type_ == "BookingConfirmed":
        booker = data.get("booker")
        return BookingSeen(
            _text(data, "booking_id"), str(booker) if booker else None, _text(data, "facility_id"), _time(data, "start")
        )
    if type_ in ("BookingCancelled", "BookingRejected", "BookingNoShow"):
        return BookingSeen(_text(data, "booking_id"), None, "", None)
    return None


FOLLOWED = {
    "ThemeChanged": ("theme", "id"),
    "ThemePhaseAdvanced": ("theme", "theme_id"),
    "ThemeCallOpened": ("theme", "theme_id"),
    "ThemeCompleted": ("theme", "theme_id"),
    "CaseChanged": ("case", "id"),
}


def _projects(type_: str, data: dict[str, Any], key: str, at: datetime) -> Item:
    if type_ not in FOLLOWED:
        return None
    kind, id_field = FOLLOWED[type_]
    title = data.get("title") if isinstance(data.get("title"), str) else ""
    return FollowedChange(kind, _text(data, "origin_node"), _text(data, id_field), type_, key, at, str(title)[:300])


DECODERS = {"sns": _sns, "points": _points, "bookings": _bookings, "projects": _projects}


def consumer_specs(node: str) -> list[ConsumerSpec]:
    """One durable consumer per source stream: this node's four services and the peers' projects facts."""
    specs = [
        ConsumerSpec(
            stream=subjects.evt_stream(node, source),
            durable=f"notices-activity-{source}",
            filter_subject=subjects.evt_all(node, source),
            service=SERVICE,
            node=node,
            batch=128,
        )
        for source in DECODERS
    ]
    specs.append(
        ConsumerSpec(
            stream=subjects.fed_service_stream(node, "projects"),
            durable="notices-activity-peers",
            filter_subject="evt.*.projects.>",
            service=SERVICE,
            node=node,
            batch=128,
        )
    )
    return specs


class ActivityHandler:
    """Decodes one source's events into notifications (or bookings to remind of, or followed changes)."""

    def __init__(self, node: str, source: str, followers: Followers, *, peers: bool = False) -> None:
        self.node, self.source, self.followers, self.peers = node, source, followers, peers
        self.decoder = DECODERS[source]

    def decode(self, msg: Msg) -> tuple[str, Item]:
        if self.peers:
            key, _peer, type_, data = peer_event(msg, self.node, "projects")
            at = utcnow()  # a peer's fact is told as of its arrival here (copies lag behind their node)
        else:
            key, type_, data, at = own_event(msg, self.node, self.source)
        if not isinstance(data, dict):
            raise Rejected("the event's data is no object")
        return f"{self.source}:{key}", self.decoder(type_, data, key, at)

    async def apply(self, session: AsyncSession, deliveries: Sequence[Delivery[Item]]) -> list[Outcome]:
        notes: list[activity.NewNote] = []
        for d in deliveries:
            if d.duplicate or d.item is None:
                continue
            if isinstance(d.item, list):
                notes += d.item
            elif isinstance(d.item, BookingSeen):
                await _keep_booking(session, d.item)
            else:
                notes += await self._followed(d.item)
        await activity.record(session, notes)
        return [None] * len(deliveries)

    async def _followed(self, change: FollowedChange) -> list[activity.NewNote]:
        # Asked inside the consumer's transaction: a projects service that does not answer fails the batch, and
        # JetStream delivers it again later (nothing was recorded).
        found = await self.followers(
            f.FollowersQuery(
                kind=change.kind,
                origin_node=change.origin_node,
                id=change.item_id,
            )
        )
        path = "themes" if change.kind == "theme" else "cases"
        link = (
            f"/{path}/{change.item_id}"
            if change.origin_node == self.node
            else f"/federation/{path}/{change.origin_node}/{change.item_id}"
        )
        return [
            activity.NewNote(
                person=h,
                kind="followed_change",
                subject=change.title or found.title or change.item_id,
                who=change.what,
                link=link,
                at=change.at,
                source_key=f"projects:{change.origin_node}:{change.key}",
            )
            for h in found.handles
        ]


async def _keep_booking(session: AsyncSession, seen: BookingSeen) -> None:
    await session.execute(delete(activity_bookings).where(activity_bookings.c.booking_id == seen.booking_id))
    if seen.starts_at is not None and seen.booker:
        await session.execute(
            db.insert_on_conflict(session, activity_bookings)
            .values(
                booking_id=seen.booking_id, booker=seen.booker, facility_id=seen.facility_id, starts_at=seen.starts_at
            )
            .on_conflict_do_nothing(index_elements=["booking_id"])
        )
