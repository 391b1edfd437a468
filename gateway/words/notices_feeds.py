"""What the refusals of the collected feeds and the calendar say on pages (contracts/notices_feeds.py)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "feeds.staff_only": ("外部サイトの情報の取り込みは職員のみ設定できます。", "Only staff manage collected feeds."),
    "feeds.not_found": ("その取り込み先は見つかりません。", "No such feed."),
    "feeds.duplicate": ("そのURLはすでに登録されています。", "That URL is already registered."),
    "feeds.bad_url": (
        "http または https で始まるサイトのURLを入力してください（ID・パスワード入りのURLは使えません）。",
        "Enter a site's address starting with http or https (without a user name or password).",
    ),
    "feeds.address_refused": (
        "このURLは内部・予約済みのアドレスを指しているため読み込みません。",
        "This address points into a private or reserved network, which the node does not read.",
    ),
    "feeds.unreachable": ("サイトにつながりませんでした。", "The site could not be reached."),
    "feeds.timeout": ("サイトの応答が遅すぎました。", "The site answered too slowly."),
    "feeds.too_large": ("フィードが大きすぎます。", "The feed is too large."),
    "feeds.http_status": ("サイトがエラーを返しました。", "The site answered with an error."),
    "feeds.malformed": (
        "RSS・Atom・iCalendar・JSON のいずれとしても読めませんでした。",
        "This is not a readable RSS, Atom, iCalendar or JSON feed.",
    ),
    "calendar.token_unknown": (
        "カレンダーのURLが見つかりません（再発行された可能性があります）。",
        "No calendar at that address (it may have been reset).",
    ),
}
