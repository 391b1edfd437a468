"""Co-creation phase 2 (対話形成) in headless Chromium on a phone-sized screen: municipal staff move a published theme
to phase 2, open the call and schedule a briefing; a company registers for it and submits a proposal; a second
company submits as the lead of a consortium whose partner confirms; the secretariat appoints two evaluators; after
the deadline they declare conflicts and score; the secretariat closes and publishes the result with its reasons; a
visitor reads it; the staff move the theme to phase 3. Other companies get "not found" for proposals not theirs.

The steps are tests/support/projects_walk.py's (shared with the walk through all four phases); here phase 1's outcome is
made over NATS, as its pages would (they are walked in tests/projects/test_projects_browser.py). The gateway is served
by uvicorn on a real port; identity and projects run beside it on a real nats-server; the projects service's clock is
moved past the deadline by the walk."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.browser import phone_browser  # noqa: F401 - fixture
from tests.support.projects_walk import Walk, partner_formation, walk  # noqa: F401 - fixture
from towntip.kernel.contracts import projects as c

pytestmark = [pytest.mark.browser, pytest.mark.timeout(360)]  # a long walk; under a loaded machine it takes minutes


async def test_one_theme_through_partner_formation_to_phase_three(walk: Walk, phone_browser) -> None:  # noqa: F811
    dept = await walk.call(c.EP_ORG_CREATE, {"actor": walk.actor("kikaku"), "kind": "department",
                                             "name": "企画政策課"})
    theme = await walk.call(c.EP_THEME_CREATE, {
        "actor": walk.actor("kikaku"), "owner_department_id": dept["id"], "title": "高齢者の移動手段の確保",
        "background": "路線バスの減便", "target": "団地に住む75歳以上の方", "desired_outcome": "週2回以上の外出",
        "fields": ["npo-3"], "company_points": "配車システム、車両と運行、見守りとの連携"})
    tid = theme["id"]
    await walk.call(c.EP_THEME_PUBLISH, {"actor": walk.actor("kikaku"), "theme_id": tid})
    await walk.call(c.EP_THEME_REQUIREMENTS, {
        "actor": walk.actor("kikaku"), "theme_id": tid, "conditions": "市内で実証できる法人または共同事業体",
        "scope": "6か月の実証", "deadline": (walk.clock() + timedelta(days=2)).isoformat(),
        "criteria": [{"name": "実現可能性", "weight": 60}, {"name": "費用対効果", "weight": 40}]})
    orgs = await walk.companies()
    await partner_formation(walk, phone_browser, tid, orgs)
