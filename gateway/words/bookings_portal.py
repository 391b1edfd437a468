"""What the refusals of the portal's booking endpoints say on pages (towntip/kernel/contracts/bookings_portal.py)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "bookings.staff_only": ("当日の利用一覧と利用状況は職員のみ見られます。",
                            "Only staff see the day sheet and the usage figures."),
    "feed.not_found": ("カレンダーのURLが見つかりません（再発行された可能性があります）。",
                       "No calendar feed at that address (it may have been reset)."),
}
