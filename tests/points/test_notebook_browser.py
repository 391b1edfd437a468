"""まちづくり手帳 and the staff's figures in headless Chromium on a phone. The real identity service announces the
people (registration, a district set on the profile page) and the points service's directory hears it; staff set an
event's notebook facts on the figures page; taps go through the EDGE stream. The person sees their lines, totals and
their district's average, downloads a CSV with a BOM; staff see the figures with inline SVG bar charts; a citizen
cannot open them; no page overflows the phone's width."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import nats as nats_client
from selenium.webdriver.common.by import By

from tests.gateway.test_portal_browser import NODE, portal  # noqa: F401 - fixture
from tests.support.browser import (
    fill,
    fill_and_submit,
    log_in,
    open_page,
    phone_browser,  # noqa: F401 - fixture
    run,
)
from tests.support.nodes import add_people
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import points as pc

T0 = datetime(2025, 7, 25, 0, 30, tzinfo=UTC)


async def test_notebook_and_figures_on_a_phone(portal, phone_browser, nats_server) -> None:  # noqa: F811
    base, _ = portal
    d = phone_browser
    nc = await nats_client.connect(nats_server.url)
    try:
        people = await add_people(nc, NODE, [("suzuki", None, "staff"), ("hanako", None, None), ("taro", None, None)])
        ids = {handle: user.id for handle, user in people.items()}

        # Staff set the event and its notebook facts on the figures page.
        page = await log_in(d, base, "suzuki", "/staff/figures", via_logout=True)
        assert page["url"] == "/staff/figures" and "集計（職員）" in page["text"] and page["overflow"] <= 0, page
        page = await fill_and_submit(d, {"code": "shigen", "name": "資源回収", "co2_kg": "30", "kcal": "150",
                                         "hours": "1.5"}, button="#event-form button")
        assert "保存しました。 資源回収 (shigen)" in page["text"], page["text"]

        def choose() -> None:
            from selenium.webdriver.support.ui import Select
            Select(d.find_element(By.ID, "field")).select_by_value("npo-7")
            Select(d.find_element(By.ID, "activity")).select_by_value("carry_out")
        await run(choose)
        page = await fill_and_submit(d, {"code": "shigen", "name": "資源回収"}, button="#event-form button")
        ev = pc.EventOut.model_validate(await rpc.call(nc, subjects.svc(NODE, "points", pc.EP_EVENT_GET),
                                                       pc.EventQuery(code="shigen")))
        assert (ev.field, ev.activity, ev.co2_kg, ev.kcal, ev.hours) == ("npo-7", "carry_out", 30.0, 150, 1.5)

        # Hanako and taro give their district on the profile page (identity announces ProfileChanged).
        for handle in ("hanako", "taro"):
            await log_in(d, base, handle, "/settings/profile", via_logout=True)
            await fill(d, {}, selects={"district": "杉下小学校区"}, submit="main button[type=submit]")
        # Their cards are bound and touched at the event: asked for online, the card's touch shows a code, entered
        # while logged in.
        js = nc.jetstream()
        # Hanako's second day is an event of its own, with the same facts (a card earns an event's points once).
        await rpc.call(nc, subjects.svc(NODE, "points", pc.EP_EVENT_PUT), pc.EventIn(
            code="shigen-2", name="資源回収", field="npo-7", activity="carry_out", co2_kg=30, kcal=150, hours=1.5))
        outcomes = await nc.subscribe(nc.new_inbox(), max_msgs=3)
        for n, (handle, card) in enumerate((("hanako", "0200000000000001"), ("taro", "0200000000000002"))):
            await rpc.call(nc, subjects.svc(NODE, "points", pc.EP_CARD_BIND_REQUEST),
                           pc.CardBindRequest(person=ids[handle], card_idm=card))
            for k in range(2 if handle == "hanako" else 1):
                t = pc.Tap(tap_id=f"brw-tap-{n}{k}", terminal_id="term-1", card_idm=card,
                           event="shigen" if k == 0 else "shigen-2",
                           role="participant", tapped_at=T0 + timedelta(days=k))
                await js.publish(subjects.edge(NODE, "term-1", "tap"), t.model_dump_json().encode(),
                                 headers={subjects.HDR_MSG_ID: t.key, subjects.HDR_RESULT_TO: outcomes.subject})
        shown = [pc.TapOutcome.model_validate_json((await outcomes.next_msg(timeout=20)).data) for _ in range(3)]
        codes = {o.tap_id[len("brw-tap-")]: o.display[:9] for o in shown if o.display}
        assert sorted(codes) == ["0", "1"], shown  # one code per card
        for n, handle in enumerate(("hanako", "taro")):
            await rpc.call(nc, subjects.svc(NODE, "points", pc.EP_CARD_REGISTER_CODE),
                           pc.CardCodeIn(person=ids[handle], code=codes[str(n)]))
        deadline = time.monotonic() + 20
        while sum([(await rpc.call(nc, subjects.svc(NODE, "points", pc.EP_EVENT_GET),
                                   pc.EventQuery(code=code)))["taps"] for code in ("shigen", "shigen-2")]) < 3:
            assert time.monotonic() < deadline, "taps not credited"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()

    # taro opens his notebook once: the directory links his user id
    await log_in(d, base, "taro", "/notebook", via_logout=True)
    page = await log_in(d, base, "hanako", "/notebook", via_logout=True)
    assert page["url"] == "/notebook" and "まちづくり手帳" in page["text"] and page["overflow"] <= 0, page
    rows = await run(lambda: [r.text for r in d.find_elements(By.CSS_SELECTOR, "#notebook tr.entry")])
    assert len(rows) == 2 and "2025-07-25" in rows[0] and "資源回収" in rows[0] and "実施" in rows[0], rows
    assert "C" in rows[0] and "環境の保全" in rows[0]
    assert await run(lambda: d.find_element(By.ID, "district").text) == "杉下小学校区"
    totals = await run(lambda: d.find_element(By.ID, "totals").get_attribute("textContent"))
    assert "2PT" in totals and "60kg-CO2" in totals and "3h" in totals and "300kcal" in totals, totals
    avg = await run(lambda: d.find_element(By.ID, "avg-district").get_attribute("textContent"))
    assert "杉下小学校区・2人" in avg and "1.5PT" in avg and "45kg-CO2" in avg, avg
    assert "共感（—）" in page["text"]
    # On a phone the table is a list of cards: nothing scrolls sideways, every point column is in sight, and the
    # totals are a chart too (the person beside the district's and the town's averages).
    inner = await run(lambda: d.execute_script(
        "const b = document.getElementById('notebook'); return [b.scrollWidth, b.clientWidth];"))
    assert inner[0] <= inner[1], inner
    right = await run(lambda: d.execute_script(
        "return document.querySelector('#notebook tr.entry td.n').getBoundingClientRect().right - innerWidth"))
    assert right <= 0, right
    bars = await run(lambda: d.execute_script("return document.querySelectorAll('svg.chart rect.bar').length"))
    assert bars >= 3, bars  # あなた, 地区平均, 地域全体の平均
    csv_head = await run(lambda: d.execute_async_script(
        "const done = arguments[0]; fetch('/notebook/export.csv').then(r => r.arrayBuffer())"
        ".then(b => done(Array.from(new Uint8Array(b).slice(0, 12))));"))
    assert csv_head[:3] == [0xEF, 0xBB, 0xBF] and bytes(csv_head[3:]).decode() == "実施日", csv_head
    pdf_head = await run(lambda: d.execute_async_script(
        "const done = arguments[0]; fetch('/notebook/export.pdf').then(r => r.arrayBuffer())"
        ".then(b => done(Array.from(new Uint8Array(b).slice(0, 8))));"))
    assert bytes(pdf_head) == b"%PDF-1.4"

    page = await open_page(d, f"{base}/staff/figures")  # a citizen: 403
    assert "権限がありません" in page["text"] and "月別の推移" not in page["text"]

    page = await log_in(d, base, "suzuki", "/staff/figures", via_logout=True)
    assert page["overflow"] <= 0 and "イベント別の発行状況" in page["text"] and "地区別" in page["text"], page
    charts = await run(lambda: d.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart')).map(s => [s.closest('section').id,"
        " s.querySelectorAll('rect.bar').length, s.getBoundingClientRect().width <= window.innerWidth]);"))
    # Districts: 杉下小学校区, and 地区不明 for suzuki (staff, no district given).
    # Events: shigen and shigen-2 (Hanako's second day)
    # Usage (利用状況, gateway/portal/open_data.py): registered people and card members (this node runs no sns).
    assert {c[0]: c[1] for c in charts} == {"usage": 2, "events": 2, "months": 1, "districts": 2, "fields": 1}, charts
    assert all(c[2] for c in charts)
    district_row = await run(lambda: d.find_element(By.CSS_SELECTOR, "#districts tbody tr").text)
    assert district_row.split()[:5] == ["杉下小学校区", "2", "2", "3", "3"], district_row
    csv_head = await run(lambda: d.execute_async_script(
        "const done = arguments[0]; fetch('/staff/figures/events.csv').then(r => r.arrayBuffer())"
        ".then(b => done(Array.from(new Uint8Array(b).slice(0, 3))));"))
    assert csv_head == [0xEF, 0xBB, 0xBF]
