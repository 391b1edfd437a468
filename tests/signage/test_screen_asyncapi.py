"""The screens' protocol is in the node's AsyncAPI document (GET /asyncapi.json): every subject a player speaks on
or hears, each message's schema from the protocol's models, and every reference in the document resolves."""

from __future__ import annotations

from typing import Any

from gateway.asyncapi import node_document
from towntip.kernel.asyncapi import addresses
from towntip.kernel.contracts import signage as c

NODE = "tsuru"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref" and isinstance(v, str)] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    here: Any = doc
    for part in ref[2:].split("/"):
        assert part in here, f"{ref}: no {part!r}"
        here = here[part]
    return here


def test_the_screen_protocol_is_documented_and_every_reference_resolves() -> None:
    doc = node_document(NODE, "test")
    documented = addresses(doc)
    screen = "{screen}"
    assert {
        c.sync_subject(NODE, screen),
        c.content_subject(NODE, screen),
        c.status_subject(NODE, screen),
        c.plays_subject(NODE, screen),
        c.push_changed(NODE),
        c.push_emergency(NODE),
    } <= documented
    for ref in _refs(doc):
        _resolve(doc, ref)

    sync = doc["operations"]["signage.screen.sync"]
    assert sync["action"] == "receive" and len(sync["reply"]["messages"]) == 2
    reply = _resolve(doc, doc["components"]["messages"]["signage.SyncReply"]["payload"]["$ref"])
    assert {"version", "screen", "node_time"} <= set(reply["required"])
    play = doc["components"]["messages"]["signage.Play"]
    assert "Nats-Msg-Id" in play["headers"]["properties"]
    assert doc["operations"]["signage.push.emergency"]["action"] == "send"
    # The staff's endpoints for data slides come from their table, like every endpoint.
    assert doc["channels"]["svc.signage.slides.create"]["x-http"] == "POST /api/v1/signage/slides"
    assert "signage.slide_facility" in {
        r["code"] for r in doc["components"]["messages"]["svc.signage.slides.create.refusal"]["x-refusals"]
    }
