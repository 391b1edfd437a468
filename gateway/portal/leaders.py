"""The card リーダーの用事 (what waits for a community's leader) on My Page and the home page: per community the person
leads, who joined and what others posted or commented in the last days, each linked to the community's page.
Nothing is shown to someone who leads none, and a node whose sns service does not answer simply has no card."""

from __future__ import annotations

import asyncio
import logging

from fastapi import Request
from pydantic import ValidationError

from gateway.portal.common import actor_of, call
from gateway.portal.i18n import add_words
from towntip.kernel import errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import sns as sc

log = logging.getLogger(__name__)
TIMEOUT = 2.0  # a page waits no longer for this card

add_words({
    "ld_title": ("リーダーの用事", "For you as a leader"),
    "ld_intro": ("あなたがリーダーのコミュニティで、この{days}日間にあったことです。",
                 "What happened in the last {days} days in the communities you lead."),
    "ld_members": ("新しいメンバー {n}人", "{n} new members"),
    "ld_posts": ("新しい投稿 {n}件", "{n} new posts"),
    "ld_comments": ("新しいコメント {n}件", "{n} new comments"),
    "ld_quiet": ("新しい動きはありません", "Nothing new"),
    "ld_hint": ("投稿やコメントはコミュニティのページで読めます。ルールに反するものは「非表示」にできます。",
                "Read the posts and comments on the community's page; hide any that break its rules."),
})


async def leader_todo(request: Request, user: ic.User) -> sc.LeaderTodo | None:
    """What waits for the person as a leader here, or None (they lead nothing, or the sns service is not there)."""
    if sc.SERVICE not in request.app.state.settings.expected_services():
        return None
    try:
        raw = await asyncio.wait_for(
            call(request, sc.SERVICE, sc.EP_LEADER_TODO, sc.LeaderTodoQuery(actor=actor_of(user)), timeout=TIMEOUT),
            TIMEOUT + 0.5)
        todo = sc.LeaderTodo.model_validate(raw)
    except (errors.ServiceError, TimeoutError, ValidationError) as exc:
        log.info("leader's card left out (%s)", type(exc).__name__)
        return None
    return todo if todo.communities else None
