"""オープンデータ and the usage figures (issue 20 points 8 and 9) on a node of identity, points, sns, bookings and
projects over a real nats-server (points on SQLite and on PostgreSQL, the others on SQLite files): people registered
in three districts (one of two people), cards bound and touched at an event, communities, a facility, a published
theme. Then: the zip's files and headers (UTF-8 with a BOM), the README's licence and attribution, small counts
withheld (the district of two, and by difference the next smallest), no personal string anywhere in the zip, a
second download served from the cache; the usage table on the staff's figures page, unsuppressed; a service's
usage figures refused to anyone but staff, changing nothing."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from services.points.app import PointsService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.projects.test_projects_portal import post
from tests.support.bus import call, wait_for
from tests.support.nodes import CARD_KEY, PW, add_people, gateway_app, started
from towntip.cli.demo import demo_facilities
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import notebook as nc
from towntip.kernel.contracts import open_data as od
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

NODE = "tsurugashima"
BASE = "http://portal.test"
DAIICHI, SHINMACHI, SUGI = "鶴ヶ島第一小学校区", "新町小学校区", "杉下小学校区"
# (handle, display name, district): six, five and two people
PEOPLE = ([(f"daiichi{i}", f"第一 太郎{i}", DAIICHI) for i in range(6)]
          + [(f"shinmachi{i}", f"新町 花子{i}", SHINMACHI) for i in range(5)]
          + [(f"sugi{i}", f"杉下 次郎{i}", SUGI) for i in range(2)])
STAFF = ("kikaku", "企画 一郎")


@dataclass
class Node:
    app: Any
    nc: Any
    users: dict[str, ic.User]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE, follow_redirects=False)

    def actor(self, handle: str) -> dict[str, Any]:
        u = self.users[handle]
        return Actor(user_id=u.id, global_handle=f"{handle}@{NODE}", display_name=u.display_name,
                     roles=tuple(u.roles)).model_dump(mode="json")


def settings(service: str, url: str, tmp_path: Any, database: tuple[str, str | None] | None = None
             ) -> ServiceSettings:
    db = {"database_url": database[0], "database_schema": database[1] or ""} if database else {}
    return ServiceSettings(service=service, node_id=NODE, nats_url=url, data_dir=str(tmp_path / service),
                           public_url=BASE, card_key=CARD_KEY, **db)


async def populate(node: Node) -> None:
    """People with districts (identity tells points), cards bound and touched, communities, a facility, a theme."""
    nats = node.nc
    for handle, _, district in PEOPLE:
        s = ic.Session.model_validate(await call(nats, ic.EP_LOGIN, ic.LoginIn(login=handle, password=PW),
                                                 service=ic.SERVICE, node=NODE))
        await call(nats, ic.EP_PROFILE_UPDATE, ic.ProfileUpdateIn(session_token=s.session_token, district=district),
                   service=ic.SERVICE, node=NODE)
    staff = Actor.model_validate(node.actor(STAFF[0]))

    async def directory_ready() -> bool:
        fig = nc.Figures.model_validate(await call(nats, nc.EP_FIGURES, nc.FiguresQuery(actor=staff), node=NODE))
        return {d.district: d.registered for d in fig.districts} == {DAIICHI: 6, SHINMACHI: 5, SUGI: 2, "": 1}
    await wait_for(directory_ready, "points' directory to hold the people with their districts")

    await call(nats, pc.EP_EVENT_PUT, {"code": "gomi", "name": "公園ゴミ拾い"}, node=NODE)
    js = nats.jetstream()
    outcomes = await nats.subscribe(nats.new_inbox() + ".od", max_msgs=len(PEOPLE))
    cards = {}
    for n, (handle, _, _) in enumerate(PEOPLE):
        cards[f"tap-{n:04d}"] = handle
        card = f"02000000000000{n:02d}"
        await call(nats, pc.EP_CARD_BIND_REQUEST, {"person": node.users[handle].id, "card_idm": card}, node=NODE)
        tap = pc.Tap(tap_id=f"tap-{n:04d}", terminal_id="hall-1", card_idm=card, event="gomi", role="participant",
                     tapped_at=datetime.now(UTC))
        await js.publish(subjects.edge(NODE, "hall-1", "tap"), tap.model_dump_json().encode(),
                         headers={subjects.HDR_MSG_ID: tap.key, subjects.HDR_RESULT_TO: outcomes.subject}, timeout=5)
    for _ in PEOPLE:  # each card's touch shows its registration code, which its holder enters on the portal
        o = pc.TapOutcome.model_validate_json((await outcomes.next_msg(timeout=20)).data)
        assert o.display, o
        await call(nats, pc.EP_CARD_REGISTER_CODE, {"person": node.users[cards[o.tap_id]].id,
                                                     "code": o.display[:9]}, node=NODE)

    # communities: one of six members (its leader and five), one of its leader alone
    salon = await call(nats, sc.EP_COMMUNITY_OPEN, {"actor": node.actor("daiichi0"), "name": "子育てサロン",
                                                    "categories": ["npo-13"]}, service=sc.SERVICE, node=NODE)
    for i in range(1, 6):
        await call(nats, sc.EP_COMMUNITY_JOIN, {"actor": node.actor(f"daiichi{i}"), "community_id": salon["id"]},
                   service=sc.SERVICE, node=NODE)
    await call(nats, sc.EP_COMMUNITY_OPEN, {"actor": node.actor("sugi0"), "name": "夏祭り実行委員会",
                                            "categories": ["npo-3"]}, service=sc.SERVICE, node=NODE)

    await call(nats, bc.EP_FACILITY_PUT, demo_facilities()[0], service=bc.SERVICE, node=NODE)
    kikaku = node.actor(STAFF[0])
    dept = await call(nats, prc.EP_ORG_CREATE, {"actor": kikaku, "kind": "department", "name": "市民協働推進課",
                                                "fields": ["npo-3"]}, service=prc.SERVICE, node=NODE)
    theme = await call(nats, prc.EP_THEME_CREATE, {
        "actor": kikaku, "owner_department_id": dept["id"], "title": "空き家を地域の居場所に",
        "background": "空き家が増えています",
        "target": "地域住民", "desired_outcome": "居場所づくり", "fields": ["npo-3"], "company_points": "改修の知見"},
        service=prc.SERVICE, node=NODE)
    await call(nats, prc.EP_THEME_PUBLISH, {"actor": kikaku, "theme_id": theme["id"]}, service=prc.SERVICE, node=NODE)


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    services = []
    for name, cls in (("identity", IdentityService), ("points", PointsService), ("sns", SnsService),
                      ("bookings", BookingsService), ("projects", ProjectsService)):
        services.append(cls(settings(name, nats_server.url, tmp_path, database if name == "points" else None)))
    async with started(*services):
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points,sns,bookings,projects",
                          public_url=BASE)
        async with app.router.lifespan_context(app):
            users = await add_people(app.state.nc, NODE, [(h, n, None) for h, n, _ in PEOPLE]
                                     + [(STAFF[0], STAFF[1], "staff")])
            node = Node(app=app, nc=app.state.nc, users=users)
            await populate(node)
            yield node


def read_csv(z: zipfile.ZipFile, name: str) -> list[list[str]]:
    raw = z.read(name)
    assert raw.startswith(b"\xef\xbb\xbf"), f"{name} has no BOM"  # Excel in Japan reads it as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


async def test_open_data_zip_usage_figures_and_the_staff_page(node: Node) -> None:
    month = datetime.now(JST).strftime("%Y-%m")
    async with node.client() as visitor:
        page = await visitor.get("/open-data")
        assert page.status_code == 200 and "オープンデータ" in page.text and "PDL1.0" in page.text
        assert "出典：鶴ヶ島市（TownTip Commons）" in page.text and "まだ作成していません" in page.text
        r = await visitor.get("/open-data/download")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text[:300]
        assert r.headers["content-disposition"].startswith('attachment; filename="opendata-tsurugashima-')
        z = zipfile.ZipFile(io.BytesIO(r.content))
        names = set(z.namelist())
        assert names == {"README.txt", "events_points.csv", "points_by_month.csv", "districts.csv",
                         "communities.csv", "communities_by_field.csv", "facilities.csv",
                         "facility_usage_by_month.csv", "themes.csv", "themes_by_phase.csv", "cases.csv",
                         "usage_by_month.csv"}

        readme = z.read("README.txt").decode("utf-8-sig")
        assert "公共データ利用規約（第1.0版）(PDL1.0)" in readme and "CC BY 4.0" in readme
        assert "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0" in readme
        assert "出典：鶴ヶ島市（TownTip Commons）" in readme and "Source: Tsurugashima City (TownTip Commons)" in readme
        assert "5 人未満" in readme and "fewer than 5 people" in readme and "<5" in readme
        for name in names - {"README.txt"}:  # every file's columns, in both languages
            assert name in readme

        districts = {row[0]: row[1:] for row in read_csv(z, "districts.csv")[1:]}
        assert read_csv(z, "districts.csv")[0][:3] == ["地区", "登録者", "活動者"]
        # registered: 6 and 5 published; the district of two and the staff member without one withheld
        assert districts[DAIICHI][:2] == ["6", "6"] and districts[DAIICHI][2] == "6"  # six people, a point each
        assert districts[SUGI] == ["<5", "<5", "<5", "<5", "<5", "<5", "<5"]
        # active: only the two of 杉下 would be withheld, and the sum of the districts is published elsewhere (the
        # event's people): so the next smallest (新町, five) goes too, with the figures of its people
        assert districts[SHINMACHI] == ["5", "<5", "<5", "<5", "<5", "<5", "<5"]

        events = read_csv(z, "events_points.csv")
        assert events[0] == ["イベント名", "分野", "発行ポイント", "人数", "参加回数"]
        assert events[1] == ["公園ゴミ拾い", "", "13", "13", "13"]

        communities = {row[0]: row for row in read_csv(z, "communities.csv")[1:]}
        assert communities["子育てサロン"][1:] == ["npo-13", month, "6"]
        assert communities["夏祭り実行委員会"][1:] == ["npo-3", month, "<5"]  # a leader alone
        assert read_csv(z, "themes.csv")[1][:3] == ["空き家を地域の居場所に", "1", "課題整理"]
        assert read_csv(z, "themes_by_phase.csv")[1] == ["1", "課題整理", "1"]
        assert read_csv(z, "cases.csv") == [["事例", "概要", "分野コード", "公開月"]]
        assert read_csv(z, "facilities.csv")[1][0] == demo_facilities()[0].name_ja

        usage = read_csv(z, "usage_by_month.csv")
        assert usage[0] == ["月", "ポータルサイト登録者（増加）", "ポータルサイト登録者（累計）", "カード会員（増加）",
                            "カード会員（累計）", "コミュニティリーダー（増加）", "コミュニティリーダー（累計）"]
        assert usage[1:] == [[month, "14", "14", "13", "13", "<5", "<5"]]  # two leaders: withheld

        # nothing personal anywhere in the zip: no handle, e-mail, display name or user id
        everything = b"".join(z.read(n) for n in names).decode("utf-8-sig", errors="replace")
        for u in node.users.values():
            for personal in (u.handle, u.email or "", u.display_name, u.id):
                assert personal and personal not in everything, personal

        # a second download is the same zip from the cache: the services are not asked again
        cache = node.app.state.open_data
        assert cache.builds == 1
        again = await visitor.get("/open-data/download")
        assert again.content == r.content and cache.builds == 1
        page = await visitor.get("/open-data")
        assert "まだ作成していません" not in page.text and datetime.now(JST).strftime("%Y-%m-%d") in page.text

    # The staff's figures page: the usage table unsuppressed (two community leaders shown as 2).
    async with node.client() as staff:
        r = await post(staff, "/login", {"login": STAFF[0], "password": PW, "next": "/staff/figures"})
        assert r.status_code == 303, r.text
        r = await staff.get("/staff/figures")
        assert r.status_code == 200 and 'id="usage-table"' in r.text
        table = r.text.split('id="usage-table"')[1].split("</table>")[0]
        assert "ポータルサイト登録者" in table and "カード会員" in table and "コミュニティリーダー" in table
        row = table.split(f'<td class="l">{month}</td>')[1].split("</tr>")[0]
        assert row.replace(" ", "") == "<td>14</td><td>14</td><td>13</td><td>13</td><td>2</td><td>2</td>"

    # A service's usage figures unsuppressed are staff's only: refused, nothing changes.
    resident = Actor.model_validate(node.actor("sugi1"))
    for service in ("identity", "points", "sns"):
        with pytest.raises(errors.ServiceError) as refused:
            await call(node.nc, od.EP_USAGE, od.UsageQuery(actor=resident), service=service, node=NODE)
        assert refused.value.error_code == "usage.staff_only"
    leaders = od.Usage.model_validate(await call(node.nc, od.EP_USAGE, od.UsageQuery(
        actor=Actor.model_validate(node.actor(STAFF[0]))), service="sns", node=NODE))
    assert leaders.total == 2 and [(m.month, m.new, m.total) for m in leaders.months] == [(month, 2, 2)]


async def test_a_service_not_answering_gives_a_503_page_and_nothing_kept(nats_server, tmp_path) -> None:
    """No service runs: the download says so in Japanese (503), builds nothing, keeps nothing; the page still
    opens and says no zip was built yet."""
    app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,points", public_url=BASE)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as visitor:
            r = await visitor.get("/open-data/download")
            assert r.status_code == 503 and "いまはオープンデータを作成できません" in r.text
            assert app.state.open_data.built is None and app.state.open_data.builds == 0
            page = await visitor.get("/open-data")
            assert page.status_code == 200 and "まだ作成していません" in page.text
