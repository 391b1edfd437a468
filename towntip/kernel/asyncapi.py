"""An AsyncAPI 3.0 document of a node's bus, generated from the contracts' models: every service's event stream
(evt.<node>.<service>.<event>, one message per event model) and every request/reply endpoint
(svc.<node>.<service>.<name>, its request, its answer and the refusals it may answer).

The kernel only builds the document from what it is given; the gateway (gateway/asyncapi.py) collects each
service's endpoint declarations and serves it at GET /asyncapi.json beside the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from towntip.kernel.bus import subjects
from towntip.kernel.bus.endpoints import Endpoint
from towntip.kernel.bus.envelope import Envelope, event_token
from towntip.kernel.contracts.events import registered
from towntip.kernel.domain import GATEWAY
from towntip.kernel.metrics import CONTENT_TYPE, EP_METRICS

NODE_PARAM = "{node}"


@dataclass(frozen=True)
class ServiceDoc:
    """What one service offers on the bus: its endpoints, and the events of its stream whose payload models are
    not (yet) registered `Event`s ({type name: payload model})."""

    service: str
    endpoints: tuple[Endpoint, ...]
    events: Mapping[str, type[BaseModel]] | None = None
    description: str = ""


def _schemas(service: str, models: Iterable[type[BaseModel]], mode: JsonSchemaMode) -> tuple[dict[type, dict[str, Any]],
                                                                                  dict[str, Any]]:
    """JSON schemas of the models, their shared definitions named `<service>.<Model>` (two services may each have
    a `Done`)."""
    unique = list(dict.fromkeys(models))
    if not unique:
        return {}, {}
    keys, top = models_json_schema([(m, mode) for m in unique],
                                   ref_template=f"#/components/schemas/{service}.{{model}}")
    defs = {f"{service}.{k}": v for k, v in top.get("$defs", {}).items()}
    return {m: keys[(m, mode)] for m in unique}, defs


def document(services: Iterable[ServiceDoc], *, node: str | None = None, title: str = "TownTip Commons node bus",
             version: str = "1") -> dict[str, Any]:
    """The AsyncAPI 3.0 document. `node`: the node's id in every address; None: a `{node}` parameter."""
    where = node or NODE_PARAM
    params = {} if node else {"node": {"description": "the node's id (a municipality), in every subject"}}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    envelope_schema = Envelope.model_json_schema()
    envelope_schema.pop("title", None)
    services = list(services)
    events_by_service: dict[str, dict[str, type[BaseModel]]] = {}
    for (svc, type_name), event_model in sorted(registered().items()):
        events_by_service.setdefault(svc, {})[type_name] = event_model
    for doc in services:
        events_by_service.setdefault(doc.service, {}).update(doc.events or {})

    for svc, events in sorted(events_by_service.items()):
        refs, defs = _schemas(svc, events.values(), "serialization")
        schemas.update(defs)
        for type_name, model in sorted(events.items()):
            token = event_token(type_name)
            msg_id = f"{svc}.{type_name}"
            payload = {**envelope_schema, "properties": {**envelope_schema["properties"], "data": refs[model]}}
            payload["properties"]["type"] = {"const": type_name, "type": "string"}
            payload["properties"]["version"] = {"const": getattr(model, "VERSION", 1), "type": "integer"}
            payload["properties"]["service"] = {"const": svc, "type": "string"}
            messages[msg_id] = {"name": type_name, "title": type_name, "contentType": "application/json",
                                "summary": (model.__doc__ or "").strip().split("\n")[0] or type_name,
                                "payload": payload,
                                "headers": {"type": "object", "properties": {
                                    subjects.HDR_MSG_ID: {"type": "string", "description": "the event's id"}}}}
            chan = f"evt.{svc}.{token}"
            channels[chan] = {"address": subjects.evt(where, svc, token),
                              "title": f"{type_name} on {subjects.evt_stream(where, svc)}",
                              "messages": {type_name: {"$ref": f"#/components/messages/{msg_id}"}},
                              **({"parameters": params} if params else {})}
            operations[f"{svc}.announce.{type_name}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{chan}"},
                "summary": f"the {svc} service's outbox relay publishes {type_name}",
                "messages": [{"$ref": f"#/channels/{chan}/messages/{type_name}"}]}

    refusal_schema = {"type": "object", "required": ["code", "status", "reason"], "properties": {
        "code": {"type": "string", "description": "the refusal's stable machine-readable code"},
        "status": {"type": "integer", "description": "HTTP-like status, also in Nats-Service-Error-Code"},
        "reason": {"type": "string", "description": "English, for people; pages translate the code"}}}
    schemas["Refusal"] = refusal_schema
    for doc in services:
        svc = doc.service
        req_refs, req_defs = _schemas(svc, [e.request_model for e in doc.endpoints if e.request_model], "validation")
        resp_refs, resp_defs = _schemas(svc, [e.response_model for e in doc.endpoints if e.response_model],
                                        "serialization")
        schemas.update(req_defs)
        schemas.update(resp_defs)
        for ep in doc.endpoints:
            chan = f"svc.{svc}.{ep.name}"
            req_id, resp_id, err_id = f"{chan}.request", f"{chan}.reply", f"{chan}.refusal"
            messages[req_id] = {"name": f"{ep.name} request", "contentType": "application/json",
                                "payload": req_refs[ep.request_model] if ep.request_model else
                                {"type": "object", "description": "an empty object"}}
            messages[resp_id] = {"name": f"{ep.name} reply", "contentType": "application/json",
                                 "payload": resp_refs[ep.response_model] if ep.response_model else {}}
            codes = [r.code for r in ep.refusals]
            messages[err_id] = {
                "name": f"{ep.name} refusal", "contentType": "application/json",
                "summary": "an error reply: Nats-Service-Error-Code (status), Nats-Service-Error (reason), "
                           f"{subjects.HDR_REFUSAL_CODE} (code)",
                "payload": {"allOf": [{"$ref": "#/components/schemas/Refusal"}, {"properties": {"code": {
                    "type": "string", **({"enum": [*codes, "request.invalid", "service.internal",
                                                   "service.unavailable"]} if codes else {})}}}]},
                **({"x-refusals": [{"code": r.code, "status": r.status, "description": r.doc}
                                   for r in ep.refusals]} if ep.refusals else {})}
            channels[chan] = {
                "address": subjects.svc(where, svc, ep.name),
                "title": f"{svc} {ep.name}",
                "messages": {"request": {"$ref": f"#/components/messages/{req_id}"},
                             "reply": {"$ref": f"#/components/messages/{resp_id}"},
                             "refusal": {"$ref": f"#/components/messages/{err_id}"}},
                **({"parameters": params} if params else {}),
                **({"x-role": ep.role} if ep.role else {}),
                **({"x-domain": ep.domain} if ep.domain else {}),
                **({"x-http": f"{ep.http.method} /api/v1{ep.http.path}"} if ep.http else {}),
            }
            operations[f"{svc}.{ep.name}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{chan}"},
                "summary": f"request/reply (nats.micro, queue group {svc})",
                "messages": [{"$ref": f"#/channels/{chan}/messages/request"}],
                "reply": {"channel": {"$ref": f"#/channels/{chan}"},
                          "messages": [{"$ref": f"#/channels/{chan}/messages/reply"},
                                       {"$ref": f"#/channels/{chan}/messages/refusal"}]},
            }
        # Every service also answers its metrics (kernel/metrics.py; added by start_service, not by a table).
        chan, msg_id = f"svc.{svc}.{EP_METRICS}", f"svc.{svc}.{EP_METRICS}.reply"
        messages[msg_id] = {"name": "metrics", "contentType": CONTENT_TYPE,
                            "summary": "the service's Prometheus metrics in the text exposition format",
                            "payload": {"type": "string"}}
        channels[chan] = {"address": subjects.svc(where, svc, EP_METRICS), "title": f"{svc} metrics",
                          "messages": {"reply": {"$ref": f"#/components/messages/{msg_id}"}},
                          **({"parameters": params} if params else {}), "x-role": GATEWAY}
        operations[f"{svc}.{EP_METRICS}"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{chan}"},
            "summary": "request (an empty body) / reply: the gateway's GET /metrics gathers these",
            "reply": {"channel": {"$ref": f"#/channels/{chan}"},
                      "messages": [{"$ref": f"#/channels/{chan}/messages/reply"}]}}

    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": version,
                 "description": "Events are JetStream facts published by each service's outbox relay "
                                "(Nats-Msg-Id = the event's id); endpoints are nats.micro request/reply."},
        "defaultContentType": "application/json",
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": messages, "schemas": schemas},
    }


def addresses(doc: Mapping[str, Any]) -> set[str]:
    """Every channel's address in a document (for checks: is this subject documented?)."""
    return {c["address"] for c in doc.get("channels", {}).values()}
