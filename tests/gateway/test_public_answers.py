"""A visitor's public reads are kept a moment for the next visitors (gateway/portal/public_answers.py): one question
to the service for many visitors; never for a signed-in person, a form's POST, a refusal, or a question with an
actor; and at most LIMIT questions kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from gateway.portal.public_answers import PublicAnswers, cacheable, key_of
from identity.app import IdentityService
from services.sns.app import SnsService
from tests.projects.test_projects_portal import post
from tests.support.nodes import PW, add_people, gateway_app, started
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import sns as sc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.settings import ServiceSettings

NODE = "tsurugashima"
BASE = "http://portal.test"
HANAKO = Actor(user_id="u-hanako", global_handle=f"hanako@{NODE}", display_name="花子")


async def test_one_question_for_many_visitors_and_failures_asked_again() -> None:
    kept = PublicAnswers(ttl=60, limit=2)
    asked: list[str] = []

    async def ask(value: str) -> str:
        asked.append(value)
        await asyncio.sleep(0.05)
        return value

    answers = await asyncio.gather(*(kept.get("k", lambda: ask("a")) for _ in range(20)))
    assert answers == ["a"] * 20 and asked == ["a"]  # twenty visitors at once: one question
    assert await kept.get("k", lambda: ask("b")) == "a" and asked == ["a"]

    async def fail() -> str:
        asked.append("fail")
        raise RuntimeError("the service did not answer")

    for _ in range(2):  # a failure is not kept: the next visitor asks again
        with pytest.raises(RuntimeError):
            await kept.get("f", fail)
    assert asked == ["a", "fail", "fail"]
    await kept.get("x", lambda: ask("x"))
    await kept.get("y", lambda: ask("y"))
    assert list(kept.kept) == ["x", "y"]  # at most `limit` questions: the oldest went
    kept.ttl = 0
    assert await kept.get("y", lambda: ask("y2")) == "y2"  # once old, asked again

    # the visitor whose question went out leaves (their request is cancelled): the others still get the answer
    first = asyncio.ensure_future(kept.get("z", lambda: ask("z")))
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(kept.get("z", lambda: ask("never"))) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    assert await asyncio.gather(*others) == ["z"] * 3 and asked.count("z") == 1 and "never" not in asked


def test_only_reads_without_an_actor_are_kept() -> None:
    assert cacheable(sc.EP_COMMUNITY_LIST, {}) and cacheable(sc.EP_COMMUNITY_GET, {"id": "x"})
    assert cacheable(sc.EP_COMMUNITY_MEMBERS, None)
    assert not cacheable(sc.EP_COMMUNITY_LIST, {"actor": HANAKO.model_dump(mode="json")})
    assert not cacheable(sc.EP_COMMUNITY_OPEN, {})
    assert not cacheable("login", {})
    assert key_of("sns", "communities.list", {"b": 1, "a": 2}) == key_of("sns", "communities.list", {"a": 2, "b": 1})


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[tuple[Any, Any]]:
    ident = IdentityService(ServiceSettings(service="identity", node_id=NODE, nats_url=nats_server.url,
                                            data_dir=str(tmp_path / "id"), public_url=BASE))
    sns = SnsService(ServiceSettings(service="sns", node_id=NODE, nats_url=nats_server.url,
                                     data_dir=str(tmp_path / "sns"), public_url=BASE))
    asked: list[str] = []
    async with started(ident, sns):
        spy = await nats.connect(nats_server.url)  # a plain subscriber sees every question to the endpoint

        async def note(msg: Msg) -> None:
            asked.append(msg.subject)

        await spy.subscribe(subjects.svc(NODE, sc.SERVICE, sc.EP_COMMUNITY_LIST), cb=note)
        await spy.flush()
        await add_people(spy, NODE, [("hanako", "花子", None)])
        app = gateway_app(nats_server.url, tmp_path, node=NODE, services="identity,sns", public_url=BASE,
                          public_cache_seconds=60)
        try:

            async def questions() -> int:
                """The questions the endpoint had, once the spy has read what the server sent it."""
                await spy.flush()
                await asyncio.sleep(0.05)  # the subscription's callback runs after the read
                return len(asked)

            async with app.router.lifespan_context(app):
                yield app, questions
        finally:
            await spy.close()


async def open_community(app: Any, name: str) -> None:
    nc = app.state.nc
    await rpc.call(nc, subjects.svc(NODE, sc.SERVICE, sc.EP_COMMUNITY_OPEN), {
        "actor": HANAKO.model_dump(mode="json"), "name": name, "categories": ["npo-13"]})


async def test_visitors_share_an_answer_a_signed_in_person_never(portal) -> None:
    app, questions = portal
    await open_community(app, "子育てサロン")

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, follow_redirects=False)

    async with client() as visitor, client() as hanako:
        r = await visitor.get("/communities")
        assert r.status_code == 200 and "子育てサロン" in r.text and await questions() == 1
        await open_community(app, "夏祭り実行委員会")
        r = await visitor.get("/communities")  # the kept answer: one question for both views
        assert r.status_code == 200 and "子育てサロン" in r.text and "夏祭り実行委員会" not in r.text
        assert await questions() == 1

        r = await post(hanako, "/login", {"login": "hanako", "password": PW, "next": "/communities"})
        assert r.status_code == 303, r.text
        r = await hanako.get("/communities")  # signed in: asked afresh, her change shows at once
        assert r.status_code == 200 and "夏祭り実行委員会" in r.text and await questions() == 2
        r = await hanako.get("/communities")
        assert await questions() == 3

        app.state.public_answers.ttl = 0  # once the kept answer is old, the next visitor's question goes out
        r = await visitor.get("/communities")
        assert "夏祭り実行委員会" in r.text and await questions() == 4
