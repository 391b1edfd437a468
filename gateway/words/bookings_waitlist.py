"""What the waitlist's (キャンセル待ち) and recurring series' (定期予約) refusal codes say to people:
{code: (Japanese, English)} (towntip/kernel/contracts/bookings_waitlist.py declares the codes)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "waitlist.not_found": ("キャンセル待ちが見つかりません。", "No such waitlist entry."),
    "waitlist.slot_free": ("その枠は空いています。キャンセル待ちではなく、そのまま予約してください。",
                           "That slot is free: book it instead of waiting."),
    "waitlist.already_waiting": ("その枠は既にキャンセル待ち中か、予約済みです。",
                                 "You are waiting for that slot already, or you hold it."),
    "waitlist.full": ("その枠のキャンセル待ちは満員です。", "The waitlist for that slot is full."),
    "waitlist.not_waiting": ("このキャンセル待ちは既に終了しています（繰り上げ済み・取り消し済みなど）。",
                             "This waitlist entry is no longer waiting."),
    "waitlist.offer_not_open": ("このご案内は既に承諾・辞退済みか、期限が切れています。",
                                "This offer is no longer open (accepted, declined or expired)."),
    "waitlist.offer_expired": ("承諾の期限を過ぎました。次の方にご案内します。",
                               "The time to accept has passed: the next in line gets the offer."),
    "series.not_found": ("定期予約が見つかりません。", "No such recurring booking."),
    "series.too_many": ("定期予約は1回の申込みで52回までです。終了日を早めてください。",
                        "A series has at most 52 dates: end it earlier."),
    "series.no_dates": ("指定の期間に該当する日がありません。", "The pattern gives no date in that period."),
    "series.none_available": ("どの日も予約できませんでした。何も予約していません。",
                              "None of the dates could be had: nothing was booked."),
    "series.conflicts": ("新しい時間では予約できない日があるため、変更しませんでした。",
                         "The new time cannot be had on some dates: nothing was changed."),
    "series.nothing_to_change": ("変更できる予約（これからの予約）がありません。",
                                 "No booking in that scope can still be changed."),
    "series.not_in_series": ("その予約はこの定期予約に含まれていません。",
                             "That booking is not part of this series."),
    "series.incomplete": ("入力が足りません（終了日か回数のどちらか一方、対象の回、開始と終了の両方の時刻）。",
                          "Something is missing: a last day or a count (one of them), the date it starts from, "
                          "or both times."),
    "series.no_change": ("新しい時間か利用目的を入力してください。", "Give a new time or a new purpose."),
}
