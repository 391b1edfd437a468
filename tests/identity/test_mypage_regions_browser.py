"""My Page across regions in headless Chromium on a phone-sized screen, with three real nodes
(tests/support/federation_nodes.py: identity, points, projects, sns and a gateway each; 127.0.0.2-4, so the browser
keeps each site's cookies apart).

hanako (home tsurugashima) logs in at suginami through her home node and then at shibuya without a password; she
has points at suginami, and a company and a community at shibuya. Her My Page at suginami shows her home region
first, then every region with its points, communities, projects and friends; in English too; at home the same. With
shibuya's site down, the page still comes and says that region did not answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from identity.models import users
from services.points.app import PointsService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.identity.test_mypage_regions import call
from tests.support.browser import (
    fill,
    open_page,
    phone_browser,  # noqa: F401 - fixture
)
from tests.support.federation_nodes import PW, Node, federation_of
from towntip.kernel.contracts import ledger as lc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as snc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.mail import SmtpSettings

# one federation at a time
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("federation")]
A, B, C = "tsurugashima", "suginami", "shibuya"


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[dict[str, Node]]:
    services = {"points": PointsService,
                "projects": lambda settings: ProjectsService(settings, smtp=SmtpSettings(enabled=False)),
                "sns": SnsService}
    async with federation_of(tmp_path, services=services) as (_anchor, found, _hub):
        yield found


async def user_id(node: Node) -> str:
    async with node.identity.sessions() as s:
        return (await s.execute(select(users.c.id).where(users.c.handle == f"hanako@{A}"))).scalar_one()


async def federated_login(driver: Any, node: Node) -> dict[str, Any]:
    await open_page(driver, f"{node.base}/login?next=/me")
    return await fill(driver, {"target": f"hanako@{A}"}, submit="#federated button[type=submit]")


def section(driver: Any, node: str) -> dict[str, Any]:
    return driver.execute_script(
        "const s = document.getElementById(arguments[0]);"
        "return s && {state: s.dataset.state, text: s.innerText, top: s.getBoundingClientRect().top};",
        f"region-{node}")


async def test_my_page_across_regions_on_a_phone(nodes, phone_browser) -> None:  # noqa: F811
    a, b, cn = nodes[A], nodes[B], nodes[C]
    d = phone_browser

    page = await federated_login(d, b)  # to A's login page: the password goes to A only
    assert page["url"] == "/login" and "ログイン" in page["text"]
    page = await fill(d, {"login": "hanako", "password": PW})
    assert page["url"] == "/me" and f"hanako@{A}" in page["text"], page["text"][:500]
    page = await federated_login(d, cn)  # A's session: straight back
    assert page["url"] == "/me"

    await call(b, "points", lc.EP_LEDGER_POST, {"entries": [{"key": "op-award-browser-01", "legs": [
        {"account": "system:issuance", "asset": "machi-point", "amount": -25},
        {"account": f"person:{await user_id(b)}", "asset": "machi-point", "amount": 25}]}]})
    her = Actor(user_id=await user_id(cn), global_handle=f"hanako@{A}", display_name="山田 花子")
    await call(cn, "projects", prc.EP_ORG_CREATE, {"actor": her.model_dump(mode="json"), "kind": "company",
                                                  "name": "はなこ商店"})
    await call(cn, "sns", snc.EP_COMMUNITY_OPEN, {"actor": her.model_dump(mode="json"), "name": "子育てサロン",
                                                  "categories": ["npo-13"]})

    page = await open_page(d, f"{b.base}/me")
    assert "地域ごとの参加" in page["text"] and page["overflow"] <= 0
    home, here, there = (section(d, n) for n in (A, B, C))
    assert home["state"] == here["state"] == there["state"] == "ok", (home, here, there)
    assert home["top"] < there["top"] < here["top"]  # home first, then by node id
    assert "鶴ヶ島市" in home["text"] and "ホーム地域" in home["text"]
    assert "25 pt" in here["text"] and "この地域" in here["text"]
    assert "はなこ商店" in there["text"] and "管理者" in there["text"]
    for part in ("まちづくりポイント", "参加コミュニティ", "参加プロジェクト", "友だち"):
        assert part in there["text"]
    assert ("子育てサロン" in there["text"] and "リーダー" in there["text"]
            and "いまは表示できません" not in there["text"])

    page = await open_page(d, f"{b.base}/me?lang=en")
    assert "Your regions" in page["text"] and "home region" in page["text"] and "Tsurugashima" in page["text"]
    assert page["overflow"] <= 0

    page = await open_page(d, f"{a.base}/me?lang=ja")  # at home: A asks B and C itself
    assert section(d, B)["state"] == "ok" and "25 pt" in section(d, B)["text"]
    assert "はなこ商店" in section(d, C)["text"] and page["overflow"] <= 0

    await cn.stop_gateway()
    page = await open_page(d, f"{b.base}/me?lang=ja")
    down = section(d, C)
    assert down["state"] == "unreachable" and "応答がありませんでした" in down["text"], down
    assert section(d, B)["state"] == "ok" and page["overflow"] <= 0
