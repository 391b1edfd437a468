"""Every main page of the portal on a phone, checked as a screen reader, a thumb and a large-text reader meet it:
axe-core (the selenium-axe-python package's bundled axe.min.js) finds no serious or critical violation; every tap
target is at least 24 px (WCAG 2.2, 2.5.8; a link inside a sentence is exempt there); at 200 % text size nothing
scrolls sideways. Anonymous, a resident and a staff member walk the pages; a screenshot of each is kept under the
test's tmp_path. A real node's services (identity, points, projects, sns, bookings) run on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest

from identity.app import IdentityService
from services.bookings.app import BookingsService
from services.points.app import PointsService
from services.projects.app import ProjectsService
from services.sns.app import SnsService
from tests.support import bus
from tests.support.browser import (
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.http_server import served
from tests.support.nodes import add_people, gateway_app, started
from towntip.cli.demo import demo_facilities, find_seed_csv, seed_events
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import points as pc
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import free_port

pytestmark = pytest.mark.browser
NODE = "tsurugashima"
ANONYMOUS = [
    "/",
    "/join",
    "/communities",
    "/themes",
    "/events",
    "/facilities",
    "/courses",
    "/donations",
    "/cases",
    "/login",
    "/register",
    "/mine",
    "/menu",
    "/status",
    "/open-data",
    "/no-such-page",
]
RESIDENT = ["/me", "/mine", "/notebook", "/points", "/bookings", "/settings/profile", "/friends", "/menu",
            "/moderation", "/messages", "/openings", "/openings/new"]
STAFF = ["/staff", "/staff/figures", "/staff/bookings/approvals", "/secretariat/inquiries", "/staff/events",
         "/staff/moderation"]

# What the page's targets measure: a target is what a finger taps (links, buttons, fields, summaries); a link in
# the middle of a sentence is exempt (WCAG 2.5.8), as are the hidden and the skip link until it is focused.
TARGETS = """
const small = [];
for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (el.classList.contains('skip')) continue;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden') continue;
  const parent = el.parentElement;
  const inSentence = style.display === 'inline' && parent &&
    parent.textContent.trim().length > el.textContent.trim().length;
  if (inSentence) continue;
  let w = r.width, h = r.height;
  const label = el.closest('label');  // a check box is tapped through its label
  if (label) { const l = label.getBoundingClientRect(); w = Math.max(w, l.width); h = Math.max(h, l.height); }
  const name = (el.textContent || el.name || '').trim().slice(0, 30);
  if (w < 24 || h < 24) small.push(`${el.tagName.toLowerCase()} "${name}" ${Math.round(w)}x${Math.round(h)}`);
}
return small;
"""
LARGE_TEXT = """
document.documentElement.style.fontSize = '200%';
const over = document.documentElement.scrollWidth - window.innerWidth;
document.documentElement.style.fontSize = '';
return over;
"""


@pytest.fixture
async def portal(nats_server, tmp_path) -> AsyncIterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def settings(name: str, **more: Any) -> ServiceSettings:
        return ServiceSettings(
            service=name, node_id=NODE, nats_url=nats_server.url, data_dir=str(tmp_path / name), public_url=base, **more
        )

    services = (
        IdentityService(settings("identity")),
        PointsService(settings("points", card_key="11" * 32)),
        ProjectsService(settings("projects"), smtp=SmtpSettings(enabled=False)),
        SnsService(settings("sns")),
        BookingsService(settings("bookings")),
    )
    async with started(*services):
        nc = await nats.connect(nats_server.url)
        await add_people(nc, NODE, (("hanako", "山田 花子", None), ("yamada", "職員 山田", "staff")))
        await bus.call(
            nc, ic.EP_USER_GRANT, ic.RoleIn(handle="yamada", role="secretariat"), service=ic.SERVICE, node=NODE
        )
        seed = find_seed_csv()
        assert seed is not None
        for ev in seed_events(seed)[:6]:
            await bus.call(nc, pc.EP_EVENT_PUT, ev, node=NODE)
        for facility in demo_facilities()[:4]:
            await bus.call(nc, bc.EP_FACILITY_PUT, facility, service=bc.SERVICE, node=NODE)
        await nc.close()
        app = gateway_app(
            nats_server.url, tmp_path, node=NODE, services="identity,points,projects,sns,bookings", public_url=base
        )
        async with served(app, "127.0.0.1", port):
            yield base


def check(driver: Any, shots: Path, name: str) -> dict[str, Any]:
    from selenium_axe_python import Axe

    axe = Axe(driver)
    axe.inject()
    found = axe.run()
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    driver.save_screenshot(str(shots / f"{name}.png"))
    return {
        "axe": bad,
        "small": driver.execute_script(TARGETS),
        "large_text_overflow": driver.execute_script(LARGE_TEXT),
        "overflow": driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth"),
        "path": driver.execute_script("return location.pathname"),
    }


# Some thirty pages, each read by axe-core: about two minutes on a quiet two-core machine, more under load.
@pytest.mark.timeout(480)
async def test_every_main_page_passes_axe_tap_targets_and_large_text_on_a_phone(
    portal,
    phone_browser,  # noqa: F811
    tmp_path,
) -> None:
    base, d = portal, phone_browser
    shots = tmp_path / "shots"
    shots.mkdir()
    problems: dict[str, Any] = {}

    async def walk(who: str, paths: list[str]) -> None:
        for path in paths:
            await open_page(d, base + path)
            found = await run(check, d, shots, f"{who}{path.replace('/', '_')}")
            assert found["path"] == path, found  # the page itself, not a login redirect
            wrong = {k: v for k, v in found.items() if k in ("axe", "small") and v}
            wrong.update({k: found[k] for k in ("overflow", "large_text_overflow") if found[k] > 0})
            if wrong:
                problems[f"{who} {path}"] = wrong

    await walk("anonymous", ANONYMOUS)
    await log_in(d, base, "hanako", "/me")
    await walk("resident", RESIDENT)
    refused = await open_page(d, base + "/staff")  # the staff area is not a resident's
    assert "権限がありません" in refused["text"], refused["text"]
    page = await log_in(d, base, "yamada", "/staff", via_logout=True)
    for queue in (
        "承認待ちの施設予約",
        "審査待ちの団体登録",
        "入金確認待ちの寄附",
        "公開前の共創テーマ",
        "未対応のお問い合わせ",
        "発行したポイント",
        "集計（職員）",
        "予約の承認（職員）",
    ):  # queues, figures and tools, none missing
        assert queue in page["text"], (queue, page["text"])
    assert "取得できませんでした" not in page["text"], page["text"]  # every service answered
    await walk("staff", STAFF)
    assert not problems, "\n".join(f"{page}: {wrong}" for page, wrong in problems.items())
