"""`towntip demo ...`: demo data for a node. `seed` puts the seed's event table into the points service (each event
with a date, a venue among the demo facilities and a capacity: sample values), then the demo facilities
(towntip/cli/demo_facilities.py, sample values beside the seed's names) into the bookings service, then the demo town
(towntip/cli/demo_town.py: communities with posts, themes, donation projects, courses) through each service."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.cli.demo_facilities import FACILITIES
from towntip.cli.demo_town import DemoTown
from towntip.cli.points import BadInput, Unreachable, add_nats_args, check_node, connect
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as bc
from towntip.kernel.contracts.points import EP_EVENT_PUT, SERVICE, EventIn

# The seed's table ships with the package (towntip/data); a shared/data copy beside the checkout also counts.
PACKAGED_CSV = Path(__file__).resolve().parents[1] / "data" / "seed_event_points.csv"
SEED_CSV = Path("shared") / "data" / "seed_event_points.csv"
PARTICIPANT_POINTS = 1  # the rule in force in the seed: participant 1 point, volunteer 5
VOLUNTEER_POINTS = 5


def find_seed_csv(starts: list[Path] | None = None) -> Path | None:
    """The packaged towntip/data/seed_event_points.csv, else shared/data/seed_event_points.csv in the cwd or any
    of its parents (`starts` replaces both, for tests)."""
    if starts is None:
        if PACKAGED_CSV.is_file():
            return PACKAGED_CSV
        starts = [Path.cwd()]
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / SEED_CSV
            if candidate.is_file():
                return candidate
    return None


def first_saturday(today: date) -> date:
    """The first Saturday after today: the demo's events fall on Saturdays from there, one a week."""
    return today + timedelta(days=(5 - today.weekday()) % 7 or 7)


def schedule(name: str, day: date) -> dict[str, Any]:
    """When and where a seed event takes place in the demo (sample values): 10:00-12:00 JST on `day`, at the 公民館
    its name says, else at the 市民活動推進センター; capacity that of the room (30 where it says none)."""
    venue = ("ohashi-kominkan-hall" if "大橋公民館" in name else "minami-kominkan-koza" if "南公民館" in name
             else "katsudo-center")
    room = next(f for f in FACILITIES if f["id"] == venue)
    start = datetime.combine(day, time(10, 0), tzinfo=JST)
    return {"starts_at": start, "ends_at": start + timedelta(hours=2), "venue_facility": venue,
            "venue_name": room["name_ja"], "capacity": room.get("capacity") or 30}


def seed_events(path: Path, today: date | None = None) -> list[EventIn]:
    """The rows as events seed-01, seed-02, ... in file order (stable, so re-seeding updates them), each with a date
    (one a week on Saturdays from the first after `today`), a venue among the demo facilities and a capacity."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "event" not in reader.fieldnames:
                raise BadInput(f"{path}: expected a header with an 'event' column, found {reader.fieldnames}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    if not rows:
        raise BadInput(f"{path} has no rows")
    width = max(2, len(str(len(rows))))
    events = []
    first = first_saturday(today or datetime.now(JST).date())
    for i, row in enumerate(rows, start=1):
        try:
            events.append(EventIn(
                code=f"seed-{i:0{width}d}", name=row.get("event") or "",
                participant_points=PARTICIPANT_POINTS, volunteer_points=VOLUNTEER_POINTS,
                **schedule(row.get("event") or "", first + timedelta(weeks=i - 1)),
            ))
        except ValidationError as exc:
            raise BadInput(f"{path} row {i + 1}: {errors.describe_validation_error(exc)}") from None
    return events


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="demo data for a node")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    seed = verbs.add_parser("seed", help="put the seed's events (seed_event_points.csv) into the points service "
                            "and the demo facilities into the bookings service")
    add_nats_args(seed)
    seed.add_argument("--csv", default=None,
                      help="the event table (default: the packaged towntip/data/seed_event_points.csv, "
                      "looked for upwards from here and from the package)")
    seed.set_defaults(func=cmd_seed)


def cmd_seed(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        if args.csv:
            path = Path(args.csv)
            if not path.is_file():
                raise BadInput(f"--csv {path}: no such file")
        else:
            found = find_seed_csv()
            if found is None:
                raise BadInput(f"cannot find {SEED_CSV} above {Path.cwd()} or the package; pass --csv PATH")
            path = found
        events = seed_events(path)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        done = asyncio.run(_seed(args.nats_url, node, events))
    except Unreachable as exc:
        return fail(str(exc))
    except errors.ServiceError as exc:
        return fail(f"points service: {exc.reason} ({exc.code})", EXIT_FAILURE)
    print(f"{done} events put on {subjects.svc(node, SERVICE, EP_EVENT_PUT)} from {path}")
    put = subjects.svc(node, bc.SERVICE, bc.EP_FACILITY_PUT)
    try:
        placed = asyncio.run(_facilities(args.nats_url, node, demo_facilities()))
    except Unreachable as exc:
        return fail(str(exc))
    except errors.Unavailable as exc:  # a node started without the bookings service: the events are in all the same
        print(f"bookings service: {exc.reason}; the demo facilities were not put (start it, then seed again)",
              file=sys.stderr)
    except errors.ServiceError as exc:
        return fail(f"bookings service: {exc.reason} ({exc.code})", EXIT_FAILURE)
    else:
        print(f"{placed} facilities put on {put} (sample values beside the seed's names)")
    return _town(args.nats_url, node)


def _town(url: str, node: str) -> int:
    """The demo town (towntip/cli/demo_town.py): people, communities and posts, themes, donation projects, courses."""
    try:
        counts = asyncio.run(_seed_town(url, node))
    except Unreachable as exc:
        return fail(str(exc))
    except errors.Unavailable as exc:  # a node without one of the services: what was put stays put
        print(f"{exc.reason}; the rest of the demo town was not put (start the node's services, then seed again)",
              file=sys.stderr)
        return EXIT_OK
    except errors.ServiceError as exc:
        return fail(f"demo town: {exc.reason} ({exc.error_code})", EXIT_FAILURE)
    print("demo town: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + " (sample values)")
    return EXIT_OK


async def _seed_town(url: str, node: str) -> dict[str, int]:
    nc = await connect(url)

    async def call(service: str, endpoint: str, payload: Any) -> Any:
        return await rpc.call(nc, subjects.svc(node, service, endpoint), payload, timeout=10.0)

    try:
        return await DemoTown(call, lambda line: print(line, flush=True)).run()
    finally:
        await nc.close()


def demo_facilities() -> list[bc.FacilityPut]:
    """The demo's facilities as the bookings service takes them (put by the operator: no actor)."""
    return [bc.FacilityPut.model_validate(f) for f in FACILITIES]


async def _facilities(url: str, node: str, facilities: list[bc.FacilityPut]) -> int:
    nc = await connect(url)
    subject = subjects.svc(node, bc.SERVICE, bc.EP_FACILITY_PUT)
    try:
        for f in facilities:
            await rpc.call(nc, subject, f, timeout=5.0)
            print(f"{f.id}\t{f.name_ja}", flush=True)
    finally:
        await nc.close()
    return len(facilities)


async def _seed(url: str, node: str, events: list[EventIn]) -> int:
    nc = await connect(url)
    subject = subjects.svc(node, SERVICE, EP_EVENT_PUT)
    try:
        for ev in events:
            await rpc.call(nc, subject, ev, timeout=5.0)
            print(f"{ev.code}\t{ev.name}", flush=True)
    finally:
        await nc.close()
    return len(events)
