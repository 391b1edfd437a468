"""GET /asyncapi.json: the node's bus as an AsyncAPI 3.0 document, generated from the contracts. Every subject in
use appears in it: every endpoint the services actually register (asked of nats.micro's $SRV.INFO), and
every event type the code announces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import nats

from gateway.app import create_app
from identity.app import IdentityService
from services.bookings.app import BookingsService
from services.notices.app import NoticesService
from services.points.app import PointsService
from services.projects.app import ProjectsService
from services.signage.app import SignageService
from services.sns.app import SnsService
from towntip.kernel.asyncapi import addresses
from towntip.kernel.bus import subjects
from towntip.kernel.contracts.events import registered
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import GatewaySettings, ServiceSettings

NODE = "apinode"
ROOT = Path(__file__).resolve().parents[2]

# Event types announced by name in the code rather than from a registered model: `Envelope(type="X"`,
# `_announce(node, "X"`, `_announce(session, node, "X"` (none left: every service announces from its models; kept so
# that one written by hand again still has to appear in the document).
_LITERAL = re.compile(r"""(?:Envelope\(type=|_announce\((?:session, )?node, )"([A-Z][A-Za-z]+)\"""")


async def _registered_subjects(nc: nats.NATS, expect: int) -> set[str]:
    """Every endpoint subject of every service answering $SRV.INFO."""
    found: dict[str, set[str]] = {}
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish("$SRV.INFO", b"", reply=inbox)
    try:
        while len(found) < expect:
            msg = await sub.next_msg(timeout=10)
            info = json.loads(msg.data)
            found[info["name"]] = {e["subject"] for e in info.get("endpoints") or []}
    finally:
        await sub.unsubscribe()
    return set().union(*found.values())


def _announced_types() -> set[tuple[str, str]]:
    out = {key for key in registered()}
    for path in [*ROOT.glob("services/*/*.py"), *ROOT.glob("services/*/*/*.py"), *ROOT.glob("identity/*.py")]:
        service = "identity" if path.parts[-2] == "identity" else path.relative_to(ROOT).parts[1]
        out |= {(service, t) for t in _LITERAL.findall(path.read_text())}
    return out


async def test_every_subject_in_use_is_in_the_asyncapi_document(nats_server, tmp_path) -> None:
    def settings(service: str) -> ServiceSettings:
        return ServiceSettings(service=service, node_id=NODE, nats_url=nats_server.url,
                               data_dir=str(tmp_path / service), public_url="http://apinode.test")

    services = [IdentityService(settings("identity"), smtp=SmtpSettings(enabled=False)),
                PointsService(settings("points")),
                ProjectsService(settings("projects"), smtp=SmtpSettings(enabled=False)),
                SnsService(settings("sns")), BookingsService(settings("bookings")), SignageService(settings("signage")),
                NoticesService(settings("notices"))]
    nc = await nats.connect(nats_server.url)
    try:
        for s in services:  # one after the other: alembic keeps its running migration in module globals
            await s.start()
        in_use = await _registered_subjects(nc, expect=len(services))
        app = create_app(GatewaySettings(node_id=NODE, nats_url=nats_server.url, admin_token="t" * 32,
                                         data_dir=str(tmp_path / "gateway")))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as c:
                r = await c.get("/asyncapi.json")
    finally:
        await nc.close()
        for s in services:
            await s.stop()
    assert r.status_code == 200
    doc = r.json()
    assert doc["asyncapi"].startswith("3.")
    documented = addresses(doc)
    assert len(in_use) > 100
    assert in_use - documented == set(), "endpoints missing from /asyncapi.json"
    events = {subjects.evt(NODE, svc, re.sub(r"(?<!^)(?=[A-Z])", "_", t).lower()) for svc, t in _announced_types()}
    assert {"evt.apinode.identity.user_deleted", "evt.apinode.points.tap_recorded",
            "evt.apinode.points.entry_posted", "evt.apinode.sns.post_published",
            "evt.apinode.bookings.booking_confirmed", "evt.apinode.notices.notice_published",
            "evt.apinode.notices.feed_item_collected",
            "evt.apinode.publicnotices.public_notice_published"} <= events
    assert events - documented == set(), "events missing from /asyncapi.json"
    # Payloads come from the models: a refusal's codes, an event's fields.
    chan = doc["channels"]["svc.projects.themes.call.open"]
    assert chan["address"] == "svc.apinode.projects.themes.call.open"
    refusal = doc["components"]["messages"]["svc.projects.themes.call.open.refusal"]
    assert "theme.requirements_missing" in {x["code"] for x in refusal["x-refusals"]}
    deleted = doc["components"]["messages"]["identity.UserDeleted"]["payload"]["properties"]["data"]
    assert deleted == {"$ref": "#/components/schemas/identity.UserDeleted"}
    assert set(doc["components"]["schemas"]["identity.UserDeleted"]["required"]) == {"global_handle", "home_node"}
