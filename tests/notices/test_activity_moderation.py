"""The sns staff's moderation decisions reach the person concerned as an activity notification (kind `moderation`,
linking to /moderation where they read the reason and may appeal), once; the reporter and the reported text are
never in it. Real sns and notices services on a real nats-server, on SQLite and PostgreSQL."""

from __future__ import annotations

import nats

from services.notices.app import NoticesService
from tests.notices.test_activity import HANAKO, TARO, _with, node, notes  # noqa: F401 - fixture
from tests.support.bus import call, wait_for
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor

STAFF = Actor(user_id="user-staff-001", global_handle="staff@testnode", display_name="職員", roles=("staff",))


async def test_a_decision_tells_its_person_once(node: tuple[nats.NATS, NoticesService]) -> None:  # noqa: F811
    nc, _svc = node
    opened = await call(nc, sc.EP_COMMUNITY_OPEN, sc.CommunityOpen(actor=HANAKO, name="川の会", categories=["npo-7"]),
                        service="sns")
    await call(nc, sc.EP_COMMUNITY_JOIN, sc.CommunityAction(actor=TARO, community_id=opened["id"]), service="sns")
    post = await call(nc, sc.EP_POST_CREATE, sc.PostCreate(actor=TARO, community_id=opened["id"], title="宣伝",
                                                           body="ひみつの言葉"), service="sns")
    report = await call(nc, sc.EP_REPORT_CREATE, sc.ReportIn(actor=HANAKO, kind="post", target=str(post["id"]),
                                                             reason="spam"), service="sns")
    await call(nc, sc.EP_MODERATION_DECIDE, sc.DecisionIn(actor=STAFF, report_id=report["id"], action="warn",
                                                          reason="宣伝は控えてください"), service="sns")
    got = await wait_for(lambda: _with(nc, TARO, 1), "taro told of the staff's decision")
    assert [(n.kind, n.subject, n.link) for n in got.items] == [("moderation", "warn", "/moderation")]
    dumped = got.model_dump_json()
    assert "ひみつの言葉" not in dumped and HANAKO.global_handle not in dumped  # no text, no reporter
    assert (await notes(nc, HANAKO)).items == []
