"""What the refusal codes of registered groups (団体登録), bookers from other nodes and lotteries (抽選) say to people:
{code: (Japanese, English)} (towntip/kernel/contracts/bookings_lottery.py declares the codes)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "group.not_found": ("団体が見つかりません。", "No such registered group."),
    "group.invalid": ("申請内容が合っていません（予約者は会員から選び、会員数は登録人数以上に）。",
                      "The application does not fit together: bookers must be members, and the member count at "
                      "least the people named."),
    "group.name_taken": ("同じ名前の団体が既に登録または申請されています。",
                         "A group of that name is registered or applying already."),
    "group.staff_only": ("団体の承認・一覧は職員のみ行えます。", "Only staff decide on groups and list them."),
    "group.bad_decision": ("この団体の状態では、その操作はできません。",
                           "That decision does not apply to the group's state."),
    "group.not_approved": ("この団体はまだ承認されていないか、停止中です。",
                           "The group is not approved (pending, rejected or suspended)."),
    "group.not_booker": ("この団体の予約は、代表者または代表者が指定した会員のみ行えます。",
                         "Only the representative or the members they named book for the group."),
    "booking.other_nodes_closed": ("この施設は、他の地域（ノード）の方の予約を受け付けていません。",
                                   "This facility takes no bookings from people of other nodes."),
    "booking.in_lottery": ("この枠は抽選の対象です。抽選にお申し込みください（抽選後の空き枠は先着順）。",
                           "This slot goes by lottery: enter the lottery (what is left after the draw is first "
                           "come, first served)."),
    "lottery.not_found": ("抽選が見つかりません。", "No such lottery round or entry."),
    "lottery.staff_only": ("抽選の開始・実施は職員のみ行えます。", "Only staff open and draw lotteries."),
    "lottery.invalid": ("抽選の設定が合っていません（受付期間・対象月を確認してください）。",
                        "The round does not fit: check the application window and the month."),
    "lottery.exists": ("この施設のこの月の抽選は既にあります。",
                       "The facility has a lottery for that month already."),
    "lottery.window_closed": ("申込期間外です。", "The application window is not open."),
    "lottery.entry_limit": ("この抽選への申込数が上限に達しています。",
                            "You have as many entries as this round allows."),
    "lottery.bad_choice": ("選んだ枠が抽選の対象外か、同じ枠を重ねて選んでいます。",
                           "A choice is not a slot of the round, or is named twice."),
    "lottery.still_open": ("申込期間が終わってから抽選してください。", "Draw after the application window closes."),
    "lottery.drawn": ("この抽選は実施済みです。", "The round is drawn already."),
    "lottery.not_drawn": ("まだ抽選が行われていません。", "The round is not drawn yet."),
    "lottery.bad_data": ("検証するデータが抽選の公開データになっていません（申込番号の重複など）。",
                         "The data to check is no draw's publication (an entry ref named twice, say)."),
}
