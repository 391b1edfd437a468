"""The words of matching's refusals (towntip.kernel.contracts.sns_openings): openings, applications, answers."""

from __future__ import annotations

from towntip.kernel.contracts import sns_openings as c

WORDS: dict[str, tuple[str, str]] = {
    c.OPENING_NOT_FOUND.code: ("その募集は見つかりません。", "No such opening."),
    c.OPENING_NOT_HOST.code: ("募集を出せるのは、コミュニティのリーダーかテーマの担当者だけです。",
                              "Only the community's leader or the theme's managers post its openings."),
    c.OPENING_HOST_NOT_FOUND.code: ("募集先のコミュニティまたはテーマが見つかりません。",
                                    "No such open community or theme."),
    c.OPENING_NOT_ORGANISER.code: ("この操作は、募集を出した方だけが行えます。",
                                   "Only the person who posted the opening can do this."),
    c.OPENING_CLOSED.code: ("この募集は締め切られました。", "This opening is closed."),
    c.OPENING_FULL.code: ("この募集は定員に達しました。", "This opening has all the people it asked for."),
    c.OPENING_ALREADY_APPLIED.code: ("この募集にはすでに応募しています。", "You have applied to this opening already."),
    c.OPENING_OWN.code: ("ご自身の募集には応募できません。", "You cannot apply to your own opening."),
    c.OPENING_NO_APPLICATION.code: ("対象の応募が見つかりません。", "No such application."),
    c.OPENING_ALREADY_DECIDED.code: ("この応募には回答済みです。", "This application was answered already."),
    c.OPENING_BAD_DATES.code: ("終了日時が開始日時より前になっています。", "The opening ends before it starts."),
}
