"""The endpoint table of events' sign-up (svc.<node>.points.events.signup*; contracts:
towntip.kernel.contracts.event_signups)."""

from __future__ import annotations

from services.points.signups import service as signups
from towntip.kernel.contracts import event_signups as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.domain import GET, POST, SIGNED_IN, STAFF, Domain, read, write

DOMAIN = Domain("signups", refusals=(pc.EVENT_NOT_FOUND,), ops=(
    write(c.EP_SIGNUP, c.SignupIn, c.Signup, signups.signup, role=SIGNED_IN,
          refusals=(c.SIGNUP_CLOSED, c.SIGNUP_ALREADY),
          http=POST("/points/events/{code}/signup", "Sign up for an event (a seat, or the waitlist when full)")),
    write(c.EP_SIGNUP_CANCEL, c.SignupIn, c.Signup, signups.cancel, role=SIGNED_IN,
          refusals=(c.SIGNUP_CLOSED, c.SIGNUP_NOT_FOUND),
          http=POST("/points/events/{code}/signup/cancel", "Cancel my sign-up (the first waiting moves up)")),
    read(c.EP_SIGNUPS, c.SignupsQuery, c.SignupList, signups.list_for_event, role=STAFF,
         http=GET("/points/events/{code}/signups", "Who signed up for an event, and the waitlist (staff)")),
    read(c.EP_SIGNUPS_MINE, c.MineQuery, c.SignupList, signups.mine, role=SIGNED_IN,
         http=GET("/points/signups/mine", "My sign-ups")),
))
