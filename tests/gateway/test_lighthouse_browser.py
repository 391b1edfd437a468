"""Lighthouse (mobile) on the portal's main pages: accessibility at least 95 for a visitor and a signed-in resident
(issue 16, point 11). Lighthouse comes from the npm registry at the version of tests/lighthouse/package-lock.json
(`make test` installs it) and drives Debian's chromium itself. Performance at least 90 too: Lighthouse simulates a
slow phone (4x CPU slowdown, slow 4G) from this run's own trace, so a loaded machine lowers it; the pages are small
server-rendered HTML with one stylesheet and no script of their own, and scored 0.99-1.0 even with five other
test runs on the same two cores (2026-12-07). Speed under load lives in bench/portal.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.gateway.test_accessibility_browser import portal  # noqa: F401 - the fixture: a node's services, demo data
from tests.support.nodes import PW

pytestmark = pytest.mark.browser
LIGHTHOUSE = Path(__file__).parents[1] / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = shutil.which("chromium")
# about 20 s a page: the pages a newcomer and a resident open first (axe-core reads every page:
# test_accessibility_browser.py)
VISITOR = ["/", "/communities", "/events"]
RESIDENT = ["/me"]
ACCESSIBILITY_MIN = 0.95
PERFORMANCE_MIN = 0.90


async def lighthouse(url: str, out: Path, headers: dict[str, str] | None = None) -> dict[str, float]:
    argv = [str(LIGHTHOUSE), url, "--only-categories=accessibility,performance", "--form-factor=mobile",
            "--chrome-flags=--headless=new --no-sandbox --disable-dev-shm-usage", "--output=json",
            f"--output-path={out}", "--quiet", "--max-wait-for-load=60000"]
    if headers:
        argv.append(f"--extra-headers={json.dumps(headers)}")
    proc = await asyncio.create_subprocess_exec(*argv, env={**os.environ, "CHROME_PATH": CHROMIUM or ""},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    said, _ = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, said.decode(errors="replace")[-2000:]
    report = json.loads(await asyncio.to_thread(out.read_text))
    assert report["finalDisplayedUrl"].rstrip("/") == url.rstrip("/"), report["finalDisplayedUrl"]  # no redirect
    return {k: v["score"] for k, v in report["categories"].items()}


@pytest.mark.timeout(600)
async def test_lighthouse_accessibility_and_performance_of_the_main_pages_on_a_phone(portal, tmp_path) -> None:  # noqa: F811
    if not LIGHTHOUSE.exists():
        pytest.skip("Lighthouse is not installed (tests/lighthouse: `make test` runs npm ci; npm missing or failed)")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    base = portal
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        page = await client.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        r = await client.post("/login", data={"csrf": csrf.group(1), "login": "hanako", "password": PW})
        assert r.status_code == 303, r.text
        session = client.cookies.get("tt_session")
    assert session
    scores: dict[str, dict[str, float]] = {}
    for path in VISITOR:
        scores[path] = await lighthouse(base + path, tmp_path / f"anon{path.replace('/', '_')}.json")
    for path in RESIDENT:
        scores[f"{path} (signed in)"] = await lighthouse(base + path, tmp_path / f"me{path.replace('/', '_')}.json",
                                                         {"Cookie": f"tt_session={session}"})
    print("Lighthouse (mobile):", json.dumps(scores, ensure_ascii=False))
    low = {page: s["accessibility"] for page, s in scores.items() if s["accessibility"] < ACCESSIBILITY_MIN}
    assert not low, f"accessibility under {ACCESSIBILITY_MIN:.0%}: {low}"
    slow = {page: s["performance"] for page, s in scores.items() if s["performance"] < PERFORMANCE_MIN}
    assert not slow, f"performance under {PERFORMANCE_MIN:.0%}: {slow}"
