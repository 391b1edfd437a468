"""Tables of activity notifications, Web Push and the navi's counts (migration 0002_activity), on the notices
service's metadata.

Personal data kept, and for how long: a notification names its person (global handle) and what happened, in words
for the page (never a post's or comment's text); deleted after contracts.notices_activity.KEEP_DAYS. The digest's
address is kept only while the digest is on. A push subscription (the browser's endpoint and keys) is kept until
the person removes it or the push service says it is gone. The navi keeps counts per kind and reason only: nobody's
suggestions or clicks are stored."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint

from services.notices.models import metadata
from towntip.kernel.mail import define_mail_table

TS = DateTime(timezone=True)
mail = define_mail_table(metadata)  # the daily digest (created by migration 0002_activity)

activity_notes = Table(
    "activity_notes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("person", String(64), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("who", String(120), nullable=False, default=""),
    Column("link", String(300), nullable=False, default=""),
    Column("at", TS, nullable=False),
    Column("read_at", TS),
    # What it tells of (e.g. "sns:comment:42"): one notification per person and thing, whatever is delivered twice.
    Column("source_key", String(200), nullable=False),
    Column("push_due", Boolean, nullable=False, default=False),  # to be pushed to the person's browsers
    Column("digested", Boolean, nullable=False, default=False),  # in a digest mail already
    UniqueConstraint("person", "source_key", name="uq_activity_notes_person"),
    Index("ix_activity_notes_person_at", "person", "at"),
    Index("ix_activity_notes_push_due", "push_due"),
)

activity_prefs = Table(
    "activity_prefs",
    metadata,
    Column("person", String(64), primary_key=True),
    Column("off_kinds", JSON, nullable=False, default=list),  # kinds switched off; every other kind is on
    Column("digest", Boolean, nullable=False, default=False),
    Column("digest_to", String(254)),  # only while the digest is on
    Column("digest_sent_on", String(10)),  # the JST date of the last digest (YYYY-MM-DD)
    Column("updated_at", TS, nullable=False),
)

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("endpoint_hash", String(64), primary_key=True),  # SHA-256 of the endpoint: the key, whatever its length
    Column("person", String(64), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Index("ix_push_subscriptions_person", "person"),
)

# Confirmed bookings of the coming days (from the bookings service's events), for the reminder the day before.
activity_bookings = Table(
    "activity_bookings",
    metadata,
    Column("booking_id", String(40), primary_key=True),
    Column("booker", String(64), nullable=False),
    Column("facility_id", String(64), nullable=False),
    Column("starts_at", TS, nullable=False),
    Index("ix_activity_bookings_starts_at", "starts_at"),
)

navi_counts = Table(
    "navi_counts",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("reason", String(16), primary_key=True),
    Column("shown", Integer, nullable=False, default=0),
    Column("taken", Integer, nullable=False, default=0),
)
