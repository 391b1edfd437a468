"""The words of the refusals of following other towns' public notices (contracts.notices_towns)."""

from __future__ import annotations

from towntip.kernel.contracts import notices_towns as c

WORDS: dict[str, tuple[str, str]] = {
    c.TOWN_UNKNOWN.code: ("連携している他のまちではありません。", "That is not another member town of the federation."),
    c.TOWNS_HOME_ONLY.code: (
        "フォローするまちは、あなたの登録地のノードでだけ設定できます。",
        "The towns you follow are set on your home node only.",
    ),
    c.TOWNS_UNAVAILABLE.code: (
        "連携しているまちの一覧を今は読み込めません。しばらくしてからもう一度お試しください。",
        "The list of member towns cannot be read just now. Please try again shortly.",
    ),
    c.TOWNS_TOO_MANY.code: (
        f"フォローできるまちは{c.FOLLOWS_MAX}までです。",
        f"At most {c.FOLLOWS_MAX} towns can be followed.",
    ),
}
