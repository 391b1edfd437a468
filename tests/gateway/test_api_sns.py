"""The SNS over the HTTP API (issue 20, point 10): direct messages, 共感 and reports under /api/v1, on a real node
in-process (the fixture of test_api_generated.py: a real nats-server, identity, sns on SQLite and PostgreSQL,
projects). Each refusal changes nothing: a message to someone who blocked you, to nobody known here, a report twice,
another person's conversation never readable."""

from __future__ import annotations

from sqlalchemy import func, select

from services.sns.models import messages as message_rows
from services.sns.models import reports
from tests.gateway.test_api_generated import NODE, Node, node  # noqa: F401 - the fixture
from tests.support.api_node import problem

HANAKO, TARO = f"hanako@{NODE}", f"taro@{NODE}"


async def count(n: Node, table) -> int:
    async with n.sns.sessions() as s:
        return (await s.execute(select(func.count()).select_from(table))).scalar_one()


async def test_direct_messages_over_the_api(node: Node) -> None:  # noqa: F811
    async with node.client("hanako") as hanako, node.client("taro") as taro, node.client() as anyone:
        problem(await anyone.post("/api/v1/messages", json={"to": TARO, "body": "こんにちは"}), 401,
                "request.unauthenticated")
        problem(await anyone.get("/api/v1/messages"), 401, "request.unauthenticated")
        # who it is from is the token's person; the addressee's name is identity's, not the caller's
        problem(await hanako.post("/api/v1/messages", json={"to": TARO, "body": "x", "to_name": "偽名"}), 422,
                "request.unprocessable")
        r = await hanako.post("/api/v1/messages", json={"to": TARO, "body": "土曜の草刈り、来られますか？"})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["sender"] == HANAKO and first["body"] == "土曜の草刈り、来られますか？"
        # nobody known at this node: 404 from identity, nothing stored
        problem(await hanako.post("/api/v1/messages", json={"to": f"nobody@{NODE}", "body": "hi"}), 404,
                "people.not_found")
        assert await count(node, message_rows) == 1

        r = await taro.get("/api/v1/messages/unread")
        assert r.status_code == 200 and r.json()["unread"] == 1, r.text
        r = await taro.get("/api/v1/messages")
        assert r.status_code == 200, r.text
        [conv] = r.json()["conversations"]
        assert conv["peer"]["global_handle"] == HANAKO and conv["peer"]["display_name"] == "山田 花子"
        assert conv["unread"] == 1
        r = await taro.get(f"/api/v1/messages/with/{HANAKO}")
        assert r.status_code == 200 and [m["body"] for m in r.json()["messages"]] == [first["body"]], r.text
        r = await taro.post(f"/api/v1/messages/with/{HANAKO}/read", json={"upto": first["id"]})
        assert r.status_code == 200 and r.json()["unread"] == 0, r.text

        # taro blocks hanako: her next message is refused and stored nowhere
        r = await taro.post(f"/api/v1/messages/with/{HANAKO}/settings", json={"blocked": True})
        assert r.status_code == 200 and r.json()["blocked"] is True, r.text
        problem(await hanako.post("/api/v1/messages", json={"to": TARO, "body": "また連絡します"}), 403,
                "message.blocked")
        assert await count(node, message_rows) == 1
        assert (await taro.get("/api/v1/messages/unread")).json()["unread"] == 0


async def test_likes_and_reports_over_the_api(node: Node) -> None:  # noqa: F811
    async with node.client("hanako") as hanako, node.client("taro") as taro:
        r = await hanako.post("/api/v1/communities", json={"name": "川の清掃", "categories": ["npo-3"]})
        assert r.status_code == 200, r.text
        cid = r.json()["id"]
        r = await hanako.post(f"/api/v1/communities/{cid}/posts", json={"title": "報告", "body": "ごみ袋30袋"})
        assert r.status_code == 200, r.text
        post = str(r.json()["id"])  # 共感 and reports name any kind of item by a string key

        r = await taro.post("/api/v1/likes", json={"kind": "post", "id": post})
        assert r.status_code == 200 and r.json()["likes"] == 1 and r.json()["liked"] is True, r.text
        problem(await hanako.post("/api/v1/likes", json={"kind": "post", "id": post}), 409, "like.own")
        r = await taro.post("/api/v1/likes/withdraw", json={"kind": "post", "id": post})
        assert r.status_code == 200 and r.json()["likes"] == 0, r.text

        body = {"kind": "post", "target": post, "reason": "spam", "detail": "宣伝です"}
        r = await taro.post("/api/v1/reports", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["reason"] == "spam"
        problem(await taro.post("/api/v1/reports", json=body), 409, "report.already_open")
        problem(await hanako.post("/api/v1/reports", json=body), 400, "report.self")
        assert await count(node, reports) == 1
        r = await hanako.get("/api/v1/moderation/mine")
        assert r.status_code == 200 and r.json()["actions"] == [], r.text


async def test_the_sns_routes_are_in_openapi(node: Node) -> None:  # noqa: F811
    async with node.client() as anyone:
        paths = (await anyone.get("/openapi.json")).json()["paths"]
    for path, method in [("/api/v1/messages", "post"), ("/api/v1/messages", "get"),
                         ("/api/v1/messages/with/{peer}", "get"), ("/api/v1/messages/unread", "get"),
                         ("/api/v1/likes", "post"), ("/api/v1/reports", "post"), ("/api/v1/moderation/mine", "get")]:
        assert method in paths.get(path, {}), (path, method)
