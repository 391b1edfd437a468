"""The node's status page (GET /) in headless Chromium on a phone-sized screen, against a real node."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from tests.node.test_supervisor import Node, node  # noqa: F401 - fixture
from tests.support.browser import PHONE, phone_browser  # noqa: F401 - fixture

# tests that start whole nodes (`towntip node up`) run one after another on one worker
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("whole-node")]


def page_facts(driver: Any) -> dict[str, Any]:
    return driver.execute_script(
        """return {
             lang: document.documentElement.lang,
             title: document.title,
             text: document.body.innerText,
             overflow: document.documentElement.scrollWidth - window.innerWidth,
             width: window.innerWidth,
             rows: Array.from(document.querySelectorAll('table tr')).map(r => r.innerText),
             docs: Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href')),
           };"""
    )


async def load(driver: Any, url: str) -> dict[str, Any]:
    await asyncio.to_thread(driver.get, url)
    return await asyncio.to_thread(page_facts, driver)


async def test_status_page_on_a_phone(node: Node, phone_browser: Any) -> None:  # noqa: F811
    await node.wait_health(200)
    await node.wait_running("nats-server", "points", "gateway")
    facts = await load(phone_browser, node.base + "/status")

    assert facts["lang"] == "ja"
    assert "tsurugashima" not in facts["title"] and "testnode" in facts["title"]
    assert "すべて稼働中 — all services up" in facts["text"]
    assert facts["width"] <= PHONE[0]
    assert facts["overflow"] <= 0, f"the page scrolls sideways by {facts['overflow']}px on a phone"
    points_rows = [r for r in facts["rows"] if r.startswith("points")]
    assert points_rows and "稼働中 up" in points_rows[0], facts["rows"]
    process_names = {r.split()[0] for r in facts["rows"] if r}  # a row is a small card on a phone: name first
    assert {"nats-server", "points", "gateway"} <= process_names, facts["rows"]
    assert "/docs" in facts["docs"]

    # A service that stops answering (frozen, not dead: the supervisor has nothing to restart) shows as down.
    pid = (await node.status())["points"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        await node.wait_health(503, timeout=5)
        facts = await load(phone_browser, node.base + "/status")
        # (on the default layout points shares its host process with the other services: they are frozen with it)
        assert "points" in facts["text"].split("停止中 down: ", 1)[1].split("\n")[0], facts["text"]
        points_rows = [r for r in facts["rows"] if r.startswith("points")]
        assert "停止 down" in points_rows[0], facts["rows"]
    finally:
        os.kill(pid, signal.SIGCONT)
    await node.wait_health(200)
    facts = await load(phone_browser, node.base + "/status")
    assert "すべて稼働中 — all services up" in facts["text"]

    # The API docs draw from the node's own files only (a closed municipal network reaches no CDN).
    await asyncio.to_thread(phone_browser.get, node.base + "/docs")
    docs = await wait_for_docs(phone_browser)
    # Known open problem (noted at the merge of the notices and signage services): in a whole node, Swagger UI draws
    # only the hand-written points operations and then stops, although /openapi.json holds every operation
    # (Schemathesis reads them all). Until its cause is found, this checks what is drawn from the node's own files.
    assert "TownTip" in docs["title"] and "/api/v1/points/events" in docs["text"], docs["text"][-1500:]
    outside = [u for u in docs["resources"] if not u.startswith(node.base)]
    assert not outside and any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in docs["resources"]), docs
    assert node.stop() == 0


async def wait_for_docs(driver: Any, timeout: float = 20.0) -> dict[str, Any]:
    """Swagger UI's rendered title and operations, once its script has read the OpenAPI document."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        facts: dict[str, Any] = await asyncio.to_thread(driver.execute_script, """
            const title = document.querySelector('.swagger-ui .info .title');
            // Swagger UI breaks long paths with zero-width spaces (<wbr>): read the text without them.
            return {title: title ? title.innerText : '', text: document.body.innerText.replace(/[\u200b\u00ad]/g, ''),
                    resources: performance.getEntriesByType('resource').map(e => e.name)};""")
        if facts["title"] and "/api/v1/points/events" in facts["text"] or asyncio.get_running_loop().time() > deadline:
            return facts
        await asyncio.sleep(0.2)
