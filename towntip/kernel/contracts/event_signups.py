"""Contracts of events' sign-up (issue 17, point 7): a person signs up for an event with a date and a capacity, waits
on its waitlist when it is full, cancels; the first waiting moves up when a seat frees. Served by the points service
(services/points/signups/), whose events these are (the event's date, venue and capacity are in contracts.points
EventIn). Named `event_signups` because `contracts/events.py` is the kernel's base of every bus event."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import Code, PointsEvent
from towntip.kernel.errors import Refusal

EP_SIGNUP = "events.signup"  # SignupIn -> Signup (the signed-in person: a seat, or a place on the waitlist)
EP_SIGNUP_CANCEL = "events.signup_cancel"  # SignupIn -> Signup (state cancelled; the first waiting moves up)
EP_SIGNUPS = "events.signups"  # SignupsQuery -> SignupList (staff: who signed up for an event)
EP_SIGNUPS_MINE = "events.signups_mine"  # MineQuery -> SignupList (the person's own sign-ups)

# signed_up: holds a seat; waitlisted: waits for one, in order of sign-up; cancelled: let go (by the person).
SignupState = Literal["signed_up", "waitlisted", "cancelled"]

SIGNUP_CLOSED = Refusal("signup.closed", 409, "the event has started or ended, or has no date: no sign-up")
SIGNUP_ALREADY = Refusal("signup.already", 409, "the person is signed up (or waitlisted) for the event already")
SIGNUP_NOT_FOUND = Refusal("signup.not_found", 404, "the person is not signed up for the event")
# Checked by the staff's event page (gateway/portal/events.py) against the bookings service before events.put.
EVENT_VENUE_BOOKING = Refusal("event.venue_booking", 409, "the venue's booking does not hold that facility over the "
                              "event's time (cancelled, another facility, or another time)")

_IN = ConfigDict(frozen=True, extra="forbid")


class SignupIn(BaseModel):
    model_config = _IN
    actor: Actor
    code: Code


class SignupsQuery(BaseModel):
    model_config = _IN
    code: Code


class MineQuery(BaseModel):
    model_config = _IN
    actor: Actor


class Signup(Frozen):
    code: str
    person: str  # global handle
    display_name: str
    state: SignupState
    position: int | None = None  # on the waitlist: 1 = next to move up
    signed_up_at: datetime
    event_name: str = ""
    starts_at: datetime | None = None


class SignupList(Frozen):
    signups: list[Signup]


# ---- events (evt.<node>.points.<event>) ---------------------------------------------------------------------------


class EventSignedUp(PointsEvent):
    """A person signed up for an event: with a seat (signed_up) or on the waitlist (waitlisted)."""

    code: str
    person: str
    state: SignupState


class EventSignupCancelled(PointsEvent):
    """A person let their seat (or their place on the waitlist) go."""

    code: str
    person: str


class EventSeatGiven(PointsEvent):
    """The first on the waitlist moved up to a freed seat: the person is told (notices consume this)."""

    code: str
    person: str
    event_name: str
    starts_at: datetime | None = None
