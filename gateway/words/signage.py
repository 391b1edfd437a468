"""The words of the signage service's refusals (towntip.kernel.contracts.signage): screens, content, schedules,
emergencies and the screens' own protocol."""

from __future__ import annotations

from towntip.kernel.contracts import signage as c

WORDS: dict[str, tuple[str, str]] = {
    c.STAFF_ONLY.code: ("サイネージの管理は職員だけが行えます。", "Only staff manage the signage."),
    c.SCREEN_NOT_FOUND.code: ("その画面（映像端末）は見つかりません。", "No such screen."),
    c.SCREEN_UNKNOWN.code: ("この画面はサイネージに登録されていません。職員に登録を依頼してください。",
                            "This screen is not registered with the signage. Ask staff to register it."),
    c.BAD_REPLY_SUBJECT.code: ("画面への返事は、その画面自身の受信箱にだけ送られます。",
                               "A screen's answer goes only to its own inbox."),
    c.ITEM_NOT_FOUND.code: ("そのコンテンツは見つかりません。", "No such content item."),
    c.ITEM_NOT_FOR_SCREEN.code: ("そのコンテンツはこの画面の再生予定にありません。同期し直してください。",
                                 "That item is not in this screen's schedule. Sync again."),
    c.CHUNK_OUT_OF_RANGE.code: ("指定された位置はコンテンツの終わりを超えています。",
                                "The offset is past the content's end."),
    c.BAD_PAYLOAD.code: ("サイネージの通信内容が正しくありません。", "The message does not fit the signage protocol."),
    c.GROUP_UNKNOWN.code: ("そのグループの画面はありません。", "No screen is in that group."),
}
