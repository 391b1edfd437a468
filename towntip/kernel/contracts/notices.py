"""Contracts of the notices service (svc.<node>.notices.*): the person's inbox (電子私書箱) of notices (お知らせ) and
official messages from the municipality, the person's own life stage (ライフステージ), and the staff's notices.

A person signed in at this node reads and keeps their own inbox: the service answers only with the actor's rows.
Staff see how many people a notice reached and opened, never who. Who is asking travels inside each request as an
`Actor` (contracts.actor). Other features add their own kinds of inbox item (`kind`), each in its own contracts module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal

SERVICE = "notices"

# Endpoints (the tail of svc.<node>.notices.<name>).
EP_INBOX_LIST = "inbox.list"  # InboxQuery -> InboxPage (the person's own; newest first)

# Kinds of inbox item this module defines; other features add theirs (contracts.notices_activity, ...).
KIND_NOTICE = "notice"  # a notice written by staff, to many
KIND_MESSAGE = "message"  # an official message to one person (a booking approved, a receipt ready)

PAGE_MAX = 50
TITLE_MAX = 200
BODY_MAX = 10_000
SEARCH_MAX = 100

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)
ItemId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{36}$")]
Folder = Literal["inbox", "unread", "archive"]

# ---- refusals ------------------------------------------------------------------------------------------------------

ITEM_NOT_FOUND = Refusal("inbox.not_found", 404, "no such item in your inbox")

# ---- the inbox -----------------------------------------------------------------------------------------------------


class InboxQuery(BaseModel):
    model_config = _IN
    actor: Actor
    folder: Folder = "inbox"  # inbox: not archived; unread: not archived and not read; archive: archived
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=SEARCH_MAX)] = ""  # in title and body
    before: AwareDatetime | None = None  # keyset: items delivered before this time
    limit: int = Field(20, ge=1, le=PAGE_MAX)


class Link(Frozen):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    url: Annotated[str, StringConstraints(max_length=500, pattern=r"^(https?://|/)[^\s]*$")]


class InboxItem(Frozen):
    id: str
    kind: str
    title: str
    sender: str
    category: str | None = None
    delivered_at: datetime
    read_at: datetime | None = None
    archived_at: datetime | None = None
    withdrawn: bool = False


class InboxPage(Frozen):
    items: list[InboxItem]
    unread: int  # not archived and not read, in the whole inbox
    next_before: datetime | None = None  # the next page's `before`, or None at the end


# ---- events (evt.<node>.notices.<snake_case type>) ----------------------------------------------------------------


class NoticesEvent(Event):
    """The base of this service's events: frozen, versioned, registered for the AsyncAPI document."""

    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False  # a base, on no stream itself
