"""`towntip demo seed`: the seed's event table into the points service, idempotent, with clear failures."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import nats
import pytest
from nats.micro import add_service
from nats.micro.request import Request

from tests.edge.test_cli_edge import cli
from tests.edge.test_edge_agent import NODE
from towntip.cli.demo import find_seed_csv, seed_events
from towntip.kernel.bus import subjects
from towntip.kernel.contracts.points import EP_EVENT_PUT, SERVICE, EventIn


async def events_service(nc: nats.NATS, store: dict[str, EventIn], puts: list[str]):
    async def handle(req: Request) -> None:
        ev = EventIn.model_validate_json(req.data)
        store[ev.code] = ev
        puts.append(ev.code)
        answer = {**ev.model_dump(mode="json"), "taps": 0, "points_issued": 0, "people": 0}  # dates as JSON
        await req.respond(json.dumps(answer).encode())

    svc = await add_service(nc, name="points-test", version="0.0.1")
    await svc.add_endpoint(name="events-put", subject=subjects.svc(NODE, SERVICE, EP_EVENT_PUT), handler=handle)
    return svc


def test_the_seed_table_is_found_and_read() -> None:
    path = find_seed_csv()
    assert path is not None and path.name == "seed_event_points.csv"
    events = seed_events(path)
    assert len(events) == 26
    assert events[0].code == "seed-01" and events[0].name == "菜の花ウォーク・菜の花まつり"
    assert events[-1].code == "seed-26"
    assert [e.code for e in events if e.name == "キャンドルナイト"] == ["seed-04", "seed-23"]
    assert {(e.participant_points, e.volunteer_points) for e in events} == {(1, 5)}
    # Each with a date (Saturdays, one a week from the first after today, 10:00-12:00 JST), a venue and seats.
    dated = seed_events(path, today=date(2026, 12, 7))  # a Monday
    assert [e.starts_at.isoformat() for e in dated[:2]] == ["2026-12-12T10:00:00+09:00", "2026-12-19T10:00:00+09:00"]
    assert all(e.ends_at - e.starts_at == timedelta(hours=2) for e in dated)
    festival = next(e for e in dated if e.name == "大橋公民館まつり")
    assert (festival.venue_facility, festival.venue_name) == ("ohashi-kominkan-hall", "大橋公民館 ホール")
    assert all(e.capacity and e.venue_facility for e in dated)


async def test_seed_puts_every_event_and_reseeding_updates(nc: nats.NATS, nats_server, capsys) -> None:
    store: dict[str, EventIn] = {}
    puts: list[str] = []
    svc = await events_service(nc, store, puts)
    args = ("demo", "seed", "--nats-url", nats_server.url, "--node", NODE)
    assert await cli(*args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "seed-01\t菜の花ウォーク・菜の花まつり"
    assert out[-1].startswith("26 events put on svc.testnode.points.events.put")
    assert await cli(*args) == 0
    assert len(store) == 26 and len(puts) == 52
    assert puts[:26] == puts[26:]
    await svc.stop()


async def test_seed_failures_are_clear(nats_server, tmp_path: Path, capsys) -> None:
    assert await cli("demo", "seed", "--nats-url", nats_server.url, "--csv", str(tmp_path / "none.csv")) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("name,points\nx,1\n", encoding="utf-8")
    assert await cli("demo", "seed", "--nats-url", nats_server.url, "--csv", str(bad)) == 2
    assert "'event' column" in capsys.readouterr().err
    code = await cli("demo", "seed", "--nats-url", nats_server.url, "--node", NODE)
    err = capsys.readouterr().err
    assert code == 1 and "no service answers" in err


def test_packaged_reference_data_matches_the_shared_copy():
    """towntip/data is our copy of the team's shared/data: the same bytes wherever that folder is reachable."""
    import towntip

    packaged = Path(towntip.__file__).resolve().parent / "data"
    shared = Path(towntip.__file__).resolve().parents[2] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip(f"no shared/data beside the checkout ({shared}) to compare with")
    names = sorted(p.name for p in shared.glob("*.csv"))
    assert names == sorted(p.name for p in packaged.glob("*.csv"))
    for name in names:
        assert (packaged / name).read_bytes() == (shared / name).read_bytes(), name
