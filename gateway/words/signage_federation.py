"""The words of the refusals of signage content shared between towns (towntip.kernel.contracts.signage_federation)."""

from __future__ import annotations

from towntip.kernel.contracts import signage_federation as f

WORDS: dict[str, tuple[str, str]] = {
    f.OFFER_NOT_ALLOWED.code: (
        "提供できるのは、この町で登録し承認済みの画像・動画だけです。",
        "Only an approved image or video this town added can be offered.",
    ),
    f.OFFER_NOT_FOUND.code: (
        "その提供は見つかりません（取り下げられた可能性があります）。",
        "No such offer (it may have been withdrawn).",
    ),
    f.ALREADY_ADOPTED.code: ("このコンテンツはすでに採用しています。", "This town has adopted it already."),
    f.PEER_UNREACHABLE.code: (
        "提供元の自治体からコンテンツを取得できませんでした。しばらくしてからお試しください。",
        "The offering town's content could not be fetched. Please try again later.",
    ),
    f.PEER_MEDIA_MISMATCH.code: (
        "取得したコンテンツが提供元の告知と一致しないため、採用しませんでした。",
        "The content fetched is not what the offering town announced, so it was not adopted.",
    ),
    f.NOT_OFFERED.code: ("そのコンテンツは提供されていません。", "That item is not offered."),
}
