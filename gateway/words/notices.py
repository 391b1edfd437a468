"""Words of the notices service's refusals: the inbox, the life stage, the staff's notices and official messages."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "inbox.not_found": ("受信箱にその項目はありません。", "There is no such item in your inbox."),
    "life.district_unknown": ("その地区はこの市の地区の一覧にありません。一覧から選んでください。",
                              "That district is not one of this town's districts: choose one from the list."),
    "life.home_only": ("ライフステージは、あなたの住んでいる自治体（ホーム）でだけ登録できます。",
                       "Your life stage is kept only by your home municipality: state it there."),
    "notice.staff_only": ("お知らせの作成・送信は職員だけができます。", "Only staff write and send notices."),
    "notice.not_found": ("そのお知らせはありません。", "There is no such notice."),
    "notice.target_unknown": ("その配信対象はこの市では選べません。"
                              "地区・ライフステージ・分野などを一覧から選んでください。",
                              "That target is not one this town has: choose a district, life stage or field from "
                              "the list."),
    "notice.bad_period": ("掲載期間の終わりが、始まりより前か、すでに過ぎています。",
                          "The validity period ends before it starts, or has already ended."),
    "notice.publish_in_past": ("配信日時がすでに過ぎています。", "The publishing time has already passed."),
    "notice.self_approval": ("お知らせの承認は、作成した人とは別の職員が行います。",
                             "A notice is approved by a staff member other than its author."),
    "notice.not_awaiting_approval": ("このお知らせは承認待ちではありません。",
                                     "This notice is not waiting for approval."),
    "notice.withdrawn": ("このお知らせは取り下げ済みです。", "This notice has been withdrawn."),
    "notice.audience_unavailable": ("コミュニティ・テーマの参加者を確認できませんでした。"
                                    "少し待ってからもう一度お試しください。",
                                    "The members of the community or theme could not be checked: try again shortly."),
    "message.unknown_person": ("その人はこの自治体に登録されていません。", "No such person is registered here."),
}
