"""`towntip edge ...`: the terminal side. `simulate` touches one card N times through the real agent and spool."""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import sys
from pathlib import Path

from nats.errors import Error as NatsError
from pydantic import TypeAdapter, ValidationError

from edge.readers.simulated import SimulatedReader
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import PENDING, REJECTED, Spool, SpooledTap
from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.cli.points import BadInput, Unreachable, add_nats_args, check_idm, check_node, connect
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts.points import EP_BALANCE, SERVICE, Balance, BalanceQuery, Code, TerminalId
from towntip.node.natsauth import terminal_inbox_prefix

MAX_COUNT = 100_000


def default_terminal() -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-") or "host"
    return f"sim-{host}"[:32].rstrip("-")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("edge", help="IC card terminal tools")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    sim = verbs.add_parser("simulate", help="touch a card N times on a simulated terminal and wait for the outcomes")
    add_nats_args(sim)
    sim.add_argument("--event", required=True, help="event code, e.g. seed-01")
    sim.add_argument("--card", required=True, metavar="IDM", help="the card's IDm, 16 hex digits")
    sim.add_argument("--volunteer", action="store_true", help="tap as a volunteer (default: participant)")
    sim.add_argument("--count", default="1", help=f"how many touches, 1..{MAX_COUNT} (default 1)")
    sim.add_argument("--terminal", default=None, help="terminal id (default sim-<hostname>)")
    sim.add_argument("--spool", default=None, help="spool file (default ./var/edge/<terminal>.sqlite3)")
    sim.add_argument("--wait", default="10", help="seconds to wait for the outcomes (default 10)")
    sim.set_defaults(func=cmd_simulate)

    enroll = verbs.add_parser(
        "enroll", help="give a terminal its own NATS user (operator only); prints the URL the terminal connects with")
    add_nats_args(enroll)
    enroll.add_argument("--terminal", required=True, help="terminal id, e.g. hall-1")
    enroll.set_defaults(func=cmd_enroll)


def cmd_enroll(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        terminal = TypeAdapter(TerminalId).validate_python(args.terminal)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError:
        return fail(f"terminal id {args.terminal!r} must be 1-32 characters of a-z, 0-9 and '-'", EXIT_USAGE)

    async def go() -> dict:
        nc = await connect(args.nats_url)
        try:
            return await rpc.call(nc, subjects.svc(node, "node", "enroll"), {"terminal": terminal}, timeout=10)
        finally:
            await nc.close()

    try:
        answer = asyncio.run(go())
    except Unreachable as exc:
        return fail(str(exc))
    except errors.ServiceError as exc:
        return fail(f"enrolment refused: {exc.reason} ({exc.code})")
    print(answer["url"])
    print(f"terminal {terminal}: it may publish only edge.{node}.{terminal}.> and read only its own inboxes "
          f"({answer['inbox_prefix']}.>); keep this URL secret. Enrolling again replaces the password.",
          file=sys.stderr)
    return EXIT_OK


def _check(args: argparse.Namespace) -> tuple[str, str, str, str, int, float, Path]:
    node = check_node(args.node)
    idm = check_idm(args.card)
    try:
        event = TypeAdapter(Code).validate_python(args.event)
    except ValidationError:
        raise BadInput(f"event code {args.event!r} must be 1-64 characters of a-z, 0-9, '-' and '_'") from None
    terminal = args.terminal or default_terminal()
    try:
        terminal = TypeAdapter(TerminalId).validate_python(terminal)
    except ValidationError:
        raise BadInput(f"terminal id {terminal!r} must be 1-32 characters of a-z, 0-9 and '-'") from None
    try:
        count = int(args.count)
    except ValueError:
        raise BadInput(f"--count {args.count!r} is not a whole number") from None
    if not 1 <= count <= MAX_COUNT:
        raise BadInput(f"--count must be between 1 and {MAX_COUNT}, not {count}")
    try:
        wait = float(args.wait)
    except ValueError:
        raise BadInput(f"--wait {args.wait!r} is not a number of seconds") from None
    if not 0 <= wait <= 86400:
        raise BadInput("--wait must be between 0 and 86400 seconds")
    spool = Path(args.spool) if args.spool else Path("var") / "edge" / f"{terminal}.sqlite3"
    return node, idm, event, terminal, count, wait, spool


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        node, idm, event, terminal, count, wait, spool_path = _check(args)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    role = "volunteer" if args.volunteer else "participant"
    try:
        return asyncio.run(_simulate(args.nats_url, node, terminal, spool_path, event, role, idm, count, wait))
    except Unreachable as exc:
        return fail(f"{exc}; nothing was spooled or sent")
    except OSError as exc:
        return fail(f"cannot use the spool {spool_path}: {exc}")


async def _simulate(
    url: str, node: str, terminal: str, spool_path: Path, event: str, role: str, idm: str, count: int, wait: float
) -> int:
    nc = await connect(url, inbox_prefix=terminal_inbox_prefix(terminal))  # the inboxes a terminal may use
    try:
        with Spool(spool_path) as spool:
            earlier = spool.queue_length()
            # Each simulated touch is a distinct tap on purpose: no debounce here.
            agent = TerminalAgent(nc, node, terminal, spool, event, role, debounce=0)  # type: ignore[arg-type]
            async with agent:
                reads = [r async for r in SimulatedReader.repeat(idm, count)]
                taps = await agent.tap_many(reads)
                settled = await agent.wait_settled(wait)
                rows = spool.get_many([t.tap_id for t in taps])
                left = spool.queue_length()
        balance = await _balance_now(nc, node, idm) if any(r.balance is not None for r in rows) else None
    finally:
        await nc.close()
    return _report(rows, count, settled, wait, earlier, left, spool_path, balance)


async def _balance_now(nc: object, node: str, idm: str) -> int | None:
    """The card's balance once every tap has settled. Each outcome carries the balance right after its own
    commit, and batches commit concurrently, so the last tap's outcome need not be the latest figure."""
    try:
        reply = await rpc.call(nc, subjects.svc(node, SERVICE, EP_BALANCE), BalanceQuery(card_idm=idm), timeout=5.0)
        return Balance.model_validate(reply).balance
    except (errors.ServiceError, NatsError, ValueError, OSError, TimeoutError):  # ValidationError is a ValueError
        return None


def _report(
    rows: list[SpooledTap], count: int, settled: bool, wait: float, earlier: int, left: int, spool_path: Path,
    balance_now: int | None = None,
) -> int:
    tally = {"credited": 0, "duplicate": 0, "rejected": 0}
    for r in rows:
        if r.outcome:
            tally[r.outcome] += 1
    balance = balance_now
    if balance is None:
        balance = next((r.balance for r in reversed(rows) if r.balance is not None), None)
    line = (f"{count} taps: {tally['credited']} credited, {tally['duplicate']} duplicate, "
            f"{tally['rejected']} rejected")
    if balance is not None:
        line += f"; balance {balance}"
    print(line)
    if earlier:
        print(f"also re-sent {earlier} taps spooled earlier on this terminal", file=sys.stderr)
    code = EXIT_OK
    first_rejection = next((r for r in rows if r.outcome == REJECTED), None)
    if first_rejection is not None:
        print(f"towntip: rejected: {first_rejection.reason} ({first_rejection.error_code})", file=sys.stderr)
        code = EXIT_FAILURE
    if not settled:
        pending = sum(1 for r in rows if r.state == PENDING)
        accepted = sum(1 for r in rows if r.state == "accepted")
        parts = []
        if left:
            parts.append(f"{left} not yet accepted by the bus remain spooled in {spool_path} and will be sent "
                         "next time")
        if accepted:
            parts.append(f"{accepted} accepted by the bus await the points service (they are durable and will be "
                         "credited when it runs)")
        detail = "; ".join(parts) or f"{pending} unsettled"
        print(f"towntip: not all taps settled within {wait:g}s: {detail}", file=sys.stderr)
        code = EXIT_FAILURE
    return code
