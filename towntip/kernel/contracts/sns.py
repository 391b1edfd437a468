"""Contracts of the community SNS (svc.<node>.sns.*): theme communities (プロジェクト・コミュニティ) with their leader
(コミュニティリーダー) and members, posts and comments (ブログやコメントなどの投稿), friendships (トモダチ関係), and
direct messages (ダイレクト・メッセージ).

Anyone signed in at this node opens a community: this node's people and people of other nodes logged in here by
cross-node SSO (their handle is name@othernode). Reading is public; writing needs membership of an open community.
Who is asking travels inside each request as an `Actor` (contracts.actor); the service decides what they may do.
The service never asks identity: the gateway passes the public profile of a person it looked up (friend requests).
My Page's part is contracts.mypage (`person.summary` → `SnsSummary`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.contracts.projects import CategoryCode, Fields, Uuid
from towntip.kernel.errors import Refusal

SERVICE = "sns"

# Endpoints (the tail of svc.<node>.sns.<name>); every change carries `actor`.
EP_COMMUNITY_OPEN = "communities.open"  # CommunityOpen -> Community (anyone signed in: becomes its leader)
EP_COMMUNITY_LIST = "communities.list"  # CommunityListQuery -> CommunityList (public)
EP_COMMUNITY_GET = "communities.get"  # CommunityQuery -> Community (public)
EP_COMMUNITY_MEMBERS = "communities.members"  # CommunityQuery -> MemberList (public)
EP_COMMUNITY_JOIN = "communities.join"  # CommunityAction -> Community (anyone signed in; open communities)
EP_COMMUNITY_LEAVE = "communities.leave"  # CommunityAction -> Community (a member; not the leader)
EP_COMMUNITY_REMOVE = "communities.members.remove"  # MemberAction -> Community (the leader)
EP_COMMUNITY_HAND_OVER = "communities.hand_over"  # MemberAction -> Community (the leader, to a member)
EP_COMMUNITY_CLOSE = "communities.close"  # CommunityAction -> Community (the leader: read-only, kept)
EP_POST_CREATE = "posts.create"  # PostCreate -> Post (members of an open community)
EP_POST_UPDATE = "posts.update"  # PostUpdate -> Post (its author)
EP_POST_DELETE = "posts.delete"  # ItemRef -> Done (its author)
EP_POST_HIDE = "posts.hide"  # HideIn -> Post (the community's leader; the reason is kept)
EP_POST_LIST = "posts.list"  # PostListQuery -> PostList (public; newest first, keyset cursor)
EP_POST_GET = "posts.get"  # PostQuery -> PostDetail (public: the post and a page of its comments)
EP_COMMENT_CREATE = "comments.create"  # CommentCreate -> Comment (members of an open community)
EP_COMMENT_UPDATE = "comments.update"  # CommentUpdate -> Comment (its author)
EP_COMMENT_DELETE = "comments.delete"  # ItemRef -> Done (its author)
EP_COMMENT_HIDE = "comments.hide"  # HideIn -> Comment (the community's leader)
EP_FRIEND_REQUEST = "friends.request"  # FriendRequestIn -> FriendRequest (to a person the gateway found)
EP_FRIEND_ACCEPT = "friends.accept"  # RequestAction -> Friend (the addressee)
EP_FRIEND_DECLINE = "friends.decline"  # RequestAction -> Done (the addressee)
EP_FRIEND_CANCEL = "friends.cancel"  # RequestAction -> Done (the sender)
EP_FRIEND_REMOVE = "friends.remove"  # FriendRemove -> Done (either friend)
EP_FRIEND_LIST = "friends.list"  # FriendsQuery -> Friends (the person's own)
# notices.CommunityAudienceQuery -> notices.Audience: the members' handles, for the notices service only
EP_COMMUNITY_AUDIENCE = "audience.community"
EP_LEADER_TODO = "leaders.todo"  # LeaderTodoQuery -> LeaderTodo (the person's own: what waits in what they lead)
LEADER_WINDOW_DAYS = 7  # "new" for a leader's list: joined, posted or commented within this many days

# Limits (characters; per person per minute).
NAME_MAX = 80
DESCRIPTION_MAX = 2000
TITLE_MAX = 120
BODY_MAX = 10_000
COMMENT_MAX = 2000
REASON_MAX = 300
CATEGORIES_MAX = 5
WRITES_PER_MINUTE = 10  # posts and comments together
REQUESTS_PER_MINUTE = 10  # friend requests
OPENED_PER_HOUR = 5  # communities a person opens
PAGE_MAX = 50


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

COMMUNITY_NOT_FOUND = Refusal("community.not_found", 404, "no such community")
COMMUNITY_CLOSED = Refusal("community.closed", 409, "the community is closed: it can be read, not changed")
COMMUNITY_NOT_LEADER = Refusal("community.not_leader", 403, "only the community's leader may do this")
COMMUNITY_OPEN_LIMIT = Refusal("community.open_limit", 429, f"at most {OPENED_PER_HOUR} new communities an hour")
COMMUNITY_NAME_TAKEN = Refusal("community.name_taken", 409, "a community of that name exists already")
COMMUNITY_UNKNOWN_CATEGORY = Refusal("community.unknown_category", 400, "no such category")
COMMUNITY_ALREADY_MEMBER = Refusal("community.already_member", 409, "the person is a member already")
COMMUNITY_NOT_MEMBER = Refusal("community.not_member", 409, "the person is not a member")
COMMUNITY_LEADER_STAYS = Refusal("community.leader_stays", 409,
                                 "the leader hands the community over (or closes it) before leaving it")
COMMUNITY_MEMBER_NOT_FOUND = Refusal("community.member_not_found", 404, "the person named is not a member")
COMMUNITY_ALREADY_LEADER = Refusal("community.already_leader", 409, "the person leads the community already")
POST_WRITE_LIMIT = Refusal("post.write_limit", 429, f"at most {WRITES_PER_MINUTE} posts and comments a minute")
POST_MEMBERS_ONLY = Refusal("post.members_only", 403, "only members write in a community")
POST_NOT_FOUND = Refusal("post.not_found", 404, "no such post")
POST_NOT_AUTHOR = Refusal("post.not_author", 403, "only its author may change a post or a comment")
POST_HIDDEN = Refusal("post.hidden", 409, "the leader hid the post: no edits, no new comments")
POST_ALREADY_HIDDEN = Refusal("post.already_hidden", 409, "the post or comment is hidden already")
COMMENT_NOT_FOUND = Refusal("comment.not_found", 404, "no such comment")
COMMENT_HIDDEN = Refusal("comment.hidden", 409, "the leader hid the comment: it cannot be edited")
FRIEND_SELF = Refusal("friend.self", 400, "a person cannot befriend themself")
FRIEND_ALREADY = Refusal("friend.already_friends", 409, "the two are friends already")
FRIEND_REQUEST_LIMIT = Refusal("friend.request_limit", 429, f"at most {REQUESTS_PER_MINUTE} friend requests a minute")
FRIEND_ALREADY_ASKED = Refusal("friend.already_asked", 409, "the person has asked already")
FRIEND_REQUEST_PENDING = Refusal("friend.request_pending", 409, "a request between the two is pending already")
FRIEND_REQUEST_NOT_FOUND = Refusal("friend.request_not_found", 404, "no such friend request")
FRIEND_REQUEST_NOT_YOURS = Refusal("friend.request_not_yours", 403,
                                   "only the addressee answers a request, only its sender cancels it")
FRIEND_NOT_FRIENDS = Refusal("friend.not_friends", 404, "the two are not friends")

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
CommunityName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=NAME_MAX)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_MAX)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=BODY_MAX)]
CommentBody = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=COMMENT_MAX)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ItemId = Annotated[int, Field(ge=1, le=2**62)]
Status = Literal["open", "closed"]
Role = Literal["leader", "member"]


# ---- communities ------------------------------------------------------------------------------------------------

class CommunityOpen(BaseModel):
    model_config = _IN
    actor: Actor
    name: CommunityName
    description: Description = ""
    categories: Annotated[Fields, Field(min_length=1, max_length=CATEGORIES_MAX)]


class CommunityListQuery(BaseModel):
    model_config = _IN
    category: CategoryCode | None = None  # a code of the category grid
    search: Annotated[str, StringConstraints(strip_whitespace=True, max_length=NAME_MAX)] = ""  # in the name
    member: Actor | None = None  # only the communities this person belongs to
    include_closed: bool = True
    before: Uuid | None = None  # the cursor: communities opened before this one (the `next` of the previous page)
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 20


class CommunityQuery(BaseModel):
    model_config = _IN
    community_id: Uuid
    actor: Actor | None = None  # says `my_role` in the answer


class CommunityAction(BaseModel):
    model_config = _IN
    actor: Actor
    community_id: Uuid


class MemberAction(CommunityAction):
    member: GlobalHandle


class Person(Frozen):
    """A person as others see them here: None for a deleted account (退会したユーザー)."""

    global_handle: str
    display_name: str


class Community(Frozen):
    id: str
    name: str
    description: str
    categories: list[str]
    status: Status
    leader: Person | None
    members: int
    opened_at: datetime
    closed_at: datetime | None = None
    my_role: Role | None = None  # the asking actor's role, None if not a member (or no actor)


class CommunityList(Frozen):
    communities: list[Community]  # newest first
    next: str | None = None  # pass as `before` for the next (older) page


class Member(Person):
    role: Role
    joined_at: datetime


class MemberList(Frozen):
    members: list[Member]


# ---- posts and comments -----------------------------------------------------------------------------------------

class PostCreate(BaseModel):
    model_config = _IN
    actor: Actor
    community_id: Uuid
    title: Title
    body: Body


class PostUpdate(BaseModel):
    model_config = _IN
    actor: Actor
    post_id: ItemId
    title: Title
    body: Body


class ItemRef(BaseModel):
    model_config = _IN
    actor: Actor
    id: ItemId


class HideIn(ItemRef):
    reason: Reason


class CommentCreate(BaseModel):
    model_config = _IN
    actor: Actor
    post_id: ItemId
    body: CommentBody


class CommentUpdate(BaseModel):
    model_config = _IN
    actor: Actor
    comment_id: ItemId
    body: CommentBody


class PostListQuery(BaseModel):
    model_config = _IN
    community_id: Uuid
    before: ItemId | None = None  # the cursor: posts older than this one (the `next` of the previous page)
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 20
    actor: Actor | None = None


class PostQuery(BaseModel):
    model_config = _IN
    post_id: ItemId
    actor: Actor | None = None
    comments_before: ItemId | None = None  # the cursor of the comments: older than this one
    comments_limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = PAGE_MAX


class Hidden(Frozen):
    at: datetime
    reason: str  # shown to the leader and the author only; others see that it was hidden
    by_staff: bool = False  # hidden by the node's staff (moderation), not by the community's leader


class Comment(Frozen):
    id: int
    post_id: int
    author: Person | None  # None: a deleted account
    body: str  # "" when hidden and the reader is neither its author nor the leader
    created_at: datetime
    edited_at: datetime | None = None
    hidden: Hidden | None = None
    mine: bool = False
    likes: int = 0  # 共感 (contracts.likes)
    liked: bool = False  # the asking actor gave 共感


class Post(Frozen):
    id: int
    community_id: str
    author: Person | None
    title: str
    body: str
    created_at: datetime
    edited_at: datetime | None = None
    hidden: Hidden | None = None
    comments: int = 0
    mine: bool = False
    likes: int = 0  # 共感 (contracts.likes)
    liked: bool = False  # the asking actor gave 共感


class PostList(Frozen):
    posts: list[Post]
    next: int | None = None  # pass as `before` for the next (older) page


class PostDetail(Frozen):
    post: Post
    community: Community
    comments: list[Comment]  # newest first, one page
    next_comments: int | None = None  # pass as `comments_before` for the next (older) page


class Done(Frozen):
    ok: bool = True


# ---- friends ----------------------------------------------------------------------------------------------------

class FriendRequestIn(BaseModel):
    """`to` is a person known at this node: the gateway looked them up at the identity service and passes the public
    profile it got (their display name)."""

    model_config = _IN
    actor: Actor
    to: GlobalHandle
    to_name: DisplayName


class RequestAction(BaseModel):
    model_config = _IN
    actor: Actor
    request_id: Uuid


class FriendRemove(BaseModel):
    model_config = _IN
    actor: Actor
    friend: GlobalHandle


class FriendsQuery(BaseModel):
    model_config = _IN
    actor: Actor


class FriendRequest(Frozen):
    id: str
    sender: Person
    addressee: Person
    sent_at: datetime
    # A request crossing one already sent the other way is that request's answer: the two are friends at once.
    became_friends: bool = False


class Friend(Person):
    since: datetime


class Friends(Frozen):
    friends: list[Friend]
    incoming: list[FriendRequest]
    outgoing: list[FriendRequest]


# ---- events (evt.<node>.sns.<snake_case type>) ------------------------------------------------------------------

class SnsEvent(Event):
    """The base of this service's events: frozen, versioned, registered for the AsyncAPI document."""

    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False  # a base, on no stream itself


class CommunityOpened(SnsEvent):
    community_id: str
    name: str
    categories: list[str]
    at: datetime


class CommunityClosed(SnsEvent):
    community_id: str
    categories: list[str]
    at: datetime
    why: Literal["leader", "leader_deleted"]


class PostPublished(SnsEvent):
    post_id: int
    community_id: str
    categories: list[str]
    at: datetime


class CommentPublished(SnsEvent):
    """A comment on a post (issue 18: the post's author is told). Handles only, never the text; sns events stay at
    this node (EVT_<NODE>_SNS is sourced by no peer)."""

    comment_id: int
    post_id: int
    community_id: str
    post_author: str  # global handle
    author: str  # global handle
    at: datetime


class FriendRequested(SnsEvent):
    """A friend request sent (issue 18: its addressee is told). Not announced when it answered a request the other
    had sent (they became friends at once)."""

    request_id: str
    sender: str  # global handle
    sender_name: str = ""
    addressee: str  # global handle
    at: datetime


# ---- moderation (issue 20 point 4): reports, the staff's queue and decisions, appeals, blocked peer nodes ---------

EP_REPORT_CREATE = "reports.create"  # ReportIn -> Report (anyone signed in; one open report per reporter and thing)
EP_MODERATION_QUEUE = "moderation.queue"  # StaffQuery -> ModerationQueue (staff: open reports, appeals waiting)
EP_MODERATION_DECIDE = "moderation.decide"  # DecisionIn -> Report (staff: hide, warn, suspend or dismiss)
EP_MODERATION_MINE = "moderation.mine"  # MineQuery -> Actions (the person: what was decided about them)
EP_MODERATION_APPEAL = "moderation.appeal"  # AppealIn -> Action (the person concerned, once per action)
EP_MODERATION_APPEAL_DECIDE = "moderation.appeal_decide"  # AppealDecisionIn -> Action (staff: uphold or lift)
EP_BLOCK_PUT = "blocks.put"  # BlockIn -> Blocks (staff: a peer node whose people may not post or comment here)
EP_BLOCK_REMOVE = "blocks.remove"  # BlockRemove -> Blocks (staff)

ReportReason = Literal["spam", "harassment", "personal_info", "inappropriate", "other"]
REPORT_REASONS: tuple[str, ...] = ("spam", "harassment", "personal_info", "inappropriate", "other")
ReportKind = Literal["post", "comment", "person", "blog", "bcomment"]  # blog: an entry; bcomment: its comment
ActionKind = Literal["hide", "warn", "suspend"]
DETAIL_MAX = 1000
SUSPEND_DAYS_MAX = 365
NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$")]

REPORT_ALREADY_OPEN = Refusal("report.already_open", 409,
                              "the person has an open report on this already: staff will look at it")
REPORT_SELF = Refusal("report.self", 400, "a person cannot report themself or what they wrote")
REPORT_TARGET_NOT_FOUND = Refusal("report.target_not_found", 404,
                                  "no such post, comment, blog entry or person here")
REPORT_NOT_FOUND = Refusal("report.not_found", 404, "no such open report")
MODERATION_STAFF_ONLY = Refusal("moderation.staff_only", 403, "only the node's staff moderate")
MODERATION_BAD_ACTION = Refusal("moderation.bad_action", 400,
                                "a person cannot be hidden (warn or suspend them); a suspension needs its days")
APPEAL_NOT_FOUND = Refusal("appeal.not_found", 404, "no such decision about this person")
APPEAL_ALREADY = Refusal("appeal.already", 409, "this decision was appealed already: one appeal per decision")
APPEAL_NONE = Refusal("appeal.none", 409, "no appeal waits on this decision")
POST_SUSPENDED = Refusal("post.suspended", 403,
                         "staff suspended the person: no posts, comments or messages until the date")
POST_NODE_BLOCKED = Refusal("post.node_blocked", 403,
                            "this node does not take posts, comments or messages from that node")

Detail = Annotated[str, StringConstraints(strip_whitespace=True, max_length=DETAIL_MAX)]


class ReportIn(BaseModel):
    """`target`: a post's or comment's id, or a person's global handle."""

    model_config = _IN
    actor: Actor
    kind: ReportKind
    target: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    reason: ReportReason
    detail: Detail = ""


class StaffQuery(BaseModel):
    model_config = _IN
    actor: Actor


class DecisionIn(BaseModel):
    model_config = _IN
    actor: Actor
    report_id: Uuid
    action: Literal["hide", "warn", "suspend", "dismiss"]
    reason: Reason  # required every time, kept with who and when
    days: Annotated[int, Field(ge=1, le=SUSPEND_DAYS_MAX)] | None = None  # suspend only


class MineQuery(BaseModel):
    model_config = _IN
    actor: Actor


class AppealIn(BaseModel):
    model_config = _IN
    actor: Actor
    action_id: Uuid
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=DETAIL_MAX)]


class AppealDecisionIn(BaseModel):
    model_config = _IN
    actor: Actor
    action_id: Uuid
    decision: Literal["uphold", "lift"]
    reason: Reason


class BlockIn(BaseModel):
    model_config = _IN
    actor: Actor
    node: NodeId
    reason: Reason


class BlockRemove(BaseModel):
    model_config = _IN
    actor: Actor
    node: NodeId


class Report(Frozen):
    id: str
    kind: ReportKind
    target: str
    author: str | None  # the global handle of whoever wrote it (or the person reported)
    text: str  # what was reported, as it is now ("" for a person or a deleted item)
    link: str  # the page to see it on ("" for a person)
    reporter: str  # "" once their account is deleted
    reason: ReportReason
    detail: str
    created_at: datetime
    status: Literal["open", "closed"]
    decision: str | None = None  # hide | warn | suspend | dismiss
    decision_reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


class Action(Frozen):
    """A decision about a person (hide, warn, suspend), with its reason, who and when; their one appeal."""

    id: str
    person: str
    action: ActionKind
    reason: str
    kind: ReportKind
    target: str
    until: datetime | None = None  # a suspension's end
    by: str
    at: datetime
    appeal: str | None = None
    appealed_at: datetime | None = None
    appeal_decision: Literal["uphold", "lift"] | None = None
    appeal_reason: str | None = None
    appeal_decided_by: str | None = None
    appeal_decided_at: datetime | None = None


class Block(Frozen):
    node: str
    reason: str
    by: str
    at: datetime


class Blocks(Frozen):
    blocks: list[Block]


class ModerationQueue(Frozen):
    reports: list[Report]  # open, oldest first
    appeals: list[Action]  # appealed and not yet decided, oldest first
    blocks: list[Block]


class Actions(Frozen):
    actions: list[Action]  # newest first


class ModerationDecided(SnsEvent):
    """Staff decided about a person (hide, warn, suspend) or an appeal (uphold, lift): the person is told through the
    notices service. Handles and the staff's reason only, never the reported text or who reported."""

    action_id: str
    person: str  # global handle
    action: str  # hide | warn | suspend | uphold | lift
    reason: str
    until: datetime | None = None
    at: datetime


# ---- what waits for a community's leader (リーダーの用事) ---------------------------------------------------------


class LeaderTodoQuery(BaseModel):
    model_config = _IN
    actor: Actor


class LeaderCommunity(Frozen):
    """One open community the person leads and what came in it since `LeaderTodo.since` (not the leader's own, not
    hidden): members to welcome, posts and comments to read (and hide if they break the community's rules)."""

    community_id: str
    name: str
    categories: list[str]
    members: int
    new_members: int
    new_posts: int
    new_comments: int


class LeaderTodo(Frozen):
    since: datetime  # LEADER_WINDOW_DAYS before the answer
    communities: list[LeaderCommunity]  # those with something new first, then by name


# ---- direct messages (ダイレクト・メッセージ, issue 20 point 3) ------------------------------------------------------
# Between two people known here by global handle (people of other nodes logged in here by cross-node SSO included);
# only the two read a conversation: no endpoint answers message bodies to anyone else, staff included.

EP_MESSAGE_SEND = "messages.send"  # MessageIn -> Message (to a person the gateway found; not one who blocked you)
EP_MESSAGE_CONVERSATIONS = "messages.conversations"  # ConversationsQuery -> Conversations (the person's own)
EP_MESSAGE_THREAD = "messages.thread"  # ThreadQuery -> Thread (the person's own, newest first, keyset cursor)
EP_MESSAGE_READ = "messages.read"  # ReadIn -> Unread (the person marks the thread read up to a message)
EP_MESSAGE_PEER = "messages.peer"  # PeerSettingIn -> PeerState (block or unblock, mute or unmute a person)
EP_MESSAGE_UNREAD = "messages.unread"  # UnreadQuery -> Unread (the person's total, muted conversations left out)

MESSAGE_MAX = 2000
MESSAGES_PER_MINUTE = 20
PREVIEW_MAX = 80

MESSAGE_SELF = Refusal("message.self", 400, "a person cannot message themself")
MESSAGE_BLOCKED = Refusal("message.blocked", 403, "the person does not take messages from you")
MESSAGE_YOU_BLOCKED = Refusal("message.you_blocked", 409, "you blocked the person: unblock them to message them")
MESSAGE_RATE_LIMIT = Refusal("message.rate_limit", 429, f"at most {MESSAGES_PER_MINUTE} messages a minute")

MessageBody = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MESSAGE_MAX)]


class MessageIn(BaseModel):
    """`to` is a person known at this node: the gateway looked them up at the identity service and passes the public
    profile it got (their display name), as for a friend request."""

    model_config = _IN
    actor: Actor
    to: GlobalHandle
    to_name: DisplayName
    body: MessageBody


class ConversationsQuery(BaseModel):
    model_config = _IN
    actor: Actor
    before: ItemId | None = None  # the `next` of the previous page
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 20


class ThreadQuery(BaseModel):
    model_config = _IN
    actor: Actor
    peer: GlobalHandle
    before: ItemId | None = None
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 20


class ReadIn(BaseModel):
    model_config = _IN
    actor: Actor
    peer: GlobalHandle
    upto: ItemId  # the newest message the person saw


class PeerSettingIn(BaseModel):
    """Block or unblock, mute or unmute another person (a field left out is left as it is)."""

    model_config = _IN
    actor: Actor
    peer: GlobalHandle
    blocked: bool | None = None
    muted: bool | None = None


class UnreadQuery(BaseModel):
    model_config = _IN
    actor: Actor


class Message(Frozen):
    id: int
    sender: str  # global handle
    body: str
    sent_at: datetime
    mine: bool


class PeerState(Frozen):
    peer: str
    blocked: bool = False  # the actor blocked the peer
    muted: bool = False  # the actor muted the peer


class Conversation(Frozen):
    peer: Person
    last_at: datetime | None
    preview: str  # the start of the newest message (the person's own conversation)
    last_mine: bool
    unread: int  # 0 when muted
    muted: bool
    blocked: bool
    cursor: int  # the newest message's id: the list's order


class Conversations(Frozen):
    conversations: list[Conversation]  # the newest message first
    unread_total: int  # muted conversations left out
    next: int | None = None  # pass as `before` for the next (older) page


class Thread(Frozen):
    peer: Person
    messages: list[Message]  # newest first, one page
    next: int | None = None  # pass as `before` for the next (older) page
    unread: int  # before this page was read
    state: PeerState


class Unread(Frozen):
    unread: int


# ---- blogs (issue 20 point 2): a person's own entries outside communities, with pictures ----------------------
# An entry is seen by everyone (public, also not signed in), the author's friends, or one community's members, as the
# author chose; the service enforces it on every read (the list, one entry, its pictures, its comments, 共感). Staff
# hide an entry or comment through moderation (report kinds "blog" and "bcomment"); a hidden one is shown to nobody
# but its author. Pictures are prepared by the gateway (towntip.kernel.images.prepare: checked by content, upright,
# metadata stripped, resized), one per request (a picture is most of the bus's 1 MB message), checked again here.

EP_BLOG_CREATE = "blogs.create"  # BlogCreate -> BlogEntry (anyone signed in, not suspended, not of a blocked node)
EP_BLOG_PICTURE_ADD = "blogs.pictures.add"  # BlogPictureAdd -> BlogPicture (the entry's author; at most 4)
EP_BLOG_LIST = "blogs.list"  # BlogListQuery -> BlogList (what the actor may see, newest first; keyset cursor)
EP_BLOG_GET = "blogs.get"  # BlogQuery -> BlogDetail (the entry, its pictures, a page of its comments)
EP_BLOG_PICTURE_GET = "blogs.pictures.get"  # BlogPictureQuery -> BlogPictureData (whoever may see the entry)
EP_BLOG_DELETE = "blogs.delete"  # ItemRef -> Done (its author: the pictures, comments and 共感 go with it)
EP_BLOG_COMMENT_CREATE = "blogs.comments.create"  # BlogCommentCreate -> BlogComment (whoever may see the entry)
EP_BLOG_COMMENT_DELETE = "blogs.comments.delete"  # ItemRef -> Done (the comment's author or the entry's author)

BLOG_PICTURES_MAX = 4
BLOG_FULL_SIDE, BLOG_FULL_BYTES = 1280, 560 * 1024  # base64 with the thumbnail stays under the bus's 1 MB message
BLOG_THUMB_SIDE, BLOG_THUMB_BYTES = 400, 80 * 1024
BLOG_PICTURE_REQUEST_BYTES = 1_000_000  # the picture request's limit on the bus (others: 64 KB)
BlogAudience = Literal["public", "friends", "community"]
BLOG_AUDIENCES: tuple[str, ...] = ("public", "friends", "community")

BLOG_NOT_FOUND = Refusal("blog.not_found", 404, "no such blog entry, or not one you may see")
BLOG_NOT_AUTHOR = Refusal("blog.not_author", 403, "only its author may do this to a blog entry or comment")
BLOG_NOT_MEMBER = Refusal("blog.not_member", 403, "an entry for a community is written by one of its members")
BLOG_TOO_MANY_PICTURES = Refusal("blog.too_many_pictures", 409,
                                 f"a blog entry has at most {BLOG_PICTURES_MAX} pictures")
BLOG_BAD_PICTURE = Refusal("blog.bad_picture", 422, "not a prepared JPEG or PNG picture of the allowed size")
BLOG_HIDDEN = Refusal("blog.hidden", 409, "staff hid the entry: no new comments or pictures")
BLOG_COMMENT_NOT_FOUND = Refusal("blog.comment_not_found", 404, "no such comment on a blog entry")
BLOG_AUDIENCE = Refusal("blog.audience", 400, "a community entry names its community; the others name none")

BlogB64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]+={0,2}$",
                                           max_length=(BLOG_FULL_BYTES * 4) // 3 + 4)]
BlogAlt = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
BlogPictureId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class BlogCreate(BaseModel):
    model_config = _IN
    actor: Actor
    title: Title
    body: Body
    audience: BlogAudience = "public"
    community_id: Uuid | None = None  # with audience "community" only (the author must be a member)


class BlogPictureAdd(BaseModel):
    model_config = _IN
    actor: Actor
    entry_id: ItemId
    image: BlogB64  # prepared (towntip.kernel.images.prepare at BLOG_FULL_SIDE)
    thumb: BlogB64  # the same at BLOG_THUMB_SIDE
    alt: BlogAlt  # what the picture shows, read aloud to those who cannot see it


class BlogListQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None  # None: public entries only
    author: GlobalHandle | None = None  # only this person's entries (those the actor may see)
    before: ItemId | None = None  # the cursor: entries older than this one (the `next` of the previous page)
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = 20


class BlogQuery(BaseModel):
    model_config = _IN
    entry_id: ItemId
    actor: Actor | None = None
    comments_before: ItemId | None = None
    comments_limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = PAGE_MAX


class BlogPictureQuery(BaseModel):
    model_config = _IN
    picture_id: BlogPictureId
    size: Literal["full", "thumb"] = "full"
    actor: Actor | None = None


class BlogCommentCreate(BaseModel):
    model_config = _IN
    actor: Actor
    entry_id: ItemId
    body: CommentBody


class BlogPicture(Frozen):
    id: str
    entry_id: int
    position: int
    alt: str
    content_type: str
    width: int
    height: int


class BlogPictureData(Frozen):
    content_type: str
    data: str  # base64
    public: bool  # the entry is public (the gateway may let shared caches keep it)


class BlogEntry(Frozen):
    id: int
    author: Person | None  # None: a deleted account
    title: str
    body: str
    audience: BlogAudience
    community: str | None = None  # the community's id (audience "community")
    community_name: str | None = None
    created_at: datetime
    hidden: Hidden | None = None  # hidden by staff: only the author sees the entry at all
    pictures: list[BlogPicture] = []
    comments: int = 0
    mine: bool = False
    likes: int = 0  # 共感 (contracts.likes, kind "blog")
    liked: bool = False


class BlogComment(Frozen):
    id: int
    entry_id: int
    author: Person | None
    body: str  # "" when staff hid it and the reader did not write it
    created_at: datetime
    hidden: Hidden | None = None
    mine: bool = False
    likes: int = 0  # 共感 (kind "bcomment")
    liked: bool = False


class BlogList(Frozen):
    entries: list[BlogEntry]
    next: int | None = None  # pass as `before` for the next (older) page


class BlogDetail(Frozen):
    entry: BlogEntry
    comments: list[BlogComment]  # newest first, one page
    next_comments: int | None = None
