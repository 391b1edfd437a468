"""GET /metrics on a node in-process (identity, sns, projects on a real nats-server, the gateway app): the operator's
admin token only, every expected service's metrics labelled with its name, one valid text exposition."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.test_api_generated import Node, node  # noqa: F401 - the fixture
from tests.support.api_node import ADMIN_TOKEN

EXPECTED = ("identity", "sns", "projects")


def parse(text: str) -> dict[str, list]:
    """name -> samples, by prometheus_client's own parser; a family named twice would make it two families."""
    families = list(text_string_to_metric_families(text))
    names = Counter(f.name for f in families)
    assert [n for n, k in names.items() if k > 1] == [], "a family appears twice: not one valid exposition"
    return {f.name: f.samples for f in families}


async def test_metrics_are_the_operators_only(node: Node) -> None:  # noqa: F811
    async with node.client() as anyone, node.client("hanako") as hanako, node.client("taro") as staff:
        r = await anyone.get("/metrics")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
        assert (await hanako.get("/metrics")).status_code == 403
        assert (await staff.get("/metrics")).status_code == 403  # a staff member is a person, not the operator
        anyone.headers["Authorization"] = "Bearer " + ADMIN_TOKEN[:-1] + "x"
        assert (await anyone.get("/metrics")).status_code == 403
        assert "towntip_" not in r.text


async def test_every_service_answers_in_one_valid_exposition(node: Node) -> None:  # noqa: F811
    async with node.client() as anyone, node.client("admin") as admin:
        assert (await anyone.get("/api/v1/communities")).status_code == 200
        assert (await anyone.get("/api/v1/communities", params={"nonsense": "1"})).status_code == 422
        assert (await anyone.get("/api/v1/themes")).status_code == 200  # the projects service's
        r = await admin.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = parse(r.text)

    up = {s.labels["service"]: s.value for s in found["towntip_up"]}
    assert up == {"gateway": 1, **{s: 1 for s in EXPECTED}}
    served = {s.labels["service"] for s in found["towntip_endpoint_requests"]}
    assert set(EXPECTED) <= served  # each answered requests (identity: tokens and people while the node was set up)
    listed = [s for s in found["towntip_endpoint_requests"]
              if s.labels["service"] == "sns" and s.labels["outcome"] == "ok" and s.name.endswith("_total")]
    assert sum(s.value for s in listed) >= 1
    http = {(s.labels["route"], s.labels["status"]): s.value for s in found["towntip_http_requests"]
            if s.name.endswith("_total") and s.labels["service"] == "gateway"}
    assert http[("/api/v1/communities", "200")] >= 1 and http[("/api/v1/communities", "422")] >= 1
    # every series says whose it is; processes' own metrics are there for each
    assert all("service" in s.labels for samples in found.values() for s in samples)
    rss = {s.labels["service"] for s in found["process_resident_memory_bytes"]}
    assert rss == {"gateway", *EXPECTED}


async def test_a_service_that_does_not_answer_is_down_and_the_rest_still_shows(node: Node) -> None:  # noqa: F811
    app = node.api.app
    app.state.settings = app.state.settings.model_copy(update={"services": "identity,sns,projects,bookings"})
    async with node.client("admin") as admin:
        r = await admin.get("/metrics")
    assert r.status_code == 200, r.text
    found = parse(r.text)
    up = {s.labels["service"]: s.value for s in found["towntip_up"]}
    assert up["bookings"] == 0 and up["sns"] == 1
    assert "bookings" not in {s.labels["service"] for s in found["towntip_endpoint_requests"]}
