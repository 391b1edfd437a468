"""The node's source guard (towntip/node/source_guard.py): what a peer's consumer creation must be to pass.

The guard's place in the path (the hub maps a peer's creation onto it; real servers, sourcing through it, and the
refusals of deliver subjects of a peer's choice) is tested in tests/node/test_hub_accounts.py; here, each rule alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from towntip.node import source_guard
from towntip.node.source_guard import Refused, SourceGuard

A, B = "town-a", "town-b"
STREAM, FILTER = "EVT_TOWN_A_IDENTITY", f"evt.{A}.identity.>"


@dataclass
class FakeMsg:
    subject: str
    data: bytes
    headers: dict[str, str] | None = field(default_factory=lambda: {"Nats-Request-Info": json.dumps({"acc": B})})
    reply: str = "_R_.x"


def creation(stream: str = STREAM, name: str = "JS_SRC_1", filter_: str = FILTER, **config: Any) -> FakeMsg:
    body = {"stream_name": stream, "config": {"name": name, "deliver_subject": f"$JS.S.{B}.{A}.S.abc",
                                              "filter_subject": filter_, "ack_policy": "none", "direct": True,
                                              "flow_control": True, "idle_heartbeat": 1_000_000_000, **config}}
    return FakeMsg(f"fedsrc.{A}.CREATE.{stream}.{name}.{filter_}", json.dumps(body).encode())


def guard() -> SourceGuard:
    return SourceGuard(nc=None, node=A)  # type: ignore[arg-type]  # check() never touches the connection


def test_a_creation_as_sourcing_sends_it_passes_to_the_nodes_own_jetstream() -> None:
    assert guard().check(creation()) == (B, f"$JS.API.CONSUMER.CREATE.{STREAM}.JS_SRC_1.{FILTER}")
    projects = creation("EVT_TOWN_A_PROJECTS", filter_=f"evt.{A}.projects.>")
    assert guard().check(projects)[0] == B
    assert guard().check(creation(filter_subject=None, filter_subjects=[FILTER]))[0] == B


@pytest.mark.parametrize("msg, code, words", [
    (creation(deliver_subject="stolen.identity"), 403, "deliveries only on $JS.S.town-b.town-a."),
    (creation(deliver_subject=f"svc.{A}.identity.admin.user.add"), 403, "deliveries only on"),
    (creation(deliver_subject=f"$JS.S.town-c.{A}.S.abc"), 403, "deliveries only on"),  # another peer's
    (creation(deliver_subject=f"$JS.S.{B}.{A}."), 403, "deliveries only on"),
    (creation(deliver_subject=f"$JS.S.{B}.{A}.S.*"), 403, "deliveries only on"),
    (creation(deliver_subject=None), 403, "deliveries only on"),  # a pull consumer
    (creation("EVT_TOWN_A_POINTS", filter_=f"evt.{A}.points.>"), 403, "no peer may source"),
    (creation("EDGE_TOWN_A", filter_=f"edge.{A}.>"), 403, "no peer may source"),
    (creation("FED_TOWN_A_PROJECTS", filter_=f"evt.{A}.projects.>"), 403, "no peer may source"),
    (creation(filter_=">"), 403, "filtered on"),
    (creation(filter_subject=">"), 403, "filtered on evt.town-a.identity.> alone"),
    (creation(filter_subject=None, filter_subjects=[FILTER, f"evt.{A}.points.>"]), 403, "alone"),
    (creation(durable_name="keep"), 403, "no durable_name"),
    (creation(deliver_group="q"), 403, "no deliver_group"),
    (creation(ack_policy="explicit"), 403, "acknowledges nothing"),
    (FakeMsg(creation().subject.replace("JS_SRC_1", "other"), creation().data), 400, "another stream or consumer"),
    (FakeMsg(f"fedsrc.{A}.CREATE.{STREAM}.n.{FILTER}", b"not json"), 400, "not a consumer creation"),
    (FakeMsg(f"fedsrc.{A}.CREATE.{STREAM}.n.{FILTER}", b"{}"), 400, "not a consumer creation"),
    (FakeMsg(f"fedsrc.{A}.CREATE.{STREAM}.n.{FILTER}", b"x" * 5000), 400, "more than 4096 bytes"),
    (FakeMsg(f"fedsrc.{A}.CREATE.{STREAM}.n.{FILTER}", b"{}", headers=None), 403, "through the hub's accounts"),
    (FakeMsg(f"fedsrc.{A}.CREATE.{STREAM}.n.{FILTER}", b"{}", headers={"Nats-Request-Info": '{"acc": "X Y"}'}),
     403, "through the hub's accounts"),
    (FakeMsg(f"fedsrc.{A}.CREATE.{STREAM}.n.{FILTER}", b"{}", headers={"Nats-Request-Info": json.dumps({"acc": A})}),
     403, "does not source itself"),
])
def test_anything_else_is_refused_with_its_reason(msg: FakeMsg, code: int, words: str) -> None:
    with pytest.raises(Refused) as info:
        guard().check(msg)
    assert info.value.code == code and words in str(info.value), str(info.value)


def test_a_peer_creating_consumers_too_often_is_refused_others_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(source_guard.time, "monotonic", lambda: now[0])
    g = guard()
    for _ in range(source_guard.BURST):
        g._spend(B)
    with pytest.raises(Refused) as info:
        g._spend(B)
    assert info.value.code == 429
    g._spend("town-c")  # another peer has its own allowance
    now[0] += 1 / source_guard.RATE  # one more after the refill
    g._spend(B)
    with pytest.raises(Refused):
        g._spend(B)
