"""Time for the whole node: timezone-aware UTC in storage, Japan time (JST) on screen and in documents."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")  # what people see: pages, receipts, notebooks, certificates


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC (what is stored and sent)."""
    return datetime.now(UTC)
