"""The words of the community SNS's refusals (towntip.kernel.contracts.sns): communities, posts and comments,
friends, direct messages."""

from __future__ import annotations

from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import sns as c

WORDS: dict[str, tuple[str, str]] = {
    # communities
    c.COMMUNITY_NOT_FOUND.code: ("そのコミュニティは見つかりません。", "No such community."),
    c.COMMUNITY_CLOSED.code: ("このコミュニティは終了しています。閲覧はできますが、変更はできません。",
                              "This community is closed: it can be read, not changed."),
    c.COMMUNITY_NOT_LEADER.code: ("この操作は、コミュニティのリーダーだけが行えます。",
                                  "Only the community's leader can do this."),
    c.COMMUNITY_OPEN_LIMIT.code: (
        f"新しいコミュニティの開設は、1時間に{c.OPENED_PER_HOUR}件までです。時間をおいてからお試しください。",
        f"At most {c.OPENED_PER_HOUR} new communities an hour. Please try again later."),
    c.COMMUNITY_NAME_TAKEN.code: ("同じ名前のコミュニティがすでにあります。別の名前をお選びください。",
                                  "A community of that name exists already. Choose another name."),
    c.COMMUNITY_UNKNOWN_CATEGORY.code: ("そのカテゴリはありません。一覧から選んでください。",
                                        "No such category. Choose one from the list."),
    c.COMMUNITY_ALREADY_MEMBER.code: ("すでにこのコミュニティのメンバーです。", "You are a member already."),
    c.COMMUNITY_NOT_MEMBER.code: ("このコミュニティのメンバーではありません。",
                                  "You are not a member of this community."),
    c.COMMUNITY_LEADER_STAYS.code: (
        "リーダーは、ほかのメンバーにリーダーを引き継ぐ（またはコミュニティを終了する）までは退出できません。",
        "The leader hands the community over (or closes it) before leaving it."),
    c.COMMUNITY_MEMBER_NOT_FOUND.code: ("その方はこのコミュニティのメンバーではありません。",
                                        "The person named is not a member."),
    c.COMMUNITY_ALREADY_LEADER.code: ("その方はすでにこのコミュニティのリーダーです。",
                                      "That person leads the community already."),
    # posts and comments
    c.POST_WRITE_LIMIT.code: (
        f"投稿とコメントは、1分間に{c.WRITES_PER_MINUTE}件までです。少し待ってからお試しください。",
        f"At most {c.WRITES_PER_MINUTE} posts and comments a minute. Wait a little."),
    c.POST_MEMBERS_ONLY.code: ("投稿できるのはメンバーだけです。先にコミュニティに参加してください。",
                               "Only members write here: join the community first."),
    c.POST_NOT_FOUND.code: ("その投稿は見つかりません。", "No such post."),
    c.POST_NOT_AUTHOR.code: ("投稿やコメントを変更できるのは、書いた本人だけです。",
                             "Only its author can change a post or a comment."),
    c.POST_HIDDEN.code: ("この投稿はリーダーにより非表示になっているため、編集やコメントはできません。",
                         "The leader hid this post: no edits, no new comments."),
    c.POST_ALREADY_HIDDEN.code: ("この投稿またはコメントは、すでに非表示です。",
                                 "The post or comment is hidden already."),
    c.COMMENT_NOT_FOUND.code: ("そのコメントは見つかりません。", "No such comment."),
    c.COMMENT_HIDDEN.code: ("このコメントはリーダーにより非表示になっているため、編集できません。",
                            "The leader hid this comment: it cannot be edited."),
    # friends
    c.FRIEND_SELF.code: ("自分自身にはトモダチ申請できません。", "You cannot send a friend request to yourself."),
    c.FRIEND_ALREADY.code: ("すでにトモダチです。", "You are friends already."),
    c.FRIEND_REQUEST_LIMIT.code: (
        f"トモダチ申請は、1分間に{c.REQUESTS_PER_MINUTE}件までです。少し待ってからお試しください。",
        f"At most {c.REQUESTS_PER_MINUTE} friend requests a minute. Wait a little."),
    c.FRIEND_ALREADY_ASKED.code: ("この方にはすでに申請しています。", "You have asked this person already."),
    c.FRIEND_REQUEST_PENDING.code: ("この方との間に、返事を待っている申請がすでにあります。",
                                    "A request between you two is waiting for an answer already."),
    c.FRIEND_REQUEST_NOT_FOUND.code: ("そのトモダチ申請は見つかりません。", "No such friend request."),
    c.FRIEND_REQUEST_NOT_YOURS.code: ("申請に返事ができるのは申請を受けた方、取り消せるのは申請した方だけです。",
                                      "Only the addressee answers a request; only its sender cancels it."),
    c.FRIEND_NOT_FRIENDS.code: ("この方とはトモダチではありません。", "You two are not friends."),
    # moderation
    c.REPORT_ALREADY_OPEN.code: ("この内容はすでに通報しています。職員が確認するまでお待ちください。",
                                 "You reported this already. Staff will look at it."),
    c.REPORT_SELF.code: ("ご自身やご自身の投稿は通報できません。", "You cannot report yourself or what you wrote."),
    c.REPORT_TARGET_NOT_FOUND.code: ("通報する投稿・コメント・人が見つかりません。",
                                     "No such post, comment or person here."),
    c.REPORT_NOT_FOUND.code: ("対応待ちの通報が見つかりません。すでに対応済みかもしれません。",
                              "No such open report: it may have been decided already."),
    c.MODERATION_STAFF_ONLY.code: ("通報への対応は職員だけが行えます。", "Only the node's staff moderate."),
    c.MODERATION_BAD_ACTION.code: ("この対応はできません。人は非表示にできず、利用停止には日数が必要です。",
                                   "This cannot be done: a person is warned or suspended, not hidden; a "
                                   "suspension needs its days."),
    c.APPEAL_NOT_FOUND.code: ("該当する対応が見つかりません。", "No such decision about you."),
    c.APPEAL_ALREADY.code: ("この対応には、すでに異議を申し立てています（1回まで）。",
                            "You appealed this decision already (once per decision)."),
    c.APPEAL_NONE.code: ("判断を待っている異議申し立てはありません。", "No appeal waits on this decision."),
    c.POST_SUSPENDED.code: ("職員の判断により、期限まで投稿・コメント・メッセージが停止されています。",
                            "Staff suspended you: no posts, comments or messages until the date given."),
    c.POST_NODE_BLOCKED.code: ("このノードでは、あなたの地域のノードからの投稿・コメント・メッセージを"
                               "受け付けていません。",
                               "This node takes no posts, comments or messages from your home node."),
    # 共感 (likes, also on the projects service's themes and cases)
    lk.LIKE_OWN.code: ("ご自身の投稿やテーマには共感できません。",
                       "You cannot empathise with what you wrote yourself."),
    lk.LIKE_NOT_FOUND.code: ("共感できるものが見つかりません。非表示になったか、まだ公開されていません。",
                             "Nothing to empathise with here: it was hidden, or is not published yet."),
    # direct messages
    c.MESSAGE_SELF.code: ("自分自身にはメッセージを送れません。", "You cannot message yourself."),
    c.MESSAGE_BLOCKED.code: ("この方にはメッセージを送れません。", "This person does not take messages from you."),
    c.MESSAGE_YOU_BLOCKED.code: ("この方をブロックしています。送るにはブロックを解除してください。",
                                 "You blocked this person: unblock them to send a message."),
    c.MESSAGE_RATE_LIMIT.code: (
        f"メッセージは、1分間に{c.MESSAGES_PER_MINUTE}件までです。少し待ってからお試しください。",
        f"At most {c.MESSAGES_PER_MINUTE} messages a minute. Wait a little."),
}
