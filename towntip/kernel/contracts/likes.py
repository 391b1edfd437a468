"""Contracts of 共感 (likes), served alike by the sns service (posts and comments) and the projects service (themes
and cases): svc.<node>.<service>.likes.*.

One 共感 per person per thing (the database's primary key): giving it again or withdrawing one never given answers
the state as it is and changes nothing. Nobody gives 共感 to what they wrote themselves. The person who receives it
(the author, or for a theme or case its maker) is recorded with it, so that `likes.received` counts what a person
received: the gateway adds the two services' counts into the notebook's 共感 column (contracts.notebook)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.errors import Refusal

EP_LIKE_GIVE = "likes.give"  # LikeIn -> LikeState (anyone signed in; not to their own)
EP_LIKE_WITHDRAW = "likes.withdraw"  # LikeIn -> LikeState (the person who gave it)
EP_LIKE_COUNTS = "likes.counts"  # LikesQuery -> LikeStates (public; `liked` for the actor if one is given)
EP_LIKES_RECEIVED = "likes.received"  # ReceivedQuery -> Received (the gateway: the notebook's 共感)

Kind = Literal["post", "comment", "theme", "case", "blog", "bcomment"]  # sns: post, comment, blog (an entry) and
# bcomment (its comment); projects: theme and case
ItemKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{1,36}$")]  # an sns id (digits) or a projects UUID
ITEMS_MAX = 50

LIKE_OWN = Refusal("like.own", 409, "a person cannot give 共感 to what they wrote themselves")
LIKE_NOT_FOUND = Refusal("like.not_found", 404,
                         "nothing of that kind and id to give 共感 to: unknown, hidden or not published")

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class LikeIn(BaseModel):
    model_config = _IN
    actor: Actor
    kind: Kind
    id: ItemKey


class LikesQuery(BaseModel):
    model_config = _IN
    kind: Kind
    ids: Annotated[list[ItemKey], Field(max_length=ITEMS_MAX)]
    actor: Actor | None = None  # says `liked` in the answer


class ReceivedQuery(BaseModel):
    model_config = _IN
    global_handle: GlobalHandle


class LikeState(Frozen):
    kind: Kind
    id: str
    likes: int  # how many people gave 共感
    liked: bool = False  # the asking actor gave it


class LikeStates(Frozen):
    items: list[LikeState]  # in the order asked; an unknown id counts 0


class Received(Frozen):
    global_handle: str
    likes: int  # 共感 received on what the person wrote (withdrawn ones not counted)
