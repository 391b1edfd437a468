"""まちづくり手帳 and the staff's figures (issue 4, points 5 and 6) over a real nats-server, on SQLite and PostgreSQL.

People register as the identity service announces them (envelopes on evt.<node>.identity.*, published into
EVT_<NODE>_IDENTITY with Nats-Msg-Id = the event's id, as identity's outbox relay does); the points service's durable
consumer keeps its people directory from them. Cards are bound, terminals' taps go through the EDGE stream, a
donation is confirmed by staff. Then: a person's notebook (lines, totals, district and region averages), its CSV
(BOM) and PDF (parsed), the staff's figures against the taps, refusals that change nothing. One test runs the node's
real NATS users (natsauth): the points service's own user consumes identity's stream."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pypdf
import pytest
from sqlalchemy import func, select

from services.points.app import PointsService
from services.points.people.models import people
from services.points.taps.models import events, taps
from tests.points.test_documents import assert_font_embedded
from tests.support.bus import call, wait_for
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import Envelope
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import notebook as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsauth import BusUsers, service_inbox_prefix, service_user
from towntip.node.natsd import NatsServer

NODE = "testnode"
T0 = datetime(2025, 5, 3, 1, 0, tzinfo=UTC)  # 10:00 in Japan
STAFF = Actor(user_id="staff-0001", global_handle=f"kikaku@{NODE}", display_name="企画 一郎", roles=("staff",))
HANAKO = Actor(user_id="user-hanako1", global_handle=f"hanako@{NODE}", display_name="山田 花子")
TARO = Actor(user_id="user-taro0001", global_handle=f"taro@{NODE}", display_name="鈴木 太郎")
JIRO = Actor(user_id="user-jiro0001", global_handle=f"jiro@{NODE}", display_name="佐藤 次郎")
CARDS = {HANAKO: "0100000000000001", TARO: "0100000000000002", JIRO: "0100000000000003"}
LOOSE_CARD = "0100000000000009"  # a card bound to nobody

# (code, name, facts) as staff set them: the seed's sample page's lines.
EVENTS = [
    ("gomi", "公園ゴミ拾い", {"field": "npo-3", "activity": "participate", "hours": 2, "kcal": 300}),
    ("shigen", "資源回収", {"field": "npo-7", "activity": "carry_out", "co2_kg": 30, "kcal": 150}),
    ("kosodate", "子育て研究会", {"field": "npo-13", "activity": "participate", "hours": 1}),
    ("plain", "説明会", {}),
    # the clean-up's second day: an event of its own (a card earns an event's points once)
    ("gomi2", "公園ゴミ拾い（2日目）", {"field": "npo-3", "activity": "participate", "hours": 2, "kcal": 300}),
]


def who(actor: Actor) -> dict[str, Any]:
    return actor.model_dump(mode="json")


def profile(actor: Actor, district: str) -> dict[str, Any]:
    """identity's public profile (identity/accounts.py _public_profile)."""
    name = actor.global_handle.split("@")[0]
    return {"global_handle": actor.global_handle, "handle": name, "home_node": NODE,
            "display_name": actor.display_name, "nickname": "", "district": district, "interests": []}


async def announce(js: Any, type_: str, data: dict[str, Any], at: datetime | None = None, *,
                   timeout: float = 5) -> None:
    env = Envelope(type=type_, node=NODE, service="identity", data=data, **({"time": at} if at else {}))
    await js.publish(env.subject, env.to_bytes(), headers={subjects.HDR_MSG_ID: env.id}, timeout=timeout)


async def directory(svc: PointsService) -> dict[str, tuple[str | None, str, str]]:
    async with svc.sessions() as s:
        return {r.global_handle: (r.user_id, r.display_name, r.district)
                for r in await s.execute(select(people))}


async def tap(js: Any, n: int, card: str, event: str, at: datetime, role: str = "participant",
              result_to: str | None = None) -> None:
    t = pc.Tap(tap_id=f"nb-tap-{n:04d}", terminal_id="term-1", card_idm=card, event=event, role=role, tapped_at=at)
    headers = {subjects.HDR_MSG_ID: t.key} | ({subjects.HDR_RESULT_TO: result_to} if result_to else {})
    await js.publish(subjects.edge(NODE, "term-1", "tap"), t.model_dump_json().encode(), headers=headers, timeout=5)


async def tap_count(svc: PointsService) -> int:
    async with svc.sessions() as s:
        return (await s.execute(select(func.count()).select_from(taps))).scalar_one()


async def setup_town(nc: nats.NATS, svc: PointsService) -> None:
    """Events with their facts, three people in two districts (and a stale and a deleted one), cards, taps,
    a donation."""
    js = nc.jetstream()
    for code, name, facts in EVENTS:
        out = pc.EventOut.model_validate(await call(nc, pc.EP_EVENT_PUT, {"code": code, "name": name, **facts}))
        assert (out.field, out.activity, out.hours, out.co2_kg, out.kcal) == (
            facts.get("field"), facts.get("activity"), facts.get("hours"), facts.get("co2_kg"), facts.get("kcal"))
    # Re-put without the facts keeps them (a rule change from the API or the CLI does not wipe them).
    again = pc.EventOut.model_validate(await call(nc, pc.EP_EVENT_PUT, {"code": "gomi", "name": "公園ゴミ拾い",
                                                                        "volunteer_points": 10}))
    assert (again.volunteer_points, again.field, again.hours, again.kcal) == (10, "npo-3", 2.0, 300)
    await call(nc, pc.EP_EVENT_PUT, {"code": "gomi2", "name": "公園ゴミ拾い（2日目）", "volunteer_points": 10})

    t1 = datetime.now(UTC)
    await announce(js, "UserRegistered", profile(HANAKO, "大橋"), t1)
    await announce(js, "UserRegistered", profile(TARO, ""), t1)
    await announce(js, "UserRegistered", profile(JIRO, "南"), t1)
    await announce(js, "ProfileChanged", profile(TARO, "大橋"), t1 + timedelta(seconds=1))
    await announce(js, "ProfileChanged", profile(JIRO, "北"), t1 - timedelta(seconds=5))  # late and stale: ignored
    gone = Actor(user_id="user-gone0001", global_handle=f"gone@{NODE}", display_name="退会 者")
    await announce(js, "UserRegistered", profile(gone, "南"), t1)
    await announce(js, "UserDeleted", {"global_handle": gone.global_handle, "home_node": NODE},
                   t1 + timedelta(seconds=1))
    await announce(js, "UserRegistered", profile(Actor(user_id="user-other001", global_handle="x_y@elsewhere",
                                                       display_name="他"), "南"), t1)  # not ours: dead-lettered

    async def settled() -> bool:
        d = await directory(svc)
        return d.get(TARO.global_handle, (0, 0, ""))[2] == "大橋" and gone.global_handle not in d and len(d) == 3
    await wait_for(settled, "the directory to hold the three people")
    d = await directory(svc)
    assert d == {HANAKO.global_handle: (None, "山田 花子", "大橋"), TARO.global_handle: (None, "鈴木 太郎", "大橋"),
                 JIRO.global_handle: (None, "佐藤 次郎", "南")}

    for actor, card in CARDS.items():
        await call(nc, pc.EP_CARD_BIND_REQUEST, {"person": actor.user_id, "card_idm": card})
    plan = [  # (card, event, days after T0, role)
        (CARDS[HANAKO], "gomi", 0, "participant"), (CARDS[HANAKO], "shigen", 3, "participant"),
        (CARDS[HANAKO], "kosodate", 40, "volunteer"), (CARDS[HANAKO], "plain", 41, "participant"),
        (CARDS[TARO], "gomi", 0, "participant"), (CARDS[TARO], "gomi2", 1, "volunteer"),
        (CARDS[JIRO], "shigen", 3, "participant"),
        (LOOSE_CARD, "gomi", 0, "participant"), (LOOSE_CARD, "kosodate", 40, "participant"),
    ]
    # The cards touch as usual; with a binding request waiting, a card's touch shows a code (once while it lives),
    # which its holder enters on the portal: that binds the card and moves its points.
    outcomes = await nc.subscribe(nc.new_inbox() + ".nb", max_msgs=len(plan))
    for n, (card, ev, days, role) in enumerate(plan):
        await tap(js, n, card, ev, T0 + timedelta(days=days), role, result_to=outcomes.subject)
    await wait_for(lambda: _eq(tap_count(svc), len(plan)), "the taps to be credited")
    shown = [pc.TapOutcome.model_validate_json((await outcomes.next_msg(timeout=15)).data) for _ in plan]
    codes = {int(o.tap_id.removeprefix("nb-tap-")): o.display[:9] for o in shown if o.display}
    owner = {card: actor for actor, card in CARDS.items()}
    assert sorted(plan[n][0] for n in codes) == sorted(CARDS.values())  # one code per requested card
    for n, code in codes.items():
        await call(nc, pc.EP_CARD_REGISTER_CODE, {"person": owner[plan[n][0]].user_id, "code": code})

    await call(nc, dc.EP_PROJECT_PUT, {"actor": who(STAFF), "code": "kosodate-npo", "title": "子育てNPO",
                                       "organisation": "NPO法人わかば", "field": "npo-13", "goal_yen": 0})
    await call(nc, dc.EP_PROJECT_CERTIFY, {"actor": who(STAFF), "code": "kosodate-npo"})
    d1 = dc.Donation.model_validate(await call(nc, dc.EP_PLEDGE, {"actor": who(HANAKO), "project": "kosodate-npo",
                                                                  "amount_yen": 3000, "method": "counter"}))
    await call(nc, dc.EP_CONFIRM, {"actor": who(STAFF), "reference": d1.reference, "reason": ""})


async def _eq(aw: Any, want: int) -> bool:
    return await aw == want


async def test_notebook_totals_comparison_exports_and_figures(nc: nats.NATS, points_service: PointsService
                                                              ) -> None:
    svc = points_service
    await setup_town(nc, svc)

    # Each person opens their notebook once: the gateway vouches for them, the directory links the user id.
    for actor in (TARO, JIRO):
        await call(nc, c.EP_NOTEBOOK_MINE, {"actor": who(actor)})
    nb = c.Notebook.model_validate(await call(nc, c.EP_NOTEBOOK_MINE, {"actor": who(HANAKO)}))
    assert (await directory(svc))[HANAKO.global_handle] == (HANAKO.user_id, "山田 花子", "大橋")
    assert (nb.global_handle, nb.display_name, nb.district, nb.empathy_counted) == (
        HANAKO.global_handle, "山田 花子", "大橋", False)
    today = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).date()
    lines = [(e.on.isoformat(), e.kind, e.title, e.field_letter, e.activity, e.points, e.co2_kg, e.hours, e.kcal,
              e.empathy) for e in nb.entries]
    assert lines == [
        ("2025-05-03", "contribution", "公園ゴミ拾い", None, "participate", 1, None, 2.0, 300, None),
        ("2025-05-06", "contribution", "資源回収", "C", "carry_out", 1, 30.0, None, 150, None),
        ("2025-06-12", "contribution", "子育て研究会", "A", "volunteer", 5, None, 1.0, None, None),
        ("2025-06-13", "contribution", "説明会", None, "participate", 1, None, None, None, None),
        (today.isoformat(), "donation", "子育てNPO", "A", "donate", 30, None, None, None, None),
    ], lines
    assert nb.totals.model_dump() == {"entries": 5, "points": 38, "contribution": 8, "donation": 30, "co2_kg": 30.0,
                                      "hours": 3.0, "kcal": 450, "empathy": None}
    # District 大橋: hanako (38 points, 4 taps + 1 donation) and taro (1 + 10 points: the volunteer rule changed to 10
    # before his taps; 2 taps, 4 h, 600 kcal). Region: the three linked people (jiro: 1 point, 30 kg, 150 kcal).
    da, ra = nb.district_average, nb.region_average
    assert da is not None and (da.name, da.people, da.points, da.entries, da.hours, da.kcal, da.co2_kg) == (
        "大橋", 2, 24.5, 3.5, 3.5, 525.0, 15.0), da
    assert (ra.name, ra.people, ra.points, ra.contribution, ra.donation, ra.co2_kg, ra.kcal) == (
        NODE, 3, round(50 / 3, 2), round(20 / 3, 2), 10.0, 20.0, 400.0), ra

    # CSV: UTF-8 with BOM, one header, a line per entry, total and the two averages, the note on 共感.
    exp = c.Export.model_validate(await call(nc, c.EP_NOTEBOOK_EXPORT, {"actor": who(HANAKO), "format": "csv"}))
    raw = base64.b64decode(exp.base64)
    assert raw.startswith(b"\xef\xbb\xbf") and exp.filename.endswith(".csv") and b"\r\n" in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:5] == ["実施日", "分野", "内容", "活動", "獲得ポイント"] and len(rows) == 1 + 5 + 3 + 1
    assert {len(r) for r in rows} == {11}
    assert rows[2][:7] == ["2025-05-06", "C 環境の保全を図る活動", "資源回収", "実施", "1", "1", ""]
    assert rows[5][2:7] == ["子育てNPO", "寄付", "30", "", "30"] and rows[5][7] == "—"
    assert rows[6][:7] == ["合計", "", "5", "", "38", "8", "30"] and rows[6][8:] == ["30", "3", "450"]
    assert rows[7][0] == "地区平均（大橋・2人）" and rows[7][4] == "24.5"
    assert rows[8][0] == "地域全体の平均（3人）" and "SNS" in rows[9][0]
    en = c.Export.model_validate(await call(nc, c.EP_NOTEBOOK_EXPORT, {"actor": who(HANAKO), "format": "csv",
                                                                       "lang": "en"}))
    assert base64.b64decode(en.base64).decode("utf-8-sig").startswith("Date,Field,Activity")

    # PDF: parses, its text is the notebook's.
    pdf = c.Export.model_validate(await call(nc, c.EP_NOTEBOOK_EXPORT, {"actor": who(HANAKO), "format": "pdf"}))
    data = base64.b64decode(pdf.base64)
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF") and pdf.content_type == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    assert_font_embedded(reader)  # the Japanese font travels with the file: Latin text and figures extract whole
    text = "".join(p.extract_text() for p in reader.pages)
    for want in ("まちづくり手帳", "山田 花子", "公園ゴミ拾い", "子育てNPO", "合計", "地区平均（大橋・2人）", "38",
                 f"(hanako@{NODE})"):
        assert want in text, (want, text)

    # Bad input: refused, nothing changed.
    with pytest.raises(errors.BadRequest):
        await call(nc, c.EP_NOTEBOOK_EXPORT, {"actor": who(HANAKO), "format": "xls"})
    with pytest.raises(errors.BadRequest, match="npo-99"):
        await call(nc, pc.EP_EVENT_PUT, {"code": "gomi", "name": "x", "field": "npo-99"})
    with pytest.raises(errors.BadRequest):
        await call(nc, pc.EP_EVENT_PUT, {"code": "gomi", "name": "x", "hours": -1})
    async with svc.sessions() as s:
        assert (await s.execute(select(events.c.name, events.c.field).where(events.c.code == "gomi"))).one() == (
            "公園ゴミ拾い", "npo-3")

    # The staff's figures: only staff.
    for endpoint, extra in ((c.EP_FIGURES, {}), (c.EP_FIGURES_EXPORT, {"table": "events"})):
        with pytest.raises(errors.Forbidden):
            await call(nc, endpoint, {"actor": who(HANAKO), **extra})
    fig = c.Figures.model_validate(await call(nc, c.EP_FIGURES, {"actor": who(STAFF)}))
    by_event = {e.code: (e.points, e.people, e.participations) for e in fig.events}
    async with svc.sessions() as s:  # the figures against the taps table itself
        stored = {r.event_code: (int(r.p), r.n) for r in await s.execute(
            select(taps.c.event_code, func.sum(taps.c.points).label("p"), func.count().label("n"))
            .group_by(taps.c.event_code))}
    assert {k: (v[0], v[2]) for k, v in by_event.items() if v[2]} == stored
    assert by_event == {"gomi": (3, 3, 3), "gomi2": (10, 1, 1), "shigen": (2, 2, 2), "kosodate": (6, 2, 2),
                        "plain": (1, 1, 1)}
    assert (fig.points, fig.participations, fig.people) == (52, 9, 4)
    months = {m.month: (m.points, m.contribution, m.donation, m.participations, m.people) for m in fig.months}
    assert months["2025-05"] == (15, 15, 0, 6, 4) and months["2025-06"] == (7, 7, 0, 3, 2)
    assert months[today.strftime("%Y-%m")][2] == 30
    districts = {d.district: (d.registered, d.active, d.points, d.participations, d.co2_kg, d.hours, d.kcal)
                 for d in fig.districts}
    assert districts == {"大橋": (2, 2, 49, 6, 30.0, 7.0, 1050), "南": (1, 1, 1, 1, 30.0, 0.0, 150),
                         "": (0, 1, 2, 2, 0.0, 3.0, 300)}
    # The districts' totals another service of the node may ask (signage's slide): no counts of people, no
    # unknown district, most points first.
    dist = c.DistrictFigures.model_validate(await call(nc, c.EP_FIGURES_DISTRICTS, {}))
    assert [(d.district, d.points, d.participations) for d in dist.districts] == [("大橋", 49, 6), ("南", 1, 1)]
    assert dist.points == fig.points and "registered" not in dist.districts[0].model_dump()
    fields = {f.field: (f.field_letter, f.points, f.participations, f.people) for f in fig.fields}
    assert fields == {"npo-3": (None, 13, 4, 3), "npo-7": ("C", 2, 2, 2), "npo-13": ("A", 36, 2, 2),
                      None: (None, 1, 1, 1)}
    out = c.Export.model_validate(await call(nc, c.EP_FIGURES_EXPORT, {"actor": who(STAFF), "table": "events"}))
    table = list(csv.reader(io.StringIO(base64.b64decode(out.base64).decode("utf-8-sig"))))
    assert base64.b64decode(out.base64).startswith(b"\xef\xbb\xbf")
    assert (table[0] == ["イベント名", "ポイント", "人数", "参加回数", "分野"]
            and table[1] == ["公園ゴミ拾い（2日目）", "10", "1", "1", "npo-3"])
    for name in ("months", "districts", "fields"):
        out = c.Export.model_validate(await call(nc, c.EP_FIGURES_EXPORT, {"actor": who(STAFF), "table": name}))
        got = list(csv.reader(io.StringIO(base64.b64decode(out.base64).decode("utf-8-sig"))))
        assert len(got) == 1 + len(getattr(fig, name)) and len({len(r) for r in got}) == 1
    with pytest.raises(errors.BadRequest):
        await call(nc, c.EP_FIGURES_EXPORT, {"actor": who(STAFF), "table": "people"})

    # A person deleted at identity leaves the directory; their taps stay in the figures, under 地区不明.
    await announce(nc.jetstream(), "UserDeleted", {"global_handle": JIRO.global_handle, "home_node": NODE})
    await wait_for(lambda: _gone(svc, JIRO.global_handle), "jiro to leave the directory")
    fig = c.Figures.model_validate(await call(nc, c.EP_FIGURES, {"actor": who(STAFF)}))
    assert {d.district: d.points for d in fig.districts} == {"大橋": 49, "": 3}
    assert fig.points == 52


async def _gone(svc: PointsService, handle: str) -> bool:
    return handle not in await directory(svc)


async def test_the_points_services_own_nats_user_consumes_identitys_events(
        tmp_path: Path, database: tuple[str, str | None]) -> None:
    """Under the node's real NATS users (natsauth, as `towntip node up` renders them): identity's user publishes its
    events, the points service's user consumes them; the points user may not speak for identity."""
    users = BusUsers(tmp_path / "var", NODE, ("identity", "points", "projects"))
    server = NatsServer(node_id=NODE, data_dir=tmp_path / "nats", extra_config=users.render())
    server.start()
    url, schema = database
    svc = PointsService(ServiceSettings(
        service="points", node_id=NODE, nats_url=users.url(server.url, service_user("points")),
        data_dir=str(tmp_path / "var"), database_url=url, database_schema=schema or "", card_key="00" * 32))
    # each service user reads only its own inboxes (natsauth): it connects with their prefix, as the service does
    ident = await nats.connect(users.url(server.url, service_user("identity")),
                               inbox_prefix=service_inbox_prefix("identity"))
    as_points = None
    try:
        await svc.start()
        await announce(ident.jetstream(), "UserRegistered", profile(HANAKO, "大橋"))
        got = await wait_for(lambda: _has(svc, HANAKO.global_handle), "the directory to hear identity")
        assert got == (None, "山田 花子", "大橋")
        errs: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errs.append(e)

        as_points = await nats.connect(users.url(server.url, service_user("points")), error_cb=on_error,
                                       inbox_prefix=service_inbox_prefix("points"))
        with pytest.raises(Exception):  # noqa: B017 - nats.py reports the refusal as a timeout on the ack
            await announce(as_points.jetstream(), "ProfileChanged", profile(HANAKO, "南"), timeout=1)
        assert any("permissions violation" in str(e).lower() for e in errs), errs
        assert (await directory(svc))[HANAKO.global_handle][2] == "大橋"
    finally:
        if as_points is not None:
            await as_points.close()
        await ident.close()
        await svc.stop()
        server.stop()


async def _has(svc: PointsService, handle: str) -> Any:
    return (await directory(svc)).get(handle)
