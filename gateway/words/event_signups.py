"""What the codes of events' date, sign-up and once-per-event check-in say to people: {code: (Japanese, English)}
(towntip/kernel/contracts/event_signups.py and contracts/points.py declare them)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "signup.closed": ("このイベントは申込を受け付けていません（開始済み、または日時未定）。",
                      "This event takes no sign-up (it has started, or has no date yet)."),
    "signup.already": ("このイベントには申込済み（またはキャンセル待ち）です。",
                       "You are signed up (or on the waitlist) for this event already."),
    "signup.not_found": ("このイベントへの申込はありません。", "You are not signed up for this event."),
    "event.venue_booking": ("会場の予約番号が、この施設をイベントの日時に押さえている予約ではありません"
                            "（取消済み、別の施設、または別の日時）。",
                            "The venue's booking does not hold that facility over the event's time (cancelled, "
                            "another facility, or another time)."),
    "event.times": ("終了日時は開始日時より後にしてください（終了のみの指定はできません）。",
                    "The end must be after the start (and an end needs a start)."),
}
