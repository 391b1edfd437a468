"""What the refusal codes of a booking's life (approval, fees and payment, deadlines) say to people:
{code: (Japanese, English)} (towntip/kernel/contracts/bookings_life.py; the points side's payment.* are in
points.py)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "booking.not_requested": ("この予約は承認待ちではありません（すでに処理済みです）。",
                              "This booking is not waiting for approval (it was decided already)."),
    "booking.decide_staff_only": ("予約の承認・却下は職員のみ行えます。", "Only staff approve or reject requests."),
    "booking.not_payable": ("確定した予約の使用料のみお支払いいただけます。",
                            "Only a confirmed booking's fee can be paid."),
    "booking.no_fee": ("この予約に使用料はかかりません。", "This booking has no fee to pay."),
    "booking.already_paid": ("使用料はお支払い済みです。", "The fee is paid already."),
    "booking.payment_deadline_passed": ("お支払い期限を過ぎたため、お支払いできません（予約は取り消されます）。",
                                        "The payment deadline has passed: the booking is cancelled."),
    "booking.insufficient_balance": ("地域通貨の残高が足りません。", "Not enough local currency for the fee."),
    "booking.coupon_not_usable": ("このクーポンはこの使用料に使えません（使用済み・期限切れ・対象外・額面不足）。",
                                  "This coupon cannot pay this fee (used, expired, not accepted here, or worth "
                                  "less than the fee)."),
    "booking.counter_staff_only": ("窓口での入金記録は職員のみ行えます。",
                                   "Only staff record a payment at the counter."),
}
