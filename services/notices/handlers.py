"""The notices service's endpoints, one table per domain (other features of the service add their own domains to
DOMAINS). Each change runs in the unit of work's transaction and wakes the outbox relay (and the sending job) after
the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notices import feeds_handlers, inbox, life, messages, notices, privacy, towns
from services.notices.activity_handlers import DOMAINS as ACTIVITY_DOMAINS
from services.notices.audiences import Audiences
from services.notices.feeds_fetch import FeedReader
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts import notices_towns as tc
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.domain import GATEWAY, GET, POST, SERVICE, STAFF, Domain, own, read, write
from towntip.kernel.uow import UnitOfWork

INBOX = Domain("inbox", refusals=(c.ITEM_NOT_FOUND,), ops=(
    read(c.EP_INBOX_LIST, c.InboxQuery, c.InboxPage, inbox.list_,
         http=GET("/inbox", "My inbox: notices and official messages, newest first")),
    write(c.EP_INBOX_GET, c.ItemAction, c.InboxDetail, inbox.get,
          http=POST("/inbox/{item_id}/open", "Open one item of my inbox (marks it read)")),
    write(c.EP_INBOX_MARK, c.MarkIn, c.InboxItem, inbox.mark,
          http=POST("/inbox/{item_id}/mark", "Mark an item read, unread, archived or not")),
))

LIFE = Domain("life", refusals=(c.LIFE_HOME_ONLY,), ops=(
    read(c.EP_LIFE_GET, c.PersonQuery, c.LifeStage, life.get,
         http=GET("/me/life", "My life stage and life events (as I stated them)")),
    write(c.EP_LIFE_PUT, c.LifeStagePut, c.LifeStage, life.put, refusals=(c.LIFE_DISTRICT_UNKNOWN,),
          http=POST("/me/life", "State my life stage (every field optional; replaces what I said)")),
    write(c.EP_LIFE_DELETE, c.PersonQuery, c.LifeStage, life.delete_,
          http=POST("/me/life/delete", "Delete every answer of my life stage")),
))

NOTICES = Domain("notices", refusals=(c.NOTICE_STAFF_ONLY, c.NOTICE_NOT_FOUND), ops=(
    own(c.EP_NOTICE_PREVIEW, c.PreviewIn, c.RecipientCount, notices.preview, role=STAFF,
        refusals=(c.NOTICE_TARGET_UNKNOWN, c.NOTICE_AUDIENCE_UNAVAILABLE),
        http=POST("/staff/notice-recipients", "How many people a target reaches (a count, never who)")),
    own(c.EP_NOTICE_CREATE, c.NoticeCreate, c.StaffNotice, notices.create, role=STAFF,
        refusals=(c.NOTICE_TARGET_UNKNOWN, c.NOTICE_AUDIENCE_UNAVAILABLE, c.NOTICE_BAD_PERIOD,
                  c.NOTICE_PUBLISH_PAST),
        http=POST("/staff/notices", "Write a notice and schedule it (approval first above the threshold)",
                  status=201)),
    write(c.EP_NOTICE_APPROVE, c.NoticeAction, c.StaffNotice, notices.approve, role=STAFF,
          refusals=(c.NOTICE_NOT_AWAITING, c.NOTICE_SELF_APPROVAL),
          http=POST("/staff/notices/{notice_id}/approve", "Approve a notice to many (not its author)")),
    write(c.EP_NOTICE_CORRECT, c.NoticeCorrect, c.StaffNotice, notices.correct, role=STAFF,
          refusals=(c.NOTICE_WITHDRAWN, c.NOTICE_BAD_PERIOD),
          http=POST("/staff/notices/{notice_id}/correct", "Correct a notice (a new version; the old one kept)")),
    write(c.EP_NOTICE_WITHDRAW, c.NoticeAction, c.StaffNotice, notices.withdraw, role=STAFF,
          refusals=(c.NOTICE_WITHDRAWN,),
          http=POST("/staff/notices/{notice_id}/withdraw", "Withdraw a notice (kept, shown as withdrawn)")),
    read(c.EP_NOTICE_LIST, c.StaffQuery, c.StaffNoticeList, notices.list_, role=STAFF,
         http=GET("/staff/notices", "Notices, newest first, with how many they reached and opened")),
    read(c.EP_NOTICE_GET, c.NoticeAction, c.StaffNoticeDetail, notices.get, role=STAFF,
         http=GET("/staff/notices/{notice_id}", "One notice, its history and counts")),
))

MESSAGES = Domain("messages", ops=(
    write(c.EP_MESSAGE_SEND, c.MessageSend, c.MessageSent, messages.send, role=SERVICE,
          refusals=(c.MESSAGE_UNKNOWN_PERSON,)),
))

# Other towns' public notices (issue 18 point 3): which member towns the person follows, on their home node.
TOWNS = Domain("towns", refusals=(tc.TOWNS_HOME_ONLY,), ops=(
    own(tc.EP_TOWNS_LIST, tc.TownsQuery, tc.Towns, towns.list_,
        http=GET("/me/towns", "The member towns of the federation, and whose public notices I follow")),
    own(tc.EP_TOWNS_FOLLOW, tc.TownFollow, tc.Towns, towns.follow,
        refusals=(tc.TOWN_UNKNOWN, tc.TOWNS_UNAVAILABLE, tc.TOWNS_TOO_MANY),
        http=POST("/me/towns/follow", "Follow a member town's public notices (they arrive in my inbox)")),
    own(tc.EP_TOWNS_UNFOLLOW, tc.TownFollow, tc.Towns, towns.unfollow,
        http=POST("/me/towns/unfollow", "Stop following a town's public notices")),
))

# A person's data (issue 20 point 7): the gateway's export of the person's part (services/notices/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))

DOMAINS: tuple[Domain, ...] = (INBOX, LIFE, NOTICES, MESSAGES, TOWNS, *feeds_handlers.DOMAINS, *ACTIVITY_DOMAINS,
                               PRIVACY)


def build_endpoints(*, sessions: async_sessionmaker[AsyncSession], node: str, on_commit: Callable[[], None],
                    audiences: Audiences, clock: Callable[[], datetime] = utcnow, districts: tuple[str, ...] = (),
                    approval_over: int = c.APPROVAL_OVER_DEFAULT, town_name: str = "",
                    reader: FeedReader | None = None, owner: str = "", **features: Any) -> Endpoints:
    """The service's endpoints from its domains' tables (`reader`: how collected feeds are fetched; `owner`: this
    instance's name on the feeds' leases; `features`: what other features' handlers take, such as the activity
    feature's `candidates`, `vapid_public` and `allow_local`)."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={
        "node": node, "audiences": audiences, "districts": districts, "approval_over": approval_over,
        "town_name": town_name or node, "reader": reader or FeedReader(), "owner": owner or node, **features})
