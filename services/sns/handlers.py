"""The sns service's endpoints, one table per domain. Each change runs in the unit of work's transaction, records the
asking person (their user id and display name, for My Page) with it, and wakes the outbox relay after the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.sns import (
    blogs,
    communities,
    directory,
    friends,
    leaders,
    likes,
    messages,
    moderation,
    open_data,
    openings,
    people,
    posts,
    privacy,
)
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import likes as lk
from towntip.kernel.contracts import mypage as mp
from towntip.kernel.contracts import notices as nc
from towntip.kernel.contracts import open_data as od
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts import sns_directory as sd
from towntip.kernel.contracts import sns_openings as oc
from towntip.kernel.domain import ANYONE, GATEWAY, GET, POST, SERVICE, STAFF, Domain, own, read, write
from towntip.kernel.uow import UnitOfWork

COMMUNITIES = Domain("communities", refusals=(
    c.COMMUNITY_NOT_FOUND, c.COMMUNITY_CLOSED, c.COMMUNITY_NOT_LEADER, c.COMMUNITY_OPEN_LIMIT,
    c.COMMUNITY_NAME_TAKEN, c.COMMUNITY_UNKNOWN_CATEGORY, c.COMMUNITY_ALREADY_MEMBER, c.COMMUNITY_NOT_MEMBER,
    c.COMMUNITY_LEADER_STAYS, c.COMMUNITY_MEMBER_NOT_FOUND, c.COMMUNITY_ALREADY_LEADER,
), ops=(
    write(c.EP_COMMUNITY_OPEN, c.CommunityOpen, c.Community, communities.open_,
          http=POST("/communities", "Open a theme community")),
    read(c.EP_COMMUNITY_LIST, c.CommunityListQuery, c.CommunityList, communities.list_, role=ANYONE,
         http=GET("/communities", "Theme communities")),
    read(c.EP_COMMUNITY_GET, c.CommunityQuery, c.Community, communities.get, role=ANYONE,
         http=GET("/communities/{community_id}", "One community")),
    read(c.EP_COMMUNITY_MEMBERS, c.CommunityQuery, c.MemberList, communities.member_list, role=ANYONE,
         http=GET("/communities/{community_id}/members", "A community's members")),
    write(c.EP_COMMUNITY_JOIN, c.CommunityAction, c.Community, communities.join,
          http=POST("/communities/{community_id}/join", "Join a community")),
    write(c.EP_COMMUNITY_LEAVE, c.CommunityAction, c.Community, communities.leave,
          http=POST("/communities/{community_id}/leave", "Leave a community")),
    write(c.EP_COMMUNITY_REMOVE, c.MemberAction, c.Community, communities.remove_member),
    write(c.EP_COMMUNITY_HAND_OVER, c.MemberAction, c.Community, communities.hand_over),
    write(c.EP_COMMUNITY_CLOSE, c.CommunityAction, c.Community, communities.close),
))

POSTS = Domain("posts", refusals=(
    c.COMMUNITY_NOT_FOUND, c.COMMUNITY_CLOSED, c.COMMUNITY_NOT_LEADER, c.POST_WRITE_LIMIT, c.POST_MEMBERS_ONLY,
    c.POST_NOT_FOUND, c.POST_NOT_AUTHOR, c.POST_HIDDEN, c.POST_ALREADY_HIDDEN, c.COMMENT_NOT_FOUND,
    c.COMMENT_HIDDEN, c.POST_SUSPENDED, c.POST_NODE_BLOCKED,
), ops=(
    write(c.EP_POST_CREATE, c.PostCreate, c.Post, posts.create,
          http=POST("/communities/{community_id}/posts", "Post in a community")),
    write(c.EP_POST_UPDATE, c.PostUpdate, c.Post, posts.update_post),
    write(c.EP_POST_DELETE, c.ItemRef, c.Done, posts.delete_post),
    write(c.EP_POST_HIDE, c.HideIn, c.Post, posts.hide_post),
    read(c.EP_POST_LIST, c.PostListQuery, c.PostList, posts.list_, role=ANYONE,
         http=GET("/communities/{community_id}/posts", "A community's posts")),
    read(c.EP_POST_GET, c.PostQuery, c.PostDetail, posts.page, role=ANYONE,
         http=GET("/posts/{post_id}", "One post and its comments")),
    write(c.EP_COMMENT_CREATE, c.CommentCreate, c.Comment, posts.create_comment,
          http=POST("/posts/{post_id}/comments", "Comment on a post")),
    write(c.EP_COMMENT_UPDATE, c.CommentUpdate, c.Comment, posts.update_comment),
    write(c.EP_COMMENT_DELETE, c.ItemRef, c.Done, posts.delete_comment),
    write(c.EP_COMMENT_HIDE, c.HideIn, c.Comment, posts.hide_comment),
))

FRIENDS = Domain("friends", refusals=(
    c.FRIEND_SELF, c.FRIEND_ALREADY, c.FRIEND_REQUEST_LIMIT, c.FRIEND_ALREADY_ASKED, c.FRIEND_REQUEST_PENDING,
    c.FRIEND_REQUEST_NOT_FOUND, c.FRIEND_REQUEST_NOT_YOURS, c.FRIEND_NOT_FRIENDS,
), ops=(
    # The request records the actor itself, in a set order with the addressee's row.
    write(c.EP_FRIEND_REQUEST, c.FriendRequestIn, c.FriendRequest, friends.request, setup=False),
    write(c.EP_FRIEND_ACCEPT, c.RequestAction, c.Friend, friends.accept),
    write(c.EP_FRIEND_DECLINE, c.RequestAction, c.Done, friends.decline),
    write(c.EP_FRIEND_CANCEL, c.RequestAction, c.Done, friends.cancel),
    write(c.EP_FRIEND_REMOVE, c.FriendRemove, c.Done, friends.remove),
    read(c.EP_FRIEND_LIST, c.FriendsQuery, c.Friends, friends.list_),
))

LIKES = Domain("likes", refusals=(lk.LIKE_OWN, lk.LIKE_NOT_FOUND, c.COMMUNITY_CLOSED), ops=(
    write(lk.EP_LIKE_GIVE, lk.LikeIn, lk.LikeState, likes.give, http=POST("/likes", "Give 共感 to a post or comment")),
    write(lk.EP_LIKE_WITHDRAW, lk.LikeIn, lk.LikeState, likes.withdraw,
          http=POST("/likes/withdraw", "Take back one's 共感")),
    read(lk.EP_LIKE_COUNTS, lk.LikesQuery, lk.LikeStates, likes.states, role=ANYONE),
    read(lk.EP_LIKES_RECEIVED, lk.ReceivedQuery, lk.Received, likes.received, role=GATEWAY),
))

MODERATION = Domain("moderation", refusals=(
    c.REPORT_ALREADY_OPEN, c.REPORT_SELF, c.REPORT_TARGET_NOT_FOUND, c.REPORT_NOT_FOUND, c.MODERATION_STAFF_ONLY,
    c.MODERATION_BAD_ACTION, c.APPEAL_NOT_FOUND, c.APPEAL_ALREADY, c.APPEAL_NONE,
), ops=(
    write(c.EP_REPORT_CREATE, c.ReportIn, c.Report, moderation.create_report,
          http=POST("/reports", "Report a post, comment, message or person to the node's staff")),
    read(c.EP_MODERATION_QUEUE, c.StaffQuery, c.ModerationQueue, moderation.queue, role=STAFF),
    write(c.EP_MODERATION_DECIDE, c.DecisionIn, c.Report, moderation.decide, role=STAFF),
    read(c.EP_MODERATION_MINE, c.MineQuery, c.Actions, moderation.mine,
         http=GET("/moderation/mine", "What the staff decided about my content, and my appeals")),
    write(c.EP_MODERATION_APPEAL, c.AppealIn, c.Action, moderation.appeal,
          http=POST("/moderation/appeals", "Appeal a decision about my content")),
    write(c.EP_MODERATION_APPEAL_DECIDE, c.AppealDecisionIn, c.Action, moderation.decide_appeal, role=STAFF),
    write(c.EP_BLOCK_PUT, c.BlockIn, c.Blocks, moderation.put_block, role=STAFF),
    write(c.EP_BLOCK_REMOVE, c.BlockRemove, c.Blocks, moderation.remove_block, role=STAFF),
))

MYPAGE = Domain("mypage", ops=(
    read(mp.EP_PERSON_SUMMARY, mp.SummaryQuery, mp.SnsSummary, friends.summary, role=GATEWAY),
    read(c.EP_LEADER_TODO, c.LeaderTodoQuery, c.LeaderTodo, leaders.todo),  # the person's own (リーダーの用事)
))

# Direct messages: each endpoint answers the actor's own conversations only (no role reads others': staff neither).
MESSAGES = Domain("messages", refusals=(
    c.MESSAGE_SELF, c.MESSAGE_BLOCKED, c.MESSAGE_YOU_BLOCKED, c.MESSAGE_RATE_LIMIT, c.POST_SUSPENDED,
    c.POST_NODE_BLOCKED,
), ops=(
    # The send records the actor itself, in a set order with the addressee's row, after its refusals.
    write(c.EP_MESSAGE_SEND, c.MessageIn, c.Message, messages.send, setup=False),
    read(c.EP_MESSAGE_CONVERSATIONS, c.ConversationsQuery, c.Conversations, messages.list_,
         http=GET("/messages", "My conversations, newest first")),
    read(c.EP_MESSAGE_THREAD, c.ThreadQuery, c.Thread, messages.thread,
         http=GET("/messages/with/{peer}", "My messages with one person")),
    write(c.EP_MESSAGE_READ, c.ReadIn, c.Unread, messages.mark_read, setup=False,
          http=POST("/messages/with/{peer}/read", "Mark a conversation read up to a message")),
    write(c.EP_MESSAGE_PEER, c.PeerSettingIn, c.PeerState, messages.set_peer,
          http=POST("/messages/with/{peer}/settings", "Block or mute a person")),
    read(c.EP_MESSAGE_UNREAD, c.UnreadQuery, c.Unread, messages.unread,
         http=GET("/messages/unread", "How many messages I have not read")),
))

# Asked by the notices service only (a notice to a community's members): bus only, the gateway may not.
AUDIENCE = Domain("audience", ops=(
    read(c.EP_COMMUNITY_AUDIENCE, nc.CommunityAudienceQuery, nc.Audience, communities.audience, role=SERVICE),
))

# Blogs (issue 20 point 2): a person's own entries with pictures; who may see one is decided on every read. The
# picture's upload is bus only (a prepared picture, base64: the gateway's portal makes it), and so is its download.
BLOGS = Domain("blogs", refusals=(
    c.BLOG_NOT_FOUND, c.BLOG_NOT_AUTHOR, c.BLOG_NOT_MEMBER, c.BLOG_TOO_MANY_PICTURES, c.BLOG_BAD_PICTURE,
    c.BLOG_HIDDEN, c.BLOG_COMMENT_NOT_FOUND, c.BLOG_AUDIENCE, c.COMMUNITY_NOT_FOUND, c.COMMUNITY_CLOSED,
    c.POST_WRITE_LIMIT, c.POST_SUSPENDED, c.POST_NODE_BLOCKED,
), ops=(
    write(c.EP_BLOG_CREATE, c.BlogCreate, c.BlogEntry, blogs.create,
          http=POST("/blogs", "Write a blog entry (its pictures are added on the portal)")),
    write(c.EP_BLOG_PICTURE_ADD, c.BlogPictureAdd, c.BlogPicture, blogs.add_picture,
          max_bytes=c.BLOG_PICTURE_REQUEST_BYTES, doc="add a prepared picture (and its thumbnail) to one's entry"),
    read(c.EP_BLOG_LIST, c.BlogListQuery, c.BlogList, blogs.list_, role=ANYONE,
         http=GET("/blogs", "Blog entries the caller may see, newest first")),
    read(c.EP_BLOG_GET, c.BlogQuery, c.BlogDetail, blogs.get, role=ANYONE,
         http=GET("/blogs/{entry_id}", "One blog entry, its pictures' descriptions and its comments")),
    read(c.EP_BLOG_PICTURE_GET, c.BlogPictureQuery, c.BlogPictureData, blogs.picture, role=ANYONE,
         doc="one picture of an entry the caller may see (full size or thumbnail), base64"),
    write(c.EP_BLOG_DELETE, c.ItemRef, c.Done, blogs.delete_entry),
    write(c.EP_BLOG_COMMENT_CREATE, c.BlogCommentCreate, c.BlogComment, blogs.create_comment,
          http=POST("/blogs/{entry_id}/comments", "Comment on a blog entry")),
    write(c.EP_BLOG_COMMENT_DELETE, c.ItemRef, c.Done, blogs.delete_comment),
))

# Other towns' communities (issue 20 point 6: services/sns/directory.py): a public read.
DIRECTORY = Domain("directory", refusals=(c.COMMUNITY_UNKNOWN_CATEGORY,), ops=(
    read(sd.EP_DIRECTORY_LIST, sd.DirectoryQuery, sd.Directory, directory.list_, role=ANYONE,
         http=GET("/directory/communities", "Communities in other towns")),
))

# Open data (public aggregates, small counts withheld) and the community leaders per month for the staff's figures.
OPEN_DATA = Domain("open_data", refusals=(od.USAGE_STAFF_ONLY,), ops=(
    read(od.EP_OPEN_DATA, od.OpenDataQuery, od.OpenData, open_data.tables, role=ANYONE),
    read(od.EP_USAGE, od.UsageQuery, od.Usage, open_data.usage, role=STAFF),
))

# Matching (マッチング, services/sns/openings.py): openings of communities and themes, applications, answers.
OPENINGS = Domain("openings", refusals=(
    oc.OPENING_NOT_FOUND, oc.OPENING_NOT_HOST, oc.OPENING_HOST_NOT_FOUND, oc.OPENING_NOT_ORGANISER,
    oc.OPENING_CLOSED, oc.OPENING_FULL, oc.OPENING_ALREADY_APPLIED, oc.OPENING_OWN, oc.OPENING_NO_APPLICATION,
    oc.OPENING_ALREADY_DECIDED, oc.OPENING_BAD_DATES, c.COMMUNITY_UNKNOWN_CATEGORY,
), ops=(
    # A theme's managers are asked of the projects service before the transaction: the row owns its transaction.
    own(oc.EP_OPENING_CREATE, oc.OpeningCreate, oc.Opening, openings.create),
    read(oc.EP_OPENING_LIST, oc.OpeningListQuery, oc.OpeningList, openings.list_, role=ANYONE,
         http=GET("/openings", "Open openings (募集), newest first; by community or theme, by category")),
    # Before /openings/{opening_id}, which would take "for-me" for an id. The person's district and interests are
    # the caller's to give (the portal passes their profile's).
    read(oc.EP_OPENING_FOR_ME, oc.ForMeQuery, oc.Matches, openings.for_me,
         http=GET("/openings/for-me", "Openings that fit me, and why (interests, district, stated skills)")),
    read(oc.EP_OPENING_GET, oc.OpeningQuery, oc.Opening, openings.get, role=ANYONE,
         http=GET("/openings/{opening_id}", "One opening (with a token: the caller's own application)")),
    write(oc.EP_OPENING_CLOSE, oc.OpeningAction, oc.Opening, openings.close),
    write(oc.EP_OPENING_APPLY, oc.ApplyIn, oc.Application, openings.apply,
          http=POST("/openings/{opening_id}/apply", "Apply to an opening")),
    write(oc.EP_OPENING_WITHDRAW, oc.OpeningAction, oc.Application, openings.withdraw,
          http=POST("/openings/{opening_id}/withdraw", "Withdraw one's application")),
    read(oc.EP_OPENING_APPLICANTS, oc.OpeningAction, oc.Applicants, openings.applicants),
    write(oc.EP_OPENING_DECIDE, oc.DecideIn, oc.Application, openings.decide),
    read(oc.EP_SKILLS_GET, oc.SkillsQuery, oc.Skills, openings.get_skills),
    write(oc.EP_SKILLS_PUT, oc.SkillsIn, oc.Skills, openings.put_skills),
))

# A person's data (issue 20 point 7): the gateway's export of the person's part (services/sns/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))

DOMAINS = (COMMUNITIES, POSTS, FRIENDS, LIKES, MODERATION, MYPAGE, AUDIENCE, MESSAGES, BLOGS, DIRECTORY, OPEN_DATA,
           OPENINGS, PRIVACY)


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None],
                    clock: Callable[[], datetime] = utcnow, public_url: str = "",
                    themes: openings.Themes | None = None) -> Endpoints:
    """The service's endpoints from its domains' tables (`themes`: the projects service, who manages a theme)."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node, "public_url": public_url, "themes": themes},
                                  setup=people.link_actor)
