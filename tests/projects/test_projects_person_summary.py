"""The projects service's part of My Page across regions (`person.summary`), over NATS on SQLite and PostgreSQL:
a person's organisations and the themes they take part in, each with how; drafts only for their department; a
query without the global handle refused and nothing changed."""

from __future__ import annotations

from typing import Any

from tests.projects.test_projects_calls import (
    ACME,
    ACME2,
    BETA,
    EV1,
    GAMMA,
    JIMU,
    KIKAKU,
    THEME,
    Node,
    actor,
    companies,
    node,  # noqa: F401 - fixture
    open_theme,
    org,
    proposal,
)
from towntip.kernel import errors
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.mypage import EP_PERSON_SUMMARY


async def summary(n: Node, who: Any) -> dict[str, Any]:
    return await n.call(EP_PERSON_SUMMARY, {"person": who.user_id, "global_handle": who.global_handle})


async def test_a_persons_organisations_and_themes_with_their_roles(node: Node) -> None:  # noqa: F811
    theme = await open_theme(node)
    tid = theme["id"]
    orgs = await companies(node)
    await node.call(c.EP_PROPOSAL_SUBMIT, {"actor": actor(ACME2), **proposal(tid, orgs["acme"], "AI配車")})
    consortium = await node.call(c.EP_PROPOSAL_SUBMIT, {"actor": actor(BETA), **proposal(
        tid, orgs["beta"], "乗合タクシー", partners=(orgs["gamma"]["id"],))})
    await node.call(c.EP_PROPOSAL_PARTNER, {"actor": actor(GAMMA), "proposal_id": consortium["id"],
                                            "org_id": orgs["gamma"]["id"], "decision": "confirm"})
    await node.call(c.EP_EVALUATOR_APPOINT, {"actor": actor(JIMU), "theme_id": tid,
                                             "global_handle": EV1.global_handle})
    dept = (await node.call(c.EP_ORG_LIST, {"kind": "department"}))["orgs"][0]
    draft = await node.call(c.EP_THEME_CREATE, {"actor": actor(KIKAKU), "owner_department_id": dept["id"],
                                                **THEME, "title": "下書きのテーマ"})

    mine = await summary(node, KIKAKU)  # staff of the owner department: the published theme and the draft
    assert [(o["name"], o["kind"], o["role"]) for o in mine["organisations"]] == [("企画政策課", "department", "admin")]
    assert {(t["id"], t["status"], t["role"]) for t in mine["themes"]} == {
        (tid, "published", "owner_department"), (draft["id"], "draft", "owner_department")}
    assert (await summary(node, ACME2))["themes"] == [{"id": tid, "title": THEME["title"], "phase": 2,
                                                       "status": "published", "role": "proposal_lead"}]
    assert [t["role"] for t in (await summary(node, ACME))["themes"]] == ["proposal_lead"]
    assert [t["role"] for t in (await summary(node, GAMMA))["themes"]] == ["proposal_partner"]
    evaluator = await summary(node, EV1)
    assert evaluator["organisations"] == [] and [(t["id"], t["role"]) for t in evaluator["themes"]] == [
        (tid, "evaluator")]
    await org(node, EV1, "評価さんの会社")  # a company of the evaluator's: listed, no theme through it
    assert [o["name"] for o in (await summary(node, EV1))["organisations"]] == ["評価さんの会社"]

    # Another department's staff member sees nothing of the draft; a query without a global handle is refused.
    assert (await summary(node, JIMU))["themes"] == []
    await node.refused(errors.BadRequest, EP_PERSON_SUMMARY, {"person": KIKAKU.user_id}, "global handle")
    await node.refused(errors.BadRequest, EP_PERSON_SUMMARY, {"person": KIKAKU.user_id, "global_handle": "nobody"})
