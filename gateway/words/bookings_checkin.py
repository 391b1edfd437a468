"""What the codes of a booking's check-in say to people: {code: (Japanese, English)}
(towntip/kernel/contracts/bookings_checkin.py declares them)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "checkin.staff_only": ("窓口でのチェックインは職員のみ行えます。", "Only staff check a booking in at the counter."),
    "checkin.not_confirmed": ("確定済みの予約のみチェックインできます。",
                              "Only a confirmed booking can be checked in."),
    "checkin.not_now": ("チェックインは利用開始の15分前から終了時刻までです。",
                        "A booking is checked in from 15 minutes before its start until its end."),
}
