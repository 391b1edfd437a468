"""The points service's refusals: each a `Refusal` declared in the contracts, listed in its domain's table, with its
stable code on the bus (header Towntip-Refusal-Code), and words for the pages in Japanese and English."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import nats
import pytest

from gateway.words.event_signups import WORDS as EVENT_WORDS
from gateway.words.open_data import WORDS as OPEN_DATA_WORDS
from gateway.words.points import WORDS as POINTS_WORDS
from services.points.handlers import DOMAINS
from tests.support.bus import NODE, call
from towntip.kernel import errors
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import notebook as nc_
from towntip.kernel.contracts import points as pc

ROOT = Path(__file__).resolve().parents[2]
WORDS = POINTS_WORDS | {k: v for k, v in EVENT_WORDS.items()  # events' sign-up, and the staff page's venue check
                        if k.startswith("signup.") or k == "event.venue_booking"}
WORDS |= OPEN_DATA_WORDS  # the usage figures (shared by identity, points and sns)
CONTRACTS = ("points", "ledger", "coupons", "courses", "donations", "notebook", "payments", "event_signups",
             "open_data")
CITIZEN = {"user_id": "user-0001", "global_handle": "hanako@testnode", "display_name": "山田 花子", "roles": []}


def declared() -> dict[str, errors.Refusal]:
    out = {}
    for name in CONTRACTS:
        module = importlib.import_module(f"towntip.kernel.contracts.{name}")
        out |= {v.code: v for v in vars(module).values() if isinstance(v, errors.Refusal)}
    return out


def test_the_service_raises_only_declared_refusals() -> None:
    """No `errors.NotFound("...")` and the like in services/points: every refusal is a constant of the contracts."""
    found = []
    for path in sorted((ROOT / "services" / "points").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "errors"
                    and node.func.attr[:1].isupper()):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} errors.{node.func.attr}")
    assert found == []


def test_every_points_refusal_is_listed_and_has_words() -> None:
    codes = declared()
    listed = {r.code for d in DOMAINS for op in d.ops for r in d.refusals_of(op)}
    assert listed <= codes.keys()
    # The refusals of the tap path answer terminals, not endpoints: they need words all the same.
    # event.venue_booking is the staff page's: the gateway checks an event's venue with the bookings service.
    assert sorted(codes.keys() - listed) == ["card.already_registered", "coupon.card_not_registered",
                                             "donation.card_not_donors", "event.venue_booking", "tap.id_reused",
                                             "tap.mode_unsupported", "tap.repeat_of_refused"]
    assert sorted(WORDS) == sorted(codes)
    for code, (ja, en) in WORDS.items():
        assert any("\u3040" <= ch <= "\u9fff" for ch in ja), code  # kana or kanji
        assert en.strip() and en.isascii(), code


@pytest.mark.parametrize("endpoint, payload, code, status", [
    (pc.EP_EVENT_GET, {"code": "no-such-event"}, "event.not_found", 404),
    (cc.EP_COUPON_BUY, {"person": "user-0001", "type_code": "nothing-here", "key": "form-0000000000000001"},
     "coupon.not_offered", 404),
    (dc.EP_PROJECT_GET, {"code": "no-such-project"}, "donation.project_not_found", 404),
    (nc_.EP_FIGURES, {"actor": CITIZEN}, "figures.staff_only", 403),
])
async def test_a_refusal_carries_its_code_on_the_bus(nc: nats.NATS, points_service, endpoint: str,
                                                     payload: dict, code: str, status: int) -> None:
    with pytest.raises(errors.ServiceError) as refused:
        await call(nc, endpoint, payload)
    assert (refused.value.error_code, refused.value.status) == (code, status)
    raw = await nc.request(subjects.svc(NODE, "points", endpoint), json.dumps(payload).encode(), timeout=10)
    assert raw.headers[subjects.HDR_REFUSAL_CODE] == code
    assert raw.headers[subjects.HDR_SERVICE_ERROR_CODE] == str(status)
    assert json.loads(raw.data)["code"] == code
