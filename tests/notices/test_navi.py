"""まちづくりナビ (issue 18, point 6) over a real nats-server, on SQLite and PostgreSQL: suggestions come from the
person's life-stage answers first (their identity profile only when they stated none), each with its reason; the
answers never go to the services asked for candidates; a service that does not answer is left out; staff see only
counts per kind and reason, and a suggestion leads to a page of this portal only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from services.notices.app import NoticesService
from services.sns.app import SnsService
from tests.notices.test_activity import HANAKO, TARO, notices_service, settings
from tests.support.bus import call
from tests.support.nodes import started
from towntip.kernel import errors
from towntip.kernel.contracts import notices as nc_
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor

STAFF = Actor(user_id="user-staff-001", global_handle="kikaku@testnode", display_name="企画", roles=("staff",))


@pytest.fixture
async def running(
    nats_server: Any, database: tuple[str, str | None], tmp_path: Path
) -> AsyncIterator[tuple[nats.NATS, NoticesService]]:
    sns = SnsService(
        settings("sns", nats_server.url, tmp_path / "sns", (f"sqlite+aiosqlite:///{tmp_path}/sns.db", None))
    )
    notices = notices_service(nats_server.url, tmp_path, database)
    nc = await nats.connect(nats_server.url)
    try:
        async with started(sns, notices):
            yield nc, notices
    finally:
        await nc.close()


async def suggest(nc: nats.NATS, **q: Any) -> c.NaviList:
    return c.NaviList.model_validate(await call(nc, c.EP_NAVI, c.NaviQuery(actor=HANAKO, **q), service="notices"))


async def test_suggestions_from_life_answers_with_reasons(running: tuple[nats.NATS, NoticesService]) -> None:
    nc, svc = running
    asked: list[bytes] = []  # what the sns service is asked: never the person's answers
    watch = await nc.subscribe("svc.testnode.sns.communities.list", cb=_keep(asked))
    for name, cats in (("子育てひろば", ["npo-6"]), ("川をきれいにする会", ["npo-7"]), ("将棋の会", ["npo-2"])):
        await call(nc, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(actor=TARO, name=name, categories=cats), service="sns")
    opened = (
        await call(
            nc, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(actor=TARO, name="読書会", categories=["npo-2"]), service="sns"
        )
    )["id"]

    # No answers yet: the profile the gateway passes is the fallback.
    got = await suggest(nc, interests=["npo-7"])
    assert got.source == "profile"
    assert [(s.title, s.reason, s.because) for s in got.items] == [("川をきれいにする会", "interest", "npo-7")]

    # Her life-stage answers win over the profile; a community she joined makes its field "history".
    await call(
        nc,
        nc_.EP_LIFE_PUT,
        {"actor": HANAKO.model_dump(), "interests": ["npo-6"], "children_ages": [3]},
        service="notices",
    )
    await call(nc, sc.EP_COMMUNITY_JOIN, sc.CommunityAction(actor=HANAKO, community_id=opened), service="sns")
    got = await suggest(nc, interests=["npo-7"])
    assert got.source == "life"
    assert [(s.kind, s.title, s.reason, s.link[:13]) for s in got.items] == [
        ("community", "子育てひろば", "interest", "/communities/"),
        ("community", "将棋の会", "history", "/communities/"),
    ]
    await watch.unsubscribe()
    assert asked and not any(b"npo-6" in m or b"children" in m for m in asked), asked

    # Counts only: shown and taken per kind and reason; a suggestion leads to this portal only.
    taken = await call(
        nc, c.EP_NAVI_TAKE, c.NaviTake(kind="community", reason="interest", link=got.items[0].link), service="notices"
    )
    assert taken["link"] == got.items[0].link
    with pytest.raises(errors.NotFound) as refused:
        await call(
            nc,
            c.EP_NAVI_TAKE,
            {"kind": "community", "reason": "interest", "link": "//evil.example/x"},
            service="notices",
        )
    assert refused.value.error_code == c.NAVI_UNKNOWN.code
    figures = await call(nc, c.EP_NAVI_FIGURES, c.NaviFiguresQuery(actor=STAFF), service="notices")
    assert {(r["kind"], r["reason"], r["shown"], r["taken"]) for r in figures["rows"]} == {
        ("community", "interest", 2, 1),
        ("community", "history", 1, 0),
    }
    assert "hanako" not in str(figures)
    with pytest.raises(errors.Forbidden):
        await call(nc, c.EP_NAVI_FIGURES, c.NaviFiguresQuery(actor=HANAKO), service="notices")


def _keep(into: list[bytes]) -> Any:
    async def keep(msg: Any) -> None:
        into.append(msg.data)

    return keep
