"""Tables of the signage service (its own database or schema): screens and what they last reported, content items
and their bytes, playlists, emergencies, proof of play, and the kernel's outbox and inbox.

Content bytes live in the database in CHUNK_MAX pieces keyed by their sha256 (`blobs`): every instance of the service
serves any chunk on PostgreSQL as on SQLite, and a content request is one primary-key read.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import define_bus_tables

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
TS = DateTime(timezone=True)

screens = Table(
    "screens",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("place", String(80), nullable=False),
    Column("orientation", String(10), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("groups", JSON, nullable=False),  # a few names per screen: matched in Python (emergencies, playlists)
    Column("enrolled_at", TS, nullable=False),
    # what the screen last said of itself (its heartbeat): nothing personal
    Column("last_seen", TS, nullable=True),
    Column("playing", String(64), nullable=True),
    Column("version", String(64), nullable=True),
    Column("cache_bytes", Integer, nullable=True),
    Column("player_version", String(40), nullable=True),
    Column("screenshot", Text, nullable=True),  # base64 PNG, the latest only
    Column("screenshot_at", TS, nullable=True),
    CheckConstraint("orientation IN ('landscape', 'portrait')", name="orientation"),
)

items = Table(
    "items",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False),  # image | video | slide | html
    Column("title", String(120), nullable=False),
    Column("mime", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("valid_from", TS, nullable=False),
    Column("valid_until", TS, nullable=True),
    Column("status", String(10), nullable=False),  # pending | approved | rejected | withdrawn
    Column("source", String(8), nullable=False),  # upload | slide | peer
    Column("slide_key", String(40), nullable=True, unique=True),  # a node-made slide: which one (events, news, …)
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("created_by", String(64), nullable=True),  # a global handle (None: the node made it)
    Column("created_at", TS, nullable=False),
    Column("approved_by", String(64), nullable=True),
    Column("approved_at", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
    Column("origin_node", String(32), nullable=True),  # the town that made it (an item a peer offered)
    Column("origin_id", String(36), nullable=True),  # its id there
    Column("offered", Boolean, nullable=False),  # offered to the federation
    CheckConstraint("kind IN ('image', 'video', 'slide', 'html')", name="kind"),
    CheckConstraint("status IN ('pending', 'approved', 'rejected', 'withdrawn')", name="status"),
    CheckConstraint("source IN ('upload', 'slide', 'peer')", name="source"),
    CheckConstraint("bytes >= 0 AND duration_s > 0", name="sizes"),
    Index("ix_items_status", "status"),
    Index("ix_items_origin", "origin_node", "origin_id", unique=True),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), nullable=False),
    Column("seq", Integer, nullable=False),  # the chunk's number: it starts at seq * CHUNK_MAX
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("sha256", "seq", name="pk_blobs"),
)

playlists = Table(
    "playlists",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(80), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("dayparts", JSON, nullable=False),
    Column("entries", JSON, nullable=False),  # [{item_id, duration_s}] in order
    Column("interrupt_share", Float, nullable=True),
    Column("valid_from", TS, nullable=True),
    Column("valid_until", TS, nullable=True),
    Column("screens", JSON, nullable=False),  # screen names; with `groups` both empty: every screen
    Column("groups", JSON, nullable=False),
    Column("updated_by", String(64), nullable=True),
    Column("updated_at", TS, nullable=False),
)

emergencies = Table(
    "emergencies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("title", String(120), nullable=False),
    Column("body", Text, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("screens", JSON, nullable=True),  # None (and no groups): every screen
    Column("groups", JSON, nullable=False),
    Column("source", String(8), nullable=False),  # staff | cap
    Column("cap_key", String(300), nullable=True, unique=True),  # a CAP alert's sender,identifier,sent: taken once
    Column("issued_by", String(64), nullable=True),
    Column("issued_at", TS, nullable=False),
    Column("cleared_by", String(64), nullable=True),
    Column("cleared_at", TS, nullable=True),
    Index("ix_emergencies_cleared_at", "cleared_at"),
)

plays = Table(
    "plays",
    metadata,
    Column("play_id", String(36), primary_key=True),  # made on the device: a replay after a week finds it here
    Column("item_id", String(36), nullable=False),
    Column("screen", String(80), nullable=False),  # name, or name@node for a peer's screen playing our item
    Column("node", String(32), nullable=False),  # where it was played
    Column("started_at", TS, nullable=False),
    Column("ended_at", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    Index("ix_plays_item_id_started_at", "item_id", "started_at"),
    Index("ix_plays_screen_started_at", "screen", "started_at"),
)

# One row: the node's content generation, bumped by every change a screen's manifest could show.
state = Table(
    "state",
    metadata,
    Column("key", String(20), primary_key=True),
    Column("value", Integer, nullable=False),
)

# ---- content shared between towns (services/signage/federation.py) ----------------------------------------------

# Member towns whose offers this node sources, and the public URL their media is fetched from (from the trust anchor:
# never from what a peer says).
fed_peers = Table(
    "fed_peers",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("public_url", String(300), nullable=False),
    Column("checked_at", TS, nullable=False),
)

# Peers' offers as they announced them (withdrawn_at set when withdrawn).
fed_offers = Table(
    "fed_offers",
    metadata,
    Column("origin_node", String(32), nullable=False),
    Column("item_id", String(36), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("title", String(120), nullable=False),
    Column("mime", String(40), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("valid_from", TS, nullable=False),
    Column("valid_until", TS, nullable=True),
    Column("offered_at", TS, nullable=False),
    Column("withdrawn_at", TS, nullable=True),
    PrimaryKeyConstraint("origin_node", "item_id", name="pk_fed_offers"),
)

# Adopting side: the totals last reported to the maker per adopted item and local day.
fed_reported = Table(
    "fed_reported",
    metadata,
    Column("item_id", String(36), nullable=False),
    Column("day", String(10), nullable=False),
    Column("plays", Integer, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("reported_at", TS, nullable=False),
    PrimaryKeyConstraint("item_id", "day", name="pk_fed_reported"),
)

# Making side: plays of this town's items in other towns, per town and local day (totals, the newest report wins).
fed_plays = Table(
    "fed_plays",
    metadata,
    Column("item_id", String(36), nullable=False),
    Column("town", String(32), nullable=False),
    Column("day", String(10), nullable=False),
    Column("plays", Integer, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("updated_at", TS, nullable=False),
    PrimaryKeyConstraint("item_id", "town", "day", name="pk_fed_plays"),
)

# A slide the node makes from its own data (services/signage/slides.py): which source, and the last data it showed.
# Its item (kind 'slide', source 'slide') carries the title, validity and approval like any other.
slides = Table(
    "slides",
    metadata,
    Column("item_id", String(36), primary_key=True),
    Column("source", String(12), nullable=False),  # events | news | notices | themes | points | bookings
    Column("facility_id", String(48), nullable=True),  # bookings: the facility (room) shown
    Column("body", JSON, nullable=False),  # the last SlideBody rendered from data that came (public data only)
    Column("refreshed_at", TS, nullable=True),  # last asked
    Column("data_at", TS, nullable=True),  # last answered
    Column("failing", Boolean, nullable=False),
)
