"""The signage screens' protocol in the AsyncAPI document (towntip/kernel/contracts/signage.py is its truth): the
subjects a player speaks on besides the staff's endpoints: its sync and content requests, its heartbeat, its plays
into JetStream, and the service's pushes. Their payload schemas come from the protocol's models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from towntip.kernel.bus import subjects
from towntip.kernel.contracts import signage as c

SCREEN_PARAM = "{screen}"
_P = "signage"  # the prefix of the channels', messages' and schemas' keys


def _schemas(models: list[tuple[type[BaseModel], JsonSchemaMode]]
             ) -> tuple[dict[type[BaseModel], Any], dict[str, Any]]:
    keys, top = models_json_schema(models, ref_template=f"#/components/schemas/{_P}.{{model}}")
    defs = {f"{_P}.{k}": v for k, v in top.get("$defs", {}).items()}
    return {m: keys[(m, mode)] for m, mode in models}, defs


def screen_protocol(node: str | None) -> dict[str, dict[str, Any]]:
    """{"channels", "operations", "messages", "schemas"} of the screen protocol, for `node` (None: a parameter)."""
    where = node or "{node}"
    refs, schemas = _schemas([(c.SyncRequest, "validation"), (c.SyncReply, "serialization"),
                              (c.ContentRequest, "validation"), (c.ScreenStatus, "validation"),
                              (c.Play, "validation"), (c.PushChanged, "serialization"),
                              (c.Emergency, "serialization"), (c.SlideBody, "serialization")])
    params: dict[str, Any] = {"screen": {"description": "the screen's name (its NATS user is scr-<screen>)"}}
    if node is None:
        params["node"] = {"description": "the node's id (a municipality), in every subject"}
    refusal = {"$ref": "#/components/schemas/Refusal"}
    messages: dict[str, Any] = {
        f"{_P}.SyncRequest": {"name": "SyncRequest", "contentType": "application/json", "payload": refs[c.SyncRequest]},
        f"{_P}.SyncReply": {"name": "SyncReply", "contentType": "application/json", "payload": refs[c.SyncReply],
                            "summary": "the screen's manifest; unchanged=true leaves out what it holds already"},
        f"{_P}.ContentRequest": {"name": "ContentRequest", "contentType": "application/json",
                                 "payload": refs[c.ContentRequest]},
        f"{_P}.Content": {"name": "Content", "contentType": "application/octet-stream",
                          "summary": f"the item's bytes from `offset`, at most {c.CHUNK_MAX}; a data slide's are a "
                                     f"SlideBody in JSON ({c.SLIDE_MIME})",
                          "payload": {"type": "string", "format": "binary"},
                          "x-slide-body": refs[c.SlideBody]},
        f"{_P}.ScreenRefusal": {"name": "ScreenRefusal", "contentType": "application/json", "payload": refusal,
                                "summary": "a refusal: Nats-Service-Error-Code, Nats-Service-Error, "
                                           f"{subjects.HDR_REFUSAL_CODE}"},
        f"{_P}.ScreenStatus": {"name": "ScreenStatus", "contentType": "application/json",
                               "payload": refs[c.ScreenStatus]},
        f"{_P}.Play": {"name": "Play", "contentType": "application/json", "payload": refs[c.Play],
                       "headers": {"type": "object", "properties": {
                           subjects.HDR_MSG_ID: {"type": "string", "description": "the play id (counted once)"}}}},
        f"{_P}.PushChanged": {"name": "PushChanged", "contentType": "application/json",
                              "payload": refs[c.PushChanged]},
        f"{_P}.Emergency": {"name": "Emergency", "contentType": "application/json", "payload": refs[c.Emergency]},
    }

    def msg(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/messages/{_P}.{name}"}

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def screen_channel(kind: str, title: str, sent: dict[str, Any], replies: dict[str, Any] | None) -> None:
        key = f"{_P}.screen.{kind}"
        channels[key] = {"address": c.screen_subject(where, SCREEN_PARAM, kind), "title": title,
                         "messages": {**sent, **(replies or {})}, "parameters": params}
        op: dict[str, Any] = {"action": "receive", "channel": {"$ref": f"#/channels/{key}"},
                              "summary": f"the signage service (queue group signage) takes a screen's {kind}",
                              "messages": [{"$ref": f"#/channels/{key}/messages/{n}"} for n in sent]}
        if replies:
            op["reply"] = {"channel": {"$ref": f"#/channels/{key}"},
                           "address": {"location": "$message.header#/reply",
                                       "description": "only the screen's own inbox _INBOX._scr.<screen>.…"},
                           "messages": [{"$ref": f"#/channels/{key}/messages/{n}"} for n in replies]}
        operations[key] = op

    screen_channel("sync", "a screen asks for its manifest", {"request": msg("SyncRequest")},
                   {"reply": msg("SyncReply"), "refusal": msg("ScreenRefusal")})
    screen_channel("content", "a screen fetches an item's bytes in chunks", {"request": msg("ContentRequest")},
                   {"reply": msg("Content"), "refusal": msg("ScreenRefusal")})
    screen_channel("status", f"a screen's heartbeat, every {c.HEARTBEAT_SECONDS:.0f} s (core NATS)",
                   {"status": msg("ScreenStatus")}, None)
    screen_channel("plays", f"proof of play, into JetStream {c.plays_stream(where)}", {"play": msg("Play")}, None)
    for kind, name, what in (("changed", "PushChanged", "sync now"), ("emergency", "Emergency", "緊急情報")):
        key = f"{_P}.push.{kind}"
        channels[key] = {"address": f"signage.{where}.push.{kind}", "title": f"the service to every screen: {what}",
                         "messages": {name: msg(name)},
                         **({"parameters": {"node": params["node"]}} if node is None else {})}
        operations[key] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"},
                           "summary": f"the signage service pushes {name} after a commit (core NATS)",
                           "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}]}
    return {"channels": channels, "operations": operations, "messages": messages, "schemas": schemas}
