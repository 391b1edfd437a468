"""The HTTP API agrees with its OpenAPI document.

First the three mismatches a third-party client found, each against the gateway app on a real nats-server with a
points service made with nats.micro (tests/gateway/test_gateway.py): `true` taken for an integer, a name of white space
only refused with a message its schema contradicted, a 405 whose Allow header left out PUT. Then Schemathesis over
the whole API of a real node (`towntip node up`: nats-server, every service, the gateway over HTTP), with a bounded
number of examples: no server error, every status, content type, header and body as documented, invalid data
refused and valid data accepted.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.api.types import NOT_BLANK
from tests.gateway import test_gateway
from tests.gateway.test_gateway import STAFF, FakePoints, assert_problem
from tests.node.test_supervisor import finish, start_node

client = test_gateway.client  # the gateway app on a real nats-server (staff token STAFF)
points = test_gateway.points  # a points service made with nats.micro, which notes what it was asked

# Per operation; Schemathesis runs its coverage, fuzzing and stateful phases. With the bookings' endpoints the API has
# about 100 operations: 12 examples each took 212 s of a 240 s limit in a clean-clone CI run on 2 cores; with the
# notices' and signage's it has about 130, and 6 keep every operation and every phase within the limit.
MAX_EXAMPLES = 6
SCHEMATHESIS_CONFIG = f"""
seed = 1
[generation]
max-examples = {MAX_EXAMPLES}

# 413 (documented: a body larger than the schema's maxLength) is a refusal too.
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

# The body is a signed query (application/jwt): that it verifies cannot be stated in a schema, so a schema-valid
# body that is no signed query is refused (400). Schemathesis also sends application/jwt bodies JSON-quoted (it
# counts the type as JSON), so none of its bodies is a query; the other checks still hold for every answer.
[[operations]]
include-path = "/federation/person-summary"
checks.positive_data_acceptance.enabled = false

# Bookings: whether a facility's blocks fit its hours, or a booking's times the facility's calendar and rules (not in
# the past, not on a closed day, on its slots, …), cannot be stated in a schema: a schema-valid request may be
# refused with 400 and a code (docs/bookings.md). Every other status still counts.
[[operations]]
include-path-regex = "^/api/v1/(facilities|booking|lottery|group|waitlist|offers|series)"
checks.positive_data_acceptance.expected-statuses = ["2XX", 400, 401, 403, 404, 409, 429]

# Collected feeds, the calendar and CAP alerts: whether a URL's host resolves to a public address, a category is one
# of the grid's, a date is after 2000, or a posted CAP document is XML of CAP 1.2, cannot be stated in a schema:
# refused with 400 or 422 and a code (docs/notices.md, docs/signage.md).
[[operations]]
include-path-regex = "^/api/v1/(feeds|feed-rules|feed-items|calendar-entries|signage/emergency/cap)"
checks.positive_data_acceptance.expected-statuses = ["2XX", 400, 401, 403, 404, 409, 422, 429]
"""


async def test_an_integer_is_a_json_number_not_true_or_a_string(client: httpx.AsyncClient, points: FakePoints) -> None:
    for value in (True, False, "5", None, 2.5):
        r = await client.put("/api/v1/points/events/summer", headers=STAFF,
                             json={"name": "夏祭り", "participant_points": value})
        body = assert_problem(r, 422)
        assert [e["loc"] for e in body["errors"]] == [["body", "participant_points"]], (value, body)
    assert points.seen == []  # nothing reached the service
    # a number with no fractional part is an integer in JSON Schema
    r = await client.put("/api/v1/points/events/summer", headers=STAFF,
                         json={"name": "夏祭り", "participant_points": 3.0, "volunteer_points": 7})
    assert r.status_code == 200, r.text
    assert (r.json()["participant_points"], r.json()["volunteer_points"]) == (3, 7)


async def test_a_name_is_refused_exactly_when_its_schema_says_so(client: httpx.AsyncClient,
                                                                 points: FakePoints) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["EventRule"]["properties"]["name"]
    assert schema["pattern"] == NOT_BLANK and schema["minLength"] == 1 and schema["maxLength"] == 200
    pattern = re.compile(schema["pattern"])
    names = ["\r", " ", "\t\n", "\u3000", "\x85", "\u2028", "\x1c", "\ufeff", " 夏祭り ", "a", "x" * 200, "x" * 201]
    for name in names:
        documented = 1 <= len(name) <= 200 and pattern.search(name) is not None
        r = await client.put("/api/v1/points/events/summer", headers=STAFF, json={"name": name})
        assert (r.status_code == 200) == documented, (name, r.text)
        if not documented and len(name) <= 200:
            assert "not white space" in r.json()["detail"], r.text
    assert [body["name"] for name, body, _ in points.seen] == ["\x1c", "\ufeff", "夏祭り", "a", "x" * 200]


async def test_a_405_lists_every_method_served_at_the_path(client: httpx.AsyncClient) -> None:
    for method in ("DELETE", "POST", "PATCH", "OPTIONS"):
        r = await client.request(method, "/api/v1/points/events/summer", headers=STAFF)
        assert_problem(r, 405)
        assert r.headers["allow"] == "GET, PUT", method
    r = await client.delete("/api/v1/points/events", headers=STAFF)
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    r = await client.put("/login")  # a portal page: the same rule
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


@pytest.mark.timeout(780)  # a whole node's start and the run, on a busy machine
@pytest.mark.xdist_group("whole-node")
async def test_schemathesis_finds_no_mismatch(tmp_path: Path) -> None:
    node = start_node(tmp_path)
    try:
        await node.wait_health(200, timeout=180)  # six processes starting on a busy 2-core machine
        token = (node.data_dir / "secrets" / "admin-token").read_text().strip()
        config = tmp_path / "schemathesis.toml"
        config.write_text(SCHEMATHESIS_CONFIG)
        started = time.monotonic()
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run",
             f"{node.base}/openapi.json", "--header", f"Authorization: Bearer {token}", "--workers", "1",
             "--request-timeout", "10"],
            capture_output=True, text=True, timeout=540, cwd=tmp_path)
        took = time.monotonic() - started
        print(f"schemathesis: {took:.1f} s")  # shown with -s; the report when it fails
        summary = run.stdout[run.stdout.find("=== SUMMARY"):]
        assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-3000:]
        assert re.search(r"Tested: *\d+", summary) and re.search(r"\d+ passed", summary), summary
    finally:
        finish(node)
