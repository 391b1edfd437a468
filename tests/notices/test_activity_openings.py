"""Matching's notifications (issue 20 point 5) through the notices service, over a real nats-server, on SQLite and
PostgreSQL: an application tells the opening's organiser, the answer tells the applicant (accepted or declined),
never the applicant's message; nobody else is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from services.notices.app import NoticesService
from tests.notices.test_activity import HANAKO, TARO, _with, node, notes  # noqa: F401 - fixture
from tests.support.bus import call, wait_for
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts import sns_openings as oc
from towntip.kernel.contracts.actor import Actor

JIRO = Actor(user_id="user-jiro-0001", global_handle="jiro@testnode", display_name="佐藤 次郎")


async def test_applications_and_answers_tell_the_person_concerned(node: tuple[nats.NATS, NoticesService]) -> None:  # noqa: F811
    nc, _ = node

    async def sns(endpoint: str, payload: Any) -> Any:
        return await call(nc, endpoint, payload, service="sns")

    cid = (await sns(sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(actor=HANAKO, name="川の会", categories=["npo-7"])))["id"]
    op = await sns(oc.EP_OPENING_CREATE, oc.OpeningCreate(
        actor=HANAKO, host_kind="community", host_id=cid, title="河川清掃の受付", task="受付",
        starts_at=datetime.now(UTC) + timedelta(days=3), capacity=2))
    app = await sns(oc.EP_OPENING_APPLY, oc.ApplyIn(actor=TARO, opening_id=op["id"], message="朝から行けます"))
    got = await wait_for(lambda: _with(nc, HANAKO, 1), "the organiser hears of the application")
    [note] = got.items
    assert (note.kind, note.who, note.subject, note.link) == (
        "opening_applied", TARO.global_handle, "河川清掃の受付", f"/openings/{op['id']}/applicants")
    assert "朝から行けます" not in note.model_dump_json()

    await sns(oc.EP_OPENING_DECIDE, oc.DecideIn(actor=HANAKO, application_id=app["id"], decision="accept"))
    jiro = await sns(oc.EP_OPENING_APPLY, oc.ApplyIn(actor=JIRO, opening_id=op["id"]))
    await sns(oc.EP_OPENING_DECIDE, oc.DecideIn(actor=HANAKO, application_id=jiro["id"], decision="decline"))
    taro = await wait_for(lambda: _with(nc, TARO, 1), "taro hears he was accepted")
    assert [(n.kind, n.subject, n.link) for n in taro.items] == [
        ("opening_accepted", "河川清掃の受付", f"/openings/{op['id']}")]
    declined = await wait_for(lambda: _with(nc, JIRO, 1), "jiro hears he was declined")
    assert [n.kind for n in declined.items] == ["opening_declined"]
    await wait_for(lambda: _with(nc, HANAKO, 2), "the organiser hears of the second application")
    assert sorted(n.kind for n in (await notes(nc, HANAKO)).items) == ["opening_applied", "opening_applied"]
