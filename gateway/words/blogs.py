"""What the refusals of blogs say on pages (towntip/kernel/contracts/sns.py, the blogs block)."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "blog.not_found": ("そのブログは見つかりません（削除されたか、公開範囲の外です）。",
                       "No such entry (it was deleted, or you are not among those who may see it)."),
    "blog.not_author": ("これができるのはブログを書いた本人だけです。", "Only the entry's author may do this."),
    "blog.not_member": ("コミュニティ向けのブログを書けるのは、そのメンバーだけです。",
                        "Only its members write an entry for a community."),
    "blog.too_many_pictures": ("写真は1つのブログに4枚までです。", "An entry has at most 4 photos."),
    "blog.bad_picture": ("写真を保存できませんでした。別の写真でお試しください。",
                         "The photo could not be saved. Please try another one."),
    "blog.hidden": ("職員により非表示になったブログには、コメントや写真を追加できません。",
                    "Staff hid this entry: no new comments or photos."),
    "blog.comment_not_found": ("そのコメントは見つかりません。", "No such comment."),
    "blog.audience": ("「コミュニティのメンバーだけ」のときは、コミュニティを選んでください。",
                      "Choose the community for an entry for its members (and only then)."),
}
