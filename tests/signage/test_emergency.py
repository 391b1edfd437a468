"""Emergency broadcast: pushed to the screens at once, in their manifests until cleared; CAP 1.2 alerts filtered
by severity and area, a Cancel clearing what it references."""

from __future__ import annotations

import asyncio

import pytest

from tests.signage.helpers import CLERK, HANAKO, NODE, Node, cap
from towntip.kernel import errors
from towntip.kernel.contracts import signage as c


async def test_an_emergency_takes_over_at_once_and_stays_until_cleared(node: Node) -> None:
    for name, group in (("hall-1f", "市役所"), ("kominkan-1", "公民館")):
        await node.call(c.EP_SCREEN_REGISTER, c.ScreenRegister(actor=CLERK, name=name, groups=(group,)))
    tv = await node.screen("kominkan-1")
    heard: asyncio.Queue[c.Emergency] = asyncio.Queue()

    async def on_push(msg) -> None:
        await heard.put(c.Emergency.model_validate_json(msg.data))

    await tv.nc.subscribe(c.push_emergency(NODE), cb=on_push)
    await tv.nc.flush()
    try:
        sent = await node.call(
            c.EP_EMERGENCY_SEND,
            c.EmergencySend(
                actor=CLERK, title="避難所開設", body="中央公民館を避難所として開設しました。", groups=("公民館",)
            ),
        )
        pushed = await asyncio.wait_for(heard.get(), 2)
        assert pushed.id == sent["id"] and not pushed.cleared and pushed.groups == ("公民館",)
        assert (await tv.sync()).emergency.id == sent["id"]
        hall = await node.screen("hall-1f")
        assert (await hall.sync()).emergency is None  # another group's screen keeps its schedule
        await hall.nc.close()

        await node.call(c.EP_EMERGENCY_CLEAR, c.EmergencyAction(actor=CLERK, id=sent["id"]))
        assert (await asyncio.wait_for(heard.get(), 2)).cleared
        assert (await tv.sync()).emergency is None
        with pytest.raises(errors.ServiceError) as again:
            await node.call(c.EP_EMERGENCY_CLEAR, c.EmergencyAction(actor=CLERK, id=sent["id"]))
        assert again.value.error_code == c.EMERGENCY_CLEARED.code
        with pytest.raises(errors.ServiceError) as resident:
            await node.call(c.EP_EMERGENCY_SEND, c.EmergencySend(actor=HANAKO, title="x", body="y"))
        assert resident.value.error_code == c.STAFF_ONLY.code
    finally:
        await tv.nc.close()


async def test_cap_alerts_are_filtered_by_severity_and_area_and_cancelled(node: Node) -> None:
    def ingest(xml: str, **kw) -> c.CapIngest:
        return c.CapIngest(actor=CLERK, xml=xml, areas=("11",), **kw)  # Saitama's codes start with 11

    shown = await node.call(c.EP_CAP_INGEST, ingest(cap("1")))
    assert shown["why"] == "shown" and shown["emergency"]["title"] == "大雨警報"  # the Japanese info block
    assert (await node.call(c.EP_CAP_INGEST, ingest(cap("1"))))["why"] == "already_taken"
    assert (await node.call(c.EP_CAP_INGEST, ingest(cap("2", severity="Minor"))))["why"] == "below_severity"
    assert (await node.call(c.EP_CAP_INGEST, ingest(cap("3", area="13104"))))["why"] == "outside_area"
    ref = "jma@example.jp,JMA-1,2026-12-07T10:20:00+09:00"
    cancelled = await node.call(c.EP_CAP_INGEST, ingest(cap("4", kind="Cancel", refs=ref)))
    assert cancelled["why"] == "cleared" and cancelled["emergency"]["cleared"]
    listed = await node.call(c.EP_EMERGENCY_LIST, c.EmergencyListQuery(actor=CLERK))
    assert listed["active"] == [] and [e["source"] for e in listed["recent"]] == ["cap"]

    bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><x>&b;</x>'
    for bad in (bomb, "<alert>not cap</alert>", "not xml"):
        with pytest.raises(errors.ServiceError) as refused:
            await node.call(c.EP_CAP_INGEST, ingest(bad))
        assert refused.value.error_code == c.CAP_INVALID.code
