"""The words of the signage service's refusals (towntip.kernel.contracts.signage): screens, content, schedules,
emergencies and the screens' own protocol."""

from __future__ import annotations

from towntip.kernel.contracts import signage as c

WORDS: dict[str, tuple[str, str]] = {
    c.STAFF_ONLY.code: ("サイネージの管理は職員だけが行えます。", "Only staff manage the signage."),
    c.SCREEN_NOT_FOUND.code: ("その画面（映像端末）は見つかりません。", "No such screen."),
    c.SCREEN_UNKNOWN.code: (
        "この画面はサイネージに登録されていません。職員に登録を依頼してください。",
        "This screen is not registered with the signage. Ask staff to register it.",
    ),
    c.BAD_REPLY_SUBJECT.code: (
        "画面への返事は、その画面自身の受信箱にだけ送られます。",
        "A screen's answer goes only to its own inbox.",
    ),
    c.ITEM_NOT_FOUND.code: ("そのコンテンツは見つかりません。", "No such content item."),
    c.ITEM_NOT_FOR_SCREEN.code: (
        "そのコンテンツはこの画面の再生予定にありません。同期し直してください。",
        "That item is not in this screen's schedule. Sync again.",
    ),
    c.CHUNK_OUT_OF_RANGE.code: (
        "指定された位置はコンテンツの終わりを超えています。",
        "The offset is past the content's end.",
    ),
    c.BAD_PAYLOAD.code: ("サイネージの通信内容が正しくありません。", "The message does not fit the signage protocol."),
    c.GROUP_UNKNOWN.code: ("そのグループの画面はありません。", "No screen is in that group."),
}
WORDS |= {
    c.UPLOAD_TOO_LARGE.code: (
        f"ファイルが大きすぎます（画像は{c.IMAGE_MAX_BYTES // 2**20}MB、動画は{c.VIDEO_MAX_BYTES // 2**20}MBまで）。",
        f"The file is too large (images up to {c.IMAGE_MAX_BYTES // 2**20} MB, videos up to "
        f"{c.VIDEO_MAX_BYTES // 2**20} MB).",
    ),
    c.UPLOAD_INCOMPLETE.code: (
        "アップロードが途中で途切れました。もう一度お試しください。",
        "The upload was cut off. Please try again.",
    ),
    c.UPLOAD_TYPE.code: (
        "この種類のファイルは使えません（画像: JPEG・PNG・GIF・WebP、動画: MP4・WebM）。",
        "This kind of file cannot be used (images: JPEG, PNG, GIF, WebP; videos: MP4, WebM).",
    ),
    c.UPLOAD_BROKEN.code: (
        "画像を読み取れませんでした。ファイルが壊れていないかご確認ください。",
        "The image could not be read. Please check that the file is not damaged.",
    ),
    c.SAME_APPROVER.code: (
        "登録した本人は承認できません。別の職員に承認を依頼してください。",
        "The person who uploaded it cannot approve it. Ask another staff member.",
    ),
    c.ITEM_STATE.code: ("このコンテンツは今の状態ではその操作ができません。", "This item's state does not allow that."),
    c.VALIDITY.code: ("掲載終了は掲載開始より後にしてください。", "The end of the period must be after its start."),
    c.PLAYLIST_NOT_FOUND.code: ("そのプレイリストは見つかりません。", "No such playlist."),
    c.PLAYLIST_ITEM_UNKNOWN.code: (
        "プレイリストに存在しないコンテンツが含まれています。",
        "The playlist names an item that does not exist.",
    ),
    c.PLAYLIST_EMPTY.code: (
        "プレイリストにはコンテンツを1つ以上入れてください。",
        "A playlist needs at least one item.",
    ),
    c.EMERGENCY_NOT_FOUND.code: ("その緊急情報は見つかりません。", "No such emergency message."),
    c.EMERGENCY_CLEARED.code: ("その緊急情報はすでに解除されています。", "That emergency message is cleared already."),
    c.CAP_INVALID.code: (
        "CAP 1.2 形式の警報として読み取れませんでした。",
        "This is not a CAP 1.2 alert this node can read.",
    ),
}
# Slides from the node's own data (services/signage/slides.py).
WORDS |= {
    c.SLIDE_FACILITY.code: (
        "施設の予約のスライドには施設を選んでください（ほかのスライドでは施設は選べません）。",
        "Choose the facility for a slide of its bookings (other slides take no facility).",
    ),
}
