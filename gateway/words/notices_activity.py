"""The words of the refusals of activity notifications, Web Push and the navi (contracts.notices_activity)."""

from __future__ import annotations

from towntip.kernel.contracts import notices_activity as c

WORDS: dict[str, tuple[str, str]] = {
    c.PUSH_ENDPOINT_REFUSED.code: (
        "このブラウザの通知先は使えません。ブラウザを更新してもう一度お試しください。",
        "This browser's push address cannot be used. Update the browser and try again.",
    ),
    c.PUSH_TOO_MANY.code: (
        "通知を受け取れるブラウザは10台までです。使っていないものを解除してください。",
        "At most 10 browsers receive notifications: remove one you no longer use.",
    ),
    c.DIGEST_NO_ADDRESS.code: (
        "まとめメールには、確認済みのメールアドレスが必要です。",
        "The daily digest needs a verified e-mail address on your account.",
    ),
    c.NAVI_UNKNOWN.code: ("そのおすすめは見つかりません。", "No such suggestion."),
}
