"""Matching (マッチング, issue 20 point 5) in the sns service over a real nats-server, on SQLite and PostgreSQL: a
community's leader posts an opening; a person sees the openings that fit their interests, district and stated skills
with the reasons; they apply, the organiser accepts or declines (each announced), the person withdraws. Refusals
(apply twice, to a closed or full opening, accept by someone not the organiser, post for a community one does not
lead, a theme one does not manage) change nothing. The end to end: an accepted volunteer's tap at the opening's
event earns the event's volunteer points (the points service consumes the acceptance into its roster)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import select

from services.points.taps import service as taps_service
from services.points.taps.models import taps
from services.points.volunteers.models import volunteer_roster
from services.sns.app import SnsService
from services.sns.models import applications, openings, person_skills
from tests.sns.test_sns_service import HANAKO, JIRO, NODE, TARO, Node, a, announce_deleted
from tests.support.bus import wait_for
from tests.support.nodes import CARD_KEY, points_running
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns_openings as oc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

MATCH_TABLES = (openings, applications, person_skills)
SOON = datetime.now(UTC) + timedelta(days=7)


class OpeningsNode(Node):
    async def snapshot(self) -> dict[str, list[str]]:
        out = await super().snapshot()
        async with self.svc.sessions() as s:
            for table in MATCH_TABLES:
                out[table.name] = sorted(repr(tuple(r)) for r in await s.execute(select(table)))
        return out

    async def opening(self, who: Actor, cid: str, **kw: Any) -> dict[str, Any]:
        body = {"actor": a(who), "host_kind": "community", "host_id": cid, "title": "夏祭りの受付",
                "task": "受付と案内をお願いします", "skills": "写真、受付", "categories": ["npo-3"],
                "district": "藤金", "place": "藤金公民館", "starts_at": SOON.isoformat(), "capacity": 2, **kw}
        return await self.call(oc.EP_OPENING_CREATE, body)

    async def apply(self, who: Actor, oid: str, message: str = "参加したいです") -> dict[str, Any]:
        return await self.call(oc.EP_OPENING_APPLY, {"actor": a(who), "opening_id": oid, "message": message})

    async def decide(self, who: Actor, app_id: str, decision: str) -> dict[str, Any]:
        return await self.call(oc.EP_OPENING_DECIDE, {"actor": a(who), "application_id": app_id,
                                                      "decision": decision})

    async def for_me(self, who: Actor, **kw: Any) -> dict[str, Any]:
        return await self.call(oc.EP_OPENING_FOR_ME, {"actor": a(who), **kw})


async def sns_node(url: str, tmp_path: Path, url_db: str, schema: str | None) -> SnsService:
    svc = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=url, data_dir=str(tmp_path),
                                     database_url=url_db, database_schema=schema or ""))
    await svc.start()
    return svc


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[OpeningsNode]:
    url, schema = database
    svc = await sns_node(nats_server.url, tmp_path, url, schema)
    nc = await nats.connect(nats_server.url)
    try:
        yield OpeningsNode(nc, svc)
    finally:
        await nc.close()
        await svc.stop()


async def test_post_match_apply_accept_decline_withdraw(node: OpeningsNode) -> None:
    cid = (await node.open(HANAKO, "藤金まつり実行委員会", ["npo-3", "npo-5"]))["id"]
    op = await node.opening(HANAKO, cid, event_code="natsu-2026")
    assert (op["host_name"], op["organiser"]["global_handle"], op["accepted"], op["is_organiser"]) == (
        "藤金まつり実行委員会", HANAKO.global_handle, 0, True)
    assert [e for e in await node.events() if e[0].endswith("opening_posted")]

    # Taro states his skills; the list for him says why each opening fits.
    skills = await node.call(oc.EP_SKILLS_PUT, {"actor": a(TARO), "skills": "写真と動画編集"})
    assert skills["words"] == ["写真", "動画編集"]
    mine = await node.for_me(TARO, district="藤金", interests=["npo-3"])
    [match] = mine["matches"]
    assert match["opening"]["id"] == op["id"] and mine["skills"] == "写真と動画編集"
    assert [(r["kind"], r["value"]) for r in match["reasons"]] == [
        ("interest", "npo-3"), ("district", "藤金"), ("skill", "写真")]
    # Nothing fits a person of another district with other interests and no skills; the organiser sees not her own.
    assert (await node.for_me(JIRO, district="鶴ヶ丘", interests=["npo-1"]))["matches"] == []
    assert (await node.for_me(HANAKO, district="藤金", interests=["npo-3"]))["matches"] == []

    # Apply; the organiser sees the applicant and the message; accept: announced with the event and the handle.
    app = await node.apply(TARO, op["id"], "写真を撮れます")
    assert (app["status"], app["applicant"]["display_name"]) == ("pending", TARO.display_name)
    seen = await node.call(oc.EP_OPENING_APPLICANTS, {"actor": a(HANAKO), "opening_id": op["id"]})
    assert [(x["applicant"]["global_handle"], x["message"]) for x in seen["applications"]] == [
        (TARO.global_handle, "写真を撮れます")]
    done = await node.decide(HANAKO, app["id"], "accept")
    assert done["status"] == "accepted"
    got = await node.call(oc.EP_OPENING_GET, {"opening_id": op["id"], "actor": a(TARO)})
    assert got["accepted"] == 1 and got["mine"]["status"] == "accepted"
    [(subject, env)] = [e for e in await node.events() if e[0].endswith("opening_application_accepted")]
    assert subject == f"evt.{NODE}.sns.opening_application_accepted"
    assert (env["data"]["person"], env["data"]["event_code"]) == (TARO.global_handle, "natsu-2026")
    assert "写真を撮れます" not in json.dumps(env)  # the message stays between the two

    # Jiro applies and is declined: told through an event, and may not apply again.
    j = await node.apply(JIRO, op["id"])
    assert (await node.decide(HANAKO, j["id"], "decline"))["status"] == "declined"
    assert [e for e in await node.events() if e[0].endswith("opening_application_declined")]
    await node.refused(errors.Conflict, oc.EP_OPENING_APPLY, {"actor": a(JIRO), "opening_id": op["id"]},
                       match="applied")

    # Taro withdraws: the place is free again, the withdrawal says he had been accepted.
    w = await node.call(oc.EP_OPENING_WITHDRAW, {"actor": a(TARO), "opening_id": op["id"]})
    assert w["status"] == "withdrawn"
    assert (await node.call(oc.EP_OPENING_GET, {"opening_id": op["id"]}))["accepted"] == 0
    [(_, wd)] = [e for e in await node.events() if e[0].endswith("opening_application_withdrawn")]
    assert wd["data"]["was_accepted"] is True and wd["data"]["event_code"] == "natsu-2026"
    # ... and may apply again (the same application, waiting again).
    again = await node.apply(TARO, op["id"], "やはり参加します")
    assert (again["id"], again["status"]) == (app["id"], "pending")


async def test_refusals_change_nothing(node: OpeningsNode) -> None:
    cid = (await node.open(HANAKO, "清掃ボランティア"))["id"]
    op = await node.opening(HANAKO, cid, capacity=1)
    # Someone who does not lead the community cannot post an opening for it.
    await node.join(TARO, cid)
    body = {"actor": a(TARO), "host_kind": "community", "host_id": cid, "title": "x", "task": "y",
            "starts_at": SOON.isoformat()}
    await node.refused(errors.Forbidden, oc.EP_OPENING_CREATE, body, match="leader")
    # Ends before it starts.
    await node.refused(errors.BadRequest, oc.EP_OPENING_CREATE, {
        **body, "actor": a(HANAKO), "ends_at": (SOON - timedelta(hours=1)).isoformat()})
    # A theme: without the projects service answering who manages it, nobody posts for it.
    await node.refused(errors.Unavailable, oc.EP_OPENING_CREATE, {**body, "actor": a(HANAKO), "host_kind": "theme"})
    # The organiser cannot apply to her own opening.
    await node.refused(errors.BadRequest, oc.EP_OPENING_APPLY, {"actor": a(HANAKO), "opening_id": op["id"]})

    app = await node.apply(TARO, op["id"])
    # Applying twice.
    await node.refused(errors.Conflict, oc.EP_OPENING_APPLY, {"actor": a(TARO), "opening_id": op["id"]},
                       match="applied")
    # Accepting, seeing the applicants or closing by someone not the organiser.
    await node.refused(errors.Forbidden, oc.EP_OPENING_DECIDE,
                       {"actor": a(TARO), "application_id": app["id"], "decision": "accept"})
    await node.refused(errors.Forbidden, oc.EP_OPENING_APPLICANTS, {"actor": a(JIRO), "opening_id": op["id"]})
    await node.refused(errors.Forbidden, oc.EP_OPENING_CLOSE, {"actor": a(JIRO), "opening_id": op["id"]})
    # Withdrawing what one never applied to.
    await node.refused(errors.NotFound, oc.EP_OPENING_WITHDRAW, {"actor": a(JIRO), "opening_id": op["id"]})

    # Full: once the one place is taken, a new application is refused.
    await node.decide(HANAKO, app["id"], "accept")
    await node.refused(errors.Conflict, oc.EP_OPENING_APPLY, {"actor": a(JIRO), "opening_id": op["id"]},
                       match="all the people")
    # Answering twice.
    await node.refused(errors.Conflict, oc.EP_OPENING_DECIDE,
                       {"actor": a(HANAKO), "application_id": app["id"], "decision": "decline"})
    # Closed: no application.
    op2 = await node.opening(HANAKO, cid, title="第2回")
    closed = await node.call(oc.EP_OPENING_CLOSE, {"actor": a(HANAKO), "opening_id": op2["id"]})
    assert closed["status"] == "closed"
    await node.refused(errors.Conflict, oc.EP_OPENING_APPLY, {"actor": a(JIRO), "opening_id": op2["id"]},
                       match="closed")
    # An opening that does not exist.
    await node.refused(errors.NotFound, oc.EP_OPENING_APPLY,
                       {"actor": a(JIRO), "opening_id": "01890000-0000-7000-8000-000000000000"})


async def test_a_deleted_account_leaves_no_application_and_its_openings_close(node: OpeningsNode) -> None:
    cid = (await node.open(HANAKO, "子ども食堂"))["id"]
    op = await node.opening(HANAKO, cid)
    app = await node.apply(TARO, op["id"], "調理できます")
    await node.decide(HANAKO, app["id"], "accept")
    await node.call(oc.EP_SKILLS_PUT, {"actor": a(TARO), "skills": "調理"})
    mine = await node.opening(TARO, (await node.open(TARO, "太郎の会"))["id"])
    await announce_deleted(node, TARO.global_handle)

    async def gone() -> bool:
        async with node.svc.sessions() as s:
            left = (await s.execute(select(applications).where(applications.c.applicant == TARO.global_handle)))
            return not left.first()
    await wait_for(gone, "taro's application goes with his account")
    after = await node.call(oc.EP_OPENING_GET, {"opening_id": op["id"]})
    assert after["accepted"] == 0  # his place is free again
    assert (await node.call(oc.EP_SKILLS_GET, {"actor": a(TARO)}))["skills"] == ""
    closed = await node.call(oc.EP_OPENING_GET, {"opening_id": mine["id"]})
    assert closed["status"] == "closed" and closed["organiser"]["global_handle"] == ""


THEME_ID = "01890000-0000-7000-8000-0000000000aa"


async def test_a_themes_managers_post_its_openings(node: OpeningsNode) -> None:
    """The projects service says who may manage a theme (themes.get with the actor: may_manage); here a responder on
    its subject answers as it would: Hanako manages the theme, Taro does not, another theme is not found."""
    async def themes_get(msg: Any) -> None:
        q = json.loads(msg.data)
        if q["theme_id"] != THEME_ID:
            await node.nc.publish(msg.reply, b"", headers={subjects.HDR_SERVICE_ERROR: "no such theme",
                                                           subjects.HDR_SERVICE_ERROR_CODE: "404"})
            return
        theme = prc.Theme(id=THEME_ID, origin_node=NODE, owner_department_id=THEME_ID,
                          owner_department_name="市民協働課", hearing_id=None, title="空き家の活用",
                          background="", target="", desired_outcome="",
                          fields=["npo-3"], company_points="", status="published", phase=1, version=1,
                          created_at=utcnow(), created_by="staff", updated_at=utcnow(), published_at=utcnow(),
                          may_manage=q["actor"]["global_handle"] == HANAKO.global_handle)
        await msg.respond(theme.model_dump_json().encode())

    sub = await node.nc.subscribe(subjects.svc(NODE, "projects", prc.EP_THEME_GET), cb=themes_get)
    try:
        body = {"host_kind": "theme", "host_id": THEME_ID, "title": "空き家の片付け", "task": "片付けの手伝い",
                "starts_at": SOON.isoformat(), "categories": ["npo-3"]}
        op = await node.call(oc.EP_OPENING_CREATE, {"actor": a(HANAKO), **body})
        assert (op["host_kind"], op["host_name"]) == ("theme", "空き家の活用")
        await node.refused(errors.Forbidden, oc.EP_OPENING_CREATE, {"actor": a(TARO), **body}, match="managers")
        await node.refused(errors.NotFound, oc.EP_OPENING_CREATE,
                           {"actor": a(HANAKO), **body, "host_id": "01890000-0000-7000-8000-0000000000bb"})
    finally:
        await sub.unsubscribe()


async def test_an_accepted_volunteers_tap_earns_the_events_volunteer_points(nats_server, database, tmp_path) -> None:
    """End to end over the bus: sns (its own SQLite file) announces the acceptance; points (on `database`) puts the
    person on the event's roster; their card's participant tap there earns volunteer_points, once."""
    async with contextlib.AsyncExitStack() as stack:
        await run_end_to_end(nats_server, await stack.enter_async_context(
            points_running(nats_server.url, tmp_path, database)), tmp_path)


async def run_end_to_end(nats_server: Any, pts: Any, tmp_path: Path) -> None:
    svc = await sns_node(nats_server.url, tmp_path / "sns", f"sqlite+aiosqlite:///{tmp_path}/sns.sqlite3", None)
    nc = await nats.connect(nats_server.url)
    try:
        node = OpeningsNode(nc, svc)
        await rpc.call(nc, subjects.svc(NODE, "points", pc.EP_EVENT_PUT),
                       {"code": "clean-2026", "name": "河川清掃", "participant_points": 1, "volunteer_points": 5},
                       timeout=15)
        card_taro, card_jiro = "0123456789abcdef", "0123456789abcde0"
        key = bytes.fromhex(CARD_KEY)
        async with pts.sessions() as s, s.begin():
            from services.points.people.service import link_actor
            for who, idm in ((TARO, card_taro), (JIRO, card_jiro)):
                await link_actor(s, who)
                await taps_service.bind_card(s, card=taps_service.card_account_id(key, idm),
                                             person=taps_service.person_account_id(who.user_id), method="code",
                                             node=NODE, now=utcnow(), key=f"bind:test:{idm}")
        cid = (await node.open(HANAKO, "河川清掃の会"))["id"]
        op = await node.opening(HANAKO, cid, event_code="clean-2026")
        app = await node.apply(TARO, op["id"])
        await node.decide(HANAKO, app["id"], "accept")
        declined = await node.apply(JIRO, op["id"])
        await node.decide(HANAKO, declined["id"], "decline")

        async def on_roster() -> list[Any]:
            async with pts.sessions() as s:
                return list(await s.execute(select(volunteer_roster.c.event_code, volunteer_roster.c.global_handle)))
        # Accepted for another event's opening and then withdrawn: off that event's roster again.
        other = await node.opening(HANAKO, cid, title="別の日", event_code="clean-2027")
        await node.decide(HANAKO, (await node.apply(TARO, other["id"]))["id"], "accept")

        def roster_is(*codes: str) -> Any:
            async def check() -> bool:
                return sorted(tuple(r) for r in await on_roster()) == [(x, TARO.global_handle) for x in codes]
            return check
        await wait_for(roster_is("clean-2026", "clean-2027"), "both acceptances reach the points service's roster")
        await node.call(oc.EP_OPENING_WITHDRAW, {"actor": a(TARO), "opening_id": other["id"]})
        await wait_for(roster_is("clean-2026"), "the withdrawal takes him off that event's roster")

        js = nc.jetstream()
        answers = await nc.subscribe(nc.new_inbox())

        async def touch(n: int, idm: str) -> pc.TapOutcome:
            t = pc.Tap(tap_id=f"vol-tap-{n:04d}", terminal_id="term-1", card_idm=idm, event="clean-2026",
                       role="participant", tapped_at=datetime.now(UTC))
            await js.publish(subjects.edge(NODE, "term-1", "tap"), t.model_dump_json().encode(),
                             headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: answers.subject})
            return pc.TapOutcome.model_validate_json((await answers.next_msg(timeout=15)).data)

        first = await touch(1, card_taro)
        assert (first.status, first.points) == ("credited", 5)  # the volunteer rule, not the participant's 1
        assert (await touch(2, card_taro)).status == "already"  # once per event, as every check-in
        other = await touch(3, card_jiro)
        assert (other.status, other.points) == ("credited", 1)  # declined: an ordinary participant
        async with pts.sessions() as s:
            roles = sorted((r.role, r.points) for r in await s.execute(select(taps.c.role, taps.c.points)))
        assert roles == [("participant", 1), ("volunteer", 5)]
    finally:
        await nc.close()
        await svc.stop()
