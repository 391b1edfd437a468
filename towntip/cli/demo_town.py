"""The demo town beside the seed's events: people, communities with posts, co-creation themes, donation projects and
courses for `towntip demo seed`, put through the services' own endpoints as their staff and residents would.

The themes reach each of the four phases (the ones past the call: towntip/cli/demo_pilots.py).
The names are the seed's (菜の花, キャンドルナイト, ラジオ体操, 生ごみフォーラム, ICT講習会: the event table in
towntip/data) and Tsurugashima's places; the people, texts and figures are sample values, and every demo account's
handle starts with `demo_` so that an operator can tell them apart and remove them. Their passwords are random and
never shown: nobody signs in as them. Running it again finds what is there (by handle, name, title or code) and
adds nothing twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from towntip.cli.demo_pilots import Pilots
from towntip.kernel import errors
from towntip.kernel.contracts import courses as cc
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as pc
from towntip.kernel.contracts import sns as sc

Say = Callable[[str], None]
Call = Callable[[str, str, Any], Awaitable[Any]]  # (service, endpoint, payload) -> answer

# (handle, display name, role): the staff who put the town's offers, the residents who lead and post.
PEOPLE = (
    ("demo_kyodo", "市民協働推進課（デモ）", "staff"),
    ("demo_jimukyoku", "共創事務局（デモ）", "secretariat"),
    ("demo_nanohana", "菜の花の会 さくら", None),
    ("demo_candle", "キャンドル係 ひろし", None),
    ("demo_taiso", "ラジオ体操 みどり", None),
    ("demo_kosodate", "子育てサロン まい", None),
    ("demo_smartlock", "スマート施設 ゆうこ", None),  # the companies of the themes in phases 3 and 4
    ("demo_ecooil", "エコ油脂 たけし", None),
)

# (leader, name, description, categories, [(author, title, body)])
COMMUNITIES = (
    (
        "demo_nanohana",
        "つるがしま菜の花の会",
        "休耕地に菜の花を育て、春の菜の花ウォークと菜種油づくりをしています。畑仕事が初めての方も歓迎です。",
        ["npo-7", "npo-5"],
        [
            (
                "demo_nanohana",
                "種まきのお手伝いを募集します",
                "10月の土曜日に高倉の畑で種まきをします。"
                "軍手と飲み物だけお持ちください。小学生のお子さんも一緒にどうぞ。",
            ),
            ("demo_taiso", "菜の花ウォークの写真", "今年も見事に咲きました。来年は友だちを誘って歩きます。"),
        ],
    ),
    (
        "demo_candle",
        "キャンドルナイト実行委員会",
        "夏至と冬至の夜、電気を消してろうそくの灯りで過ごすキャンドルナイトを運動公園で開いています。",
        ["npo-7", "pib-16"],
        [
            (
                "demo_candle",
                "廃油キャンドルづくり教室",
                "家庭の使用済み天ぷら油でキャンドルを作ります。市民活動推進センターにて、材料はこちらで用意します。",
            )
        ],
    ),
    (
        "demo_taiso",
        "朝のラジオ体操 若葉の会",
        "毎朝6時30分から若葉駅前の公園でラジオ体操をしています。あはは！の日には出張体操もします。",
        ["npo-1", "pib-4"],
        [
            ("demo_taiso", "雨の日は中止です", "小雨なら行います。迷ったら掲示板をご覧ください。"),
            ("demo_kosodate", "親子で参加しました", "子どもがスタンプを集めるのを楽しみにしています。"),
        ],
    ),
    (
        "demo_kosodate",
        "子育てサロン ひだまり",
        "未就学児と保護者の交流の場です。南公民館の和室で月2回、絵本の読み聞かせや季節の工作をしています。",
        ["npo-13", "pib-7"],
        [("demo_kosodate", "12月は親子でクリスマス工作", "紙コップと毛糸でツリーを作ります。申込みは不要です。")],
    ),
)

DEPARTMENT = "市民協働推進課"
# (title, background, target, desired outcome, fields, company points, the phase it is carried to: 1 課題整理,
# 2 対話形成 with an open call, 3 実証設計 and 4 成果定着 with a published case: towntip/cli/demo_pilots.py)
THEMES = (
    (
        "生ごみの減量と堆肥化を地域で進めたい",
        "生ごみフォーラムで、家庭の生ごみが燃やすごみの約4割を占めること、堆肥化に関心はあっても続かない家庭が多いこと"
        "が話し合われました。",
        "家庭と自治会、市内の農家",
        "生ごみの排出量を減らし、できた堆肥を市内の畑で使う循環をつくる",
        ["npo-7", "pib-16"],
        "回収の仕組み、堆肥の品質管理、参加を続けやすくするアプリや仕掛け",
        1,
    ),
    (
        "高齢者の移動を支える乗合の実証",
        "路線バスの減便で、買い物や通院に困る高齢者が増えています。自治会の聞き取りでは、週に1〜2回の外出を"
        "あきらめている方もいました。",
        "市内在住の高齢者とその家族",
        "予約できる乗合の移動手段を試し、外出の回数を増やす",
        ["npo-3", "pib-4"],
        "配車の仕組み、車両と運行、利用者への声かけと見守り",
        2,
    ),
    (
        "公民館の鍵の受け渡しをスマートロックでなくす",
        "夜間と休日に公民館を借りる団体は、開館中に窓口で鍵を受け取り、翌日返しに来ています。受け渡しに職員の時間も"
        "月40時間ほどかかっています。",
        "公民館を使う市民活動団体と公民館の職員",
        "予約と連動した暗証番号で開け閉めでき、窓口に来なくても借りられる",
        ["npo-3", "npo-14"],
        "スマートロックの設置と保守、予約システムとの連携、個人情報を渡さない仕組み",
        3,
    ),
    (
        "家庭の使用済み天ぷら油を回収してまちで使う",
        "使用済みの天ぷら油は固めて燃やすごみに出されています。キャンドルナイト実行委員会からは、廃油キャンドルの"
        "原料を集める場所がほしいという声がありました。",
        "市内の家庭、公民館、スーパー",
        "廃食用油を資源として回収し、市の車両の燃料とキャンドルに使う",
        ["npo-7", "pib-16"],
        "回収箱の設置と回収、精製と品質管理、回収量の見える化",
        4,
    ),
)
CRITERIA = [
    {"name": "地域への効果", "weight": 40},
    {"name": "続けられる仕組み", "weight": 35},
    {"name": "費用の妥当性", "weight": 25},
]

# (code, title, organisation, description, field, goal)
PROJECTS = (
    (
        "nanohana",
        "菜の花プロジェクト",
        "つるがしま菜の花の会",
        "休耕地を菜の花畑にして景観と養蜂を育て、収穫した菜種油を学校給食に届けます。",
        "npo-7",
        300_000,
    ),
    (
        "candle-night",
        "キャンドルナイト 2027",
        "キャンドルナイト実行委員会",
        "廃油キャンドル1,000本で運動公園を灯します。寄附はろうそく立てと会場設営に使います。",
        "pib-16",
        150_000,
    ),
    (
        "kodomo-shokudo",
        "地域の子ども食堂",
        "子育てサロン ひだまり",
        "月2回、公民館で子どもと高齢者が一緒に食べる食堂を開きます。食材と衛生用品に使います。",
        "pib-7",
        500_000,
    ),
)

# (code, title, description, field, credits)
COURSES = (
    (
        "ict-skillup",
        "ICTスキルアップ講習会",
        "スマートフォンの基本操作から、オンライン申請と地域ポータルの使い方まで。",
        "npo-14",
        2,
    ),
    ("kankyo-point", "環境ポイント学習会", "ごみの分け方と減らし方、家庭でできる省エネを学びます。", "npo-7", 1),
    (
        "bosai-leader",
        "地域防災リーダー養成講座",
        "避難所の開設訓練と、自治会での防災訓練の進め方を学びます。",
        "npo-8",
        3,
    ),
)


class DemoTown:
    """One run of the town's seed: `call` reaches this node's services; `say` reports each thing put or found."""

    def __init__(self, call: Call, say: Say) -> None:
        self.call, self.say = call, say
        self.actors: dict[str, dict[str, Any]] = {}

    async def run(self) -> dict[str, int]:
        await self.people()
        return {
            "communities": await self.communities(),
            "themes": await self.themes(),
            "projects": await self.projects(),
            "courses": await self.courses(),
        }

    # -- people --------------------------------------------------------------------------------------------

    async def people(self) -> None:
        known = {u["handle"]: u for u in (await self.call(ic.SERVICE, ic.EP_USER_LIST, None))["users"]}
        for handle, name, role in PEOPLE:
            user = known.get(handle)
            if user is None:
                user = await self.call(
                    ic.SERVICE,
                    ic.EP_USER_ADD,
                    ic.UserAddIn(
                        handle=handle,
                        display_name=name,
                        email=f"{handle}@demo.invalid",
                        password=secrets.token_urlsafe(24),
                    ),
                )
                self.say(f"person\t{handle}\t{name}")
            if role and role not in user["roles"]:
                user = await self.call(ic.SERVICE, ic.EP_USER_GRANT, ic.RoleIn(handle=handle, role=role))
            self.actors[handle] = {
                "user_id": user["id"],
                "global_handle": user["global_handle"],
                "display_name": user["display_name"],
                "roles": list(user["roles"]),
            }

    # -- communities and posts (sns) -----------------------------------------------------------------------

    async def communities(self) -> int:
        for leader, name, description, cats, posts in COMMUNITIES:
            found = await self.call(sc.SERVICE, sc.EP_COMMUNITY_LIST, sc.CommunityListQuery(search=name))
            community = next((cm for cm in found["communities"] if cm["name"] == name), None)
            if community is None:
                community = await self.call(
                    sc.SERVICE,
                    sc.EP_COMMUNITY_OPEN,
                    {"actor": self.actors[leader], "name": name, "description": description, "categories": cats},
                )
                self.say(f"community\t{name}")
            await self.posts(community["id"], posts)
        return len(COMMUNITIES)

    async def posts(self, community_id: str, posts: list[tuple[str, str, str]]) -> None:
        listed = await self.call(sc.SERVICE, sc.EP_POST_LIST, {"community_id": community_id, "limit": 50})
        titles = {p["title"] for p in listed["posts"]}
        for author, title, body in posts:
            if title in titles:
                continue
            try:
                await self.call(
                    sc.SERVICE, sc.EP_COMMUNITY_JOIN, {"actor": self.actors[author], "community_id": community_id}
                )
            except errors.ServiceError as exc:
                if exc.error_code != sc.COMMUNITY_ALREADY_MEMBER.code:
                    raise
            await self.call(
                sc.SERVICE,
                sc.EP_POST_CREATE,
                {"actor": self.actors[author], "community_id": community_id, "title": title, "body": body},
            )
            self.say(f"post\t{title}")

    # -- co-creation themes (projects) ---------------------------------------------------------------------

    async def department(self, staff: dict[str, Any]) -> str:
        orgs = (await self.call(pc.SERVICE, pc.EP_ORG_LIST, {"kind": "department"}))["orgs"]
        found = next((o for o in orgs if o["name"] == DEPARTMENT), None)
        if found is None:
            found = await self.call(
                pc.SERVICE,
                pc.EP_ORG_CREATE,
                {"actor": staff, "kind": "department", "name": DEPARTMENT, "fields": ["npo-3", "npo-19"]},
            )
            self.say(f"department\t{DEPARTMENT}")
        return str(found["id"])

    async def themes(self) -> int:
        staff = self.actors["demo_kyodo"]
        department = await self.department(staff)
        listed = (await self.call(pc.SERVICE, pc.EP_THEME_LIST, {"actor": staff, "include_drafts": True}))["themes"]
        have = {th["title"]: th for th in listed}
        later: list[tuple[dict[str, Any], int]] = []
        for title, background, target, outcome, fields, points, phase in THEMES:
            theme = have.get(title) or await self.call(
                pc.SERVICE,
                pc.EP_THEME_CREATE,
                {
                    "actor": staff,
                    "owner_department_id": department,
                    "title": title,
                    "background": background,
                    "target": target,
                    "desired_outcome": outcome,
                    "fields": fields,
                    "company_points": points,
                },
            )
            action = {"actor": staff, "theme_id": theme["id"]}
            if theme["status"] != "published":
                theme = await self.call(pc.SERVICE, pc.EP_THEME_PUBLISH, action)
                self.say(f"theme\t{title}")
            if phase == 2 and theme["phase"] == 1:
                await self.open_call(action)
            elif phase > 2 and theme["phase"] < phase:
                later.append((theme, phase))
        if later:
            await Pilots(self.call, self.say, self.actors).carry(later, CRITERIA)
        return len(THEMES)

    async def open_call(self, action: dict[str, Any]) -> None:
        """Phase 2 (対話形成): the call's requirements (deadline eight weeks ahead), the phase moved, the call
        opened."""
        await self.call(
            pc.SERVICE,
            pc.EP_THEME_REQUIREMENTS,
            {
                **action,
                "conditions": "市内で実施できること。個人情報は市の基準に沿って扱うこと。",
                "scope": "半年間の実証の計画と、運営に必要な体制の提案",
                "deadline": (datetime.now(UTC) + timedelta(weeks=8)).isoformat(),
                "criteria": CRITERIA,
            },
        )
        await self.call(
            pc.SERVICE, pc.EP_THEME_ADVANCE, {**action, "to_phase": 2, "note": "要件が整い、パートナーの公募を始めます"}
        )
        await self.call(pc.SERVICE, pc.EP_THEME_CALL_OPEN, action)

    # -- donation projects and courses (points) ------------------------------------------------------------

    async def projects(self) -> int:
        staff = self.actors["demo_kyodo"]
        for code, title, organisation, description, field, goal in PROJECTS:
            await self.call(
                dc.SERVICE,
                dc.EP_PROJECT_PUT,
                {
                    "actor": staff,
                    "code": code,
                    "title": title,
                    "organisation": organisation,
                    "description": description,
                    "field": field,
                    "goal_yen": goal,
                },
            )
            await self.call(dc.SERVICE, dc.EP_PROJECT_CERTIFY, {"actor": staff, "code": code})
            self.say(f"donation project\t{code}\t{title}")
        return len(PROJECTS)

    async def courses(self) -> int:
        staff = self.actors["demo_kyodo"]
        for code, title, description, field, credits in COURSES:
            await self.call(
                dc.SERVICE,
                cc.EP_COURSE_PUT,
                {
                    "actor": staff,
                    "code": code,
                    "title": title,
                    "description": description,
                    "field": field,
                    "credits": credits,
                },
            )
            self.say(f"course\t{code}\t{title}")
        return len(COURSES)
