"""The notices service over a real nats-server, on SQLite and PostgreSQL: life stage held by the person, notices
targeted by it (who gets what, and who must not), approval, schedule, correction and withdrawal with history, the
inbox, official messages delivered once, and privacy (no answer leaves the service; staff see only counts)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from services.notices.models import inbox_entries, life_facets, life_profiles
from tests.notices.helpers import AKI, CHIEF, CLERK, HANAKO, JIRO, NODE, RESIDENTS, TARO, Node, a
from tests.support.bus import wait_for
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import bookings_life as bl
from towntip.kernel.contracts import bookings_lottery as blo
from towntip.kernel.contracts import bookings_waitlist as bw
from towntip.kernel.contracts import courses as cc
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts.actor import Actor


async def test_a_life_stage_is_the_persons_own_to_state_change_and_delete(node: Node) -> None:
    assert (await node.call(c.EP_LIFE_GET, {"actor": a(HANAKO)}))["updated_at"] is None  # nothing is required
    got = await node.life(HANAKO, district="北", age_band="30s", children_ages=[3, 7], caring=True,
                          events=[{"kind": "birth", "month": "2026-09"}], interests=["npo-2"])
    assert got["answers"]["children_ages"] == [3, 7] and got["updated_at"]
    assert (await node.call(c.EP_LIFE_GET, {"actor": a(HANAKO)}))["answers"] == got["answers"]
    # A changed answer replaces the old one: only what is said now can be targeted.
    await node.life(HANAKO, district="南")
    async with node.svc.sessions() as s:
        facets = set((await s.execute(select(life_facets.c.facet, life_facets.c.value))).tuples())
    assert facets == {("district", "南")}
    await node.refused(c.LIFE_DISTRICT_UNKNOWN, c.EP_LIFE_PUT, {"actor": a(HANAKO), "district": "どこか"})
    # A visitor states nothing here: their home node holds their answers.
    await node.refused(c.LIFE_HOME_ONLY, c.EP_LIFE_PUT, {"actor": a(AKI), "district": "北"})
    deleted = await node.call(c.EP_LIFE_DELETE, {"actor": a(HANAKO)})
    assert deleted["updated_at"] is None and deleted["answers"]["district"] is None
    async with node.svc.sessions() as s:
        assert (await s.execute(select(life_profiles))).first() is None
        assert (await s.execute(select(life_facets))).first() is None


async def test_a_notice_reaches_its_target_and_nobody_else(node: Node) -> None:
    await node.register(*RESIDENTS)
    await node.life(HANAKO, district="北", children_ages=[4], events=[{"kind": "moving_in"}], interests=["npo-2"])
    await node.life(TARO, district="南", age_band="70s", living_alone=True)
    # JIRO said nothing: only notices to everyone reach him.
    cases = [
        ({"kind": "everyone"}, {HANAKO, TARO, JIRO}),
        ({"kind": "district", "value": "北"}, {HANAKO}),
        ({"kind": "stage", "value": "child_preschool"}, {HANAKO}),
        ({"kind": "stage", "value": "senior"}, {TARO}),
        ({"kind": "stage", "value": "living_alone"}, {TARO}),
        ({"kind": "event", "value": "moving_in"}, {HANAKO}),
        ({"kind": "interest", "value": "npo-2"}, {HANAKO}),
        ({"kind": "stage", "value": "child_high"}, set()),
    ]
    for target, expected in cases:
        preview = await node.call(c.EP_NOTICE_PREVIEW, {"actor": a(CLERK), "target": target})
        assert preview["count"] == len(expected), target
        made = await node.notice(target, title=f"{target['kind']}:{target.get('value', '')}")
        assert made["recipients"] == len(expected)
        sent = await node.sent(made["id"])
        assert sent["delivered"] == len(expected)
        for person in RESIDENTS:
            assert (made["title"] in await node.titles(person)) == (person in expected), (target, person)
    assert await node.titles(AKI) == []


async def test_bad_targets_and_non_staff_are_refused_and_change_nothing(node: Node) -> None:
    await node.register(HANAKO)
    base = {"actor": a(CLERK), "title": "t", "body": "b"}
    for target in ({"kind": "district", "value": "西"}, {"kind": "stage", "value": "astronaut"},
                   {"kind": "event", "value": "lottery_win"}, {"kind": "interest", "value": "nope"},
                   {"kind": "community", "value": "not-a-uuid"}, {"kind": "everyone", "value": "x"}):
        await node.refused(c.NOTICE_TARGET_UNKNOWN, c.EP_NOTICE_CREATE, {**base, "target": target})
        await node.refused(c.NOTICE_TARGET_UNKNOWN, c.EP_NOTICE_PREVIEW, {"actor": a(CLERK), "target": target})
    everyone = {"kind": "everyone"}
    await node.refused(c.NOTICE_STAFF_ONLY, c.EP_NOTICE_CREATE, {**base, "actor": a(HANAKO), "target": everyone})
    await node.refused(c.NOTICE_STAFF_ONLY, c.EP_NOTICE_PREVIEW, {"actor": a(HANAKO), "target": everyone})
    await node.refused(c.NOTICE_STAFF_ONLY, c.EP_NOTICE_LIST, {"actor": a(HANAKO)})
    past = (node.clock() - timedelta(hours=1)).isoformat()
    await node.refused(c.NOTICE_PUBLISH_PAST, c.EP_NOTICE_CREATE, {**base, "target": everyone, "publish_at": past})
    await node.refused(c.NOTICE_BAD_PERIOD, c.EP_NOTICE_CREATE, {**base, "target": everyone, "valid_until": past})


async def test_a_notice_to_many_waits_for_a_second_staff_member_and_its_time(node: Node) -> None:
    extra = [HANAKO.model_copy(update={"global_handle": f"p{i}x@{NODE}", "user_id": f"user-p{i}-00000"})
             for i in range(2)]
    await node.register(*RESIDENTS, *extra)  # 5 people, above the node's threshold of 3
    later = node.clock() + timedelta(hours=2)
    made = await node.notice({"kind": "everyone"}, title="防災訓練", publish_at=later.isoformat())
    assert made["state"] == "awaiting_approval" and made["recipients"] == 5
    await node.refused(c.NOTICE_SELF_APPROVAL, c.EP_NOTICE_APPROVE, {"actor": a(CLERK), "notice_id": made["id"]})
    await node.refused(c.NOTICE_STAFF_ONLY, c.EP_NOTICE_APPROVE, {"actor": a(HANAKO), "notice_id": made["id"]})
    approved = await node.call(c.EP_NOTICE_APPROVE, {"actor": a(CHIEF), "notice_id": made["id"]})
    assert approved["state"] == "scheduled" and approved["approved_by"] == CHIEF.global_handle
    assert await node.svc.fanout.round() == 0  # not its time yet
    assert await node.titles(HANAKO) == []
    node.clock.advance(hours=2)
    node.svc.fanout.wake()
    assert (await node.sent(made["id"]))["delivered"] == 5
    assert await node.titles(HANAKO) == ["防災訓練"]


async def test_correction_and_withdrawal_reach_every_inbox_and_keep_the_history(node: Node) -> None:
    await node.register(HANAKO, TARO)
    made = await node.notice({"kind": "everyone"}, title="ごみ収集日の変更")
    await node.sent(made["id"])
    item = (await node.inbox(HANAKO))["items"][0]
    fixed = await node.call(c.EP_NOTICE_CORRECT, {"actor": a(CHIEF), "notice_id": made["id"],
                                                  "title": "ごみ収集日の変更（訂正）", "body": "火曜日から水曜日へ"})
    assert fixed["version"] == 2
    opened = await node.call(c.EP_INBOX_GET, {"actor": a(HANAKO), "item_id": item["id"]})
    assert (opened["title"], opened["body"], opened["version"]) == ("ごみ収集日の変更（訂正）", "火曜日から水曜日へ", 2)
    await node.call(c.EP_NOTICE_WITHDRAW, {"actor": a(CLERK), "notice_id": made["id"]})
    await node.refused(c.NOTICE_WITHDRAWN, c.EP_NOTICE_WITHDRAW, {"actor": a(CLERK), "notice_id": made["id"]})
    await node.refused(c.NOTICE_WITHDRAWN, c.EP_NOTICE_CORRECT, {"actor": a(CLERK), "notice_id": made["id"],
                                                                 "title": "x", "body": "y"})
    assert (await node.inbox(TARO))["items"][0]["withdrawn"] is True
    detail = await node.call(c.EP_NOTICE_GET, {"actor": a(CLERK), "notice_id": made["id"]})
    assert [h["action"] for h in detail["history"]] == ["created", "sent", "corrected", "withdrawn"]
    assert [h["title"] for h in detail["history"]][:2] == ["ごみ収集日の変更"] * 2
    assert detail["state"] == "withdrawn"
    kinds = [subject.rsplit(".", 1)[1] for subject, _ in await node.events()]
    # A notice to everyone is also announced, with its content, on the stream other towns source (publicnotices).
    assert kinds == ["notice_published", "public_notice_published", "notice_corrected", "public_notice_corrected",
                     "notice_withdrawn", "public_notice_withdrawn"]


async def test_the_inbox_reads_archives_searches_and_pages(node: Node) -> None:
    await node.register(HANAKO)
    for title in ("健診のご案内", "図書館の休館", "子育て講座"):
        made = await node.notice({"kind": "everyone"}, title=title)
        await node.sent(made["id"])
        node.clock.advance(minutes=1)
    page = await node.inbox(HANAKO, limit=2)
    assert [it["title"] for it in page["items"]] == ["子育て講座", "図書館の休館"] and page["unread"] == 3
    rest = await node.inbox(HANAKO, limit=2, before=page["next_before"])
    assert [it["title"] for it in rest["items"]] == ["健診のご案内"] and rest["next_before"] is None
    first = page["items"][0]["id"]
    await node.call(c.EP_INBOX_GET, {"actor": a(HANAKO), "item_id": first})
    assert await node.titles(HANAKO, folder="unread") == ["図書館の休館", "健診のご案内"]
    await node.call(c.EP_INBOX_MARK, {"actor": a(HANAKO), "item_id": first, "mark": "unread"})
    assert (await node.inbox(HANAKO))["unread"] == 3
    await node.call(c.EP_INBOX_MARK, {"actor": a(HANAKO), "item_id": first, "mark": "archive"})
    assert await node.titles(HANAKO, folder="archive") == ["子育て講座"]
    assert "子育て講座" not in await node.titles(HANAKO)
    assert await node.titles(HANAKO, q="図書館") == ["図書館の休館"]
    assert await node.titles(HANAKO, q="ご案内の本文") == ["健診のご案内"]  # the body is searched too
    assert await node.titles(HANAKO, q="100%") == []  # LIKE's wildcards are plain characters
    # Another person's item is not found: not even that it exists is told.
    await node.refused(c.ITEM_NOT_FOUND, c.EP_INBOX_GET, {"actor": a(TARO), "item_id": first})
    await node.refused(c.ITEM_NOT_FOUND, c.EP_INBOX_MARK, {"actor": a(CLERK), "item_id": first, "mark": "read"})


async def test_staff_see_how_many_opened_never_who(node: Node) -> None:
    await node.register(*RESIDENTS)
    await node.life(HANAKO, district="北", age_band="40s")
    made = await node.notice({"kind": "everyone"}, title="説明会")
    await node.sent(made["id"])
    for person in (HANAKO, TARO):
        item = (await node.inbox(person))["items"][0]
        await node.call(c.EP_INBOX_GET, {"actor": a(person), "item_id": item["id"]})
    await node.call(c.EP_INBOX_MARK, {"actor": a(TARO), "item_id": item["id"], "mark": "unread"})
    answers = [await node.call(c.EP_NOTICE_GET, {"actor": a(CLERK), "notice_id": made["id"]}),
               await node.call(c.EP_NOTICE_LIST, {"actor": a(CLERK)}),
               await node.call(c.EP_NOTICE_PREVIEW, {"actor": a(CLERK), "target": {"kind": "district", "value": "北"}})]
    assert (answers[0]["delivered"], answers[0]["opened"]) == (3, 2)  # TARO's mark back to unread: still opened
    assert answers[2]["count"] == 1
    # Nothing a staff member can ask names a recipient, nor what anyone said about their life.
    seen = json.dumps(answers, ensure_ascii=False)
    for person in RESIDENTS:
        assert person.global_handle not in seen and person.user_id not in seen
    assert "40s" not in seen
    # The service's events carry no recipient and no answer either (what leaves the service).
    published = json.dumps(await node.events(), ensure_ascii=False)
    for person in RESIDENTS:
        assert person.global_handle not in published
    assert "北" not in published and "40s" not in published


async def test_a_targeted_notices_event_carries_no_content(node: Node) -> None:
    await node.register(HANAKO)
    await node.life(HANAKO, events=[{"kind": "bereavement"}])
    made = await node.notice({"kind": "event", "value": "bereavement"}, title="おくやみ手続きのご案内")
    await node.sent(made["id"])
    [(_, env)] = await node.events()
    assert env["data"]["public"] is False and env["data"]["title"] == "" and env["data"]["recipients"] == 1


async def test_official_messages_arrive_once(node: Node) -> None:
    await node.register(HANAKO)
    send = {"service": "bookings", "key": "approved:42", "person": HANAKO.global_handle,
            "title": "予約が承認されました", "body": "大橋公民館 ホール", "sender": "施設予約",
            "links": [{"title": "予約", "url": "/bookings/42"}]}
    first = await node.call(c.EP_MESSAGE_SEND, send)
    again = await node.call(c.EP_MESSAGE_SEND, send)
    assert first["delivered"] and not again["delivered"] and again["item_id"] == first["item_id"]
    await node.refused(c.MESSAGE_UNKNOWN_PERSON, c.EP_MESSAGE_SEND, {**send, "key": "x", "person": f"nobody@{NODE}"})
    # From the bookings service's events: a confirmation announced twice (two event ids) is one message.
    start = node.clock() + timedelta(days=3)
    confirmed = bc.BookingConfirmed(booking_id="b" * 36, facility_id="ohashi-hall", start=start,
                                    end=start + timedelta(hours=2), booker=HANAKO.global_handle, at_counter=False,
                                    fee=600, at=node.clock())
    await node.publish(confirmed)
    await node.publish(confirmed)
    # From the points service's: a donation's receipt, the person named by their user id.
    await node.publish(dc.DonationConfirmed(reference="D-2026-0001", project="park", person=HANAKO.user_id,
                                            amount_yen=5000, method="transfer", status="confirmed",
                                            receipt_no="R-0001"))

    async def arrived() -> list[str] | None:
        titles = await node.titles(HANAKO)
        return titles if len(titles) >= 3 else None
    titles = await wait_for(arrived, "the messages from the events")
    assert sorted(titles) == sorted(["予約が承認されました", "施設予約が確定しました",
                                     "寄附の受領証明書をダウンロードできます"])
    await node.svc.fanout.round()
    assert len(await node.titles(HANAKO)) == 3  # the second confirmation stayed one message


async def test_lottery_applicants_and_the_next_on_a_waitlist_are_told(node: Node) -> None:
    """Issue 17, points 4 and 5: every lottery applicant is told the result (won with the booking, or lost), and a
    slot offered from the waitlist is told with its deadline; each once, though announced twice."""
    await node.register(HANAKO, TARO)
    start = node.clock() + timedelta(days=40)
    won = blo.LotteryResult(round_id="r" * 36, entry_id="e" * 36, facility_id="ohashi-hall",
                            applicant=HANAKO.global_handle, group_id=None, won=True, booking_id="b" * 36,
                            start=start, end=start + timedelta(hours=3), at=node.clock())
    lost = blo.LotteryResult(round_id="r" * 36, entry_id="f" * 36, facility_id="ohashi-hall",
                             applicant=TARO.global_handle, group_id=None, won=False, booking_id=None, start=None,
                             end=None, at=node.clock())
    offered = bw.SlotOffered(entry_id="w" * 36, booking_id="o" * 36, facility_id="ohashi-hall", start=start,
                             end=start + timedelta(hours=3), person=TARO.global_handle,
                             expires_at=node.clock() + timedelta(hours=24), at=node.clock())
    # Then a confirmation after them all, so that once it is in, the repeats before it were applied too.
    last = bc.BookingConfirmed(booking_id="c" * 36, facility_id="ohashi-hall", start=start,
                               end=start + timedelta(hours=3), booker=HANAKO.global_handle, at_counter=False, fee=0,
                               at=node.clock())
    for event in (won, lost, offered, won, offered, last):
        await node.publish(event)

    async def arrived() -> bool:
        return "施設予約が確定しました" in await node.titles(HANAKO)
    await wait_for(arrived, "the confirmation published after the results and the offer")
    assert sorted(await node.titles(HANAKO)) == sorted(["抽選の結果: 当選しました", "施設予約が確定しました"])
    assert sorted(await node.titles(TARO)) == sorted(["抽選の結果: 落選しました", "キャンセル待ちの枠が空きました"])

    async def opened(who: Actor) -> dict[str, dict[str, Any]]:
        items = (await node.inbox(who))["items"]
        return {it["title"]: await node.call(c.EP_INBOX_GET, {"actor": a(who), "item_id": it["id"]}) for it in items}
    taros, hanakos = await opened(TARO), await opened(HANAKO)
    offer = taros["キャンセル待ちの枠が空きました"]
    deadline = f"{(node.clock() + timedelta(hours=24)).astimezone(JST):%Y-%m-%d %H:%M}"
    assert deadline in offer["body"] and offer["links"][0]["url"] == "/bookings/waitlist", offer
    assert "先着順" in taros["抽選の結果: 落選しました"]["body"]
    won_item = hanakos["抽選の結果: 当選しました"]
    assert won_item["links"][0]["url"] == f"/bookings/{'b' * 36}", won_item


async def test_a_declined_or_cancelled_booking_and_a_certificate_are_messages(node: Node) -> None:
    """The rest of the official messages (docs/notices.md): a request staff declined, with its reason; a booking
    staff cancelled (the booker's own cancellation is no message: they did it); a certificate issued, the person
    named by the points service as `person:<user id>`."""
    await node.register(HANAKO)
    start = node.clock() + timedelta(days=5)
    when = {"facility_id": "ohashi-hall", "start": start, "end": start + timedelta(hours=2),
            "booker": HANAKO.global_handle, "at": node.clock()}
    await node.publish(bc.BookingCancelled(booking_id="d" * 36, by="booker", **when))
    await node.publish(bl.BookingRejected(booking_id="r" * 36, reason="同じ時間に市の行事があります", **when))
    await node.publish(bc.BookingCancelled(booking_id="c" * 36, by="staff", **when))
    await node.publish(cc.CertificationGranted(certificate_id="cert-0001", certification="bousai-leader",
                                               person=f"person:{HANAKO.user_id}", issued_at=node.clock()))

    async def arrived() -> dict[str, Any] | None:
        page = await node.inbox(HANAKO)
        return page if len(page["items"]) >= 3 else None
    page = await wait_for(arrived, "the messages from the bookings' and points' events")
    by_title = {it["title"]: it for it in page["items"]}
    assert set(by_title) == {"施設予約の申込みが承認されませんでした", "施設予約が取り消されました",
                             "認定証が発行されました"}
    declined = await node.call(c.EP_INBOX_GET, {"actor": a(HANAKO),
                                                "item_id": by_title["施設予約の申込みが承認されませんでした"]["id"]})
    assert "同じ時間に市の行事があります" in declined["body"]
    certificate = await node.call(c.EP_INBOX_GET, {"actor": a(HANAKO),
                                                   "item_id": by_title["認定証が発行されました"]["id"]})
    assert [link["url"] for link in certificate["links"]] == ["/certificates/cert-0001"]
    # The booker's own cancellation came first on the bookings stream, whose later events are here: it made nothing.
    assert len((await node.inbox(HANAKO))["items"]) == 3


async def test_a_deleted_account_leaves_no_inbox_and_no_answers(node: Node) -> None:
    await node.register(HANAKO, TARO)
    await node.life(HANAKO, district="北")
    await node.sent((await node.notice({"kind": "everyone"}))["id"])
    await node.call(c.EP_MESSAGE_SEND, {"service": "points", "key": "k1", "person": HANAKO.global_handle,
                                        "title": "t", "body": "b", "sender": "s"})
    await node.publish(ic.UserDeleted(global_handle=HANAKO.global_handle, home_node=NODE))

    async def gone() -> bool:
        async with node.svc.sessions() as s:
            return (await s.execute(select(inbox_entries).where(inbox_entries.c.person == HANAKO.global_handle))
                    ).first() is None and (await s.execute(select(life_profiles))).first() is None
    await wait_for(gone, "the deleted person's inbox and answers to go")
    assert len(await node.titles(TARO)) == 1


async def test_a_notice_to_a_community_asks_sns_for_its_members(node: Node, nats_server, tmp_path) -> None:
    """The members come from the sns service itself, over the bus (its own SQLite database here)."""
    from services.sns.app import SnsService
    from tests.support.nodes import started
    from towntip.kernel.contracts import sns as sc
    from towntip.kernel.settings import ServiceSettings

    sns = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url,
                                     data_dir=str(tmp_path / "sns")))
    async with started(sns):
        await node.register(*RESIDENTS)
        ask = node.svc.connection
        opened = await rpc.call(ask, subjects.svc(NODE, "sns", sc.EP_COMMUNITY_OPEN), {
            "actor": a(HANAKO), "name": "子育てサロン", "categories": ["npo-2"]})
        await rpc.call(ask, subjects.svc(NODE, "sns", sc.EP_COMMUNITY_JOIN),
                       {"actor": a(TARO), "community_id": opened["id"]})
        target = {"kind": "community", "value": opened["id"]}
        assert (await node.call(c.EP_NOTICE_PREVIEW, {"actor": a(CLERK), "target": target}))["count"] == 2
        await node.sent((await node.notice(target, title="サロンの日程"))["id"])
        assert [("サロンの日程" in await node.titles(p)) for p in RESIDENTS] == [True, True, False]
        unknown = {"kind": "community", "value": "0" * 8 + "-0000-4000-8000-" + "0" * 12}
        await node.refused(c.NOTICE_TARGET_UNKNOWN, c.EP_NOTICE_PREVIEW, {"actor": a(CLERK), "target": unknown})
