"""`towntip edge ...`: the terminal side.

- `simulate`: touches one card N times through the real agent and spool, in any mode, and reports the outcomes;
- `run`: a terminal for real: a reader (nfcpy `--reader nfc --device usb:054c:06c1`, or `--reader sim` taking IDms
  on standard input), feedback on screen and by sound, heartbeats, the offline spool; staff types a donation's
  or coupon's reference on standard input before the touch;
- `enroll`: the operator gives a terminal its own NATS user;
- `status`: the operator's table of terminals as the points service last heard them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from pydantic import TypeAdapter, ValidationError

from edge.feedback import FeedbackPanel, make_screen, make_sound
from edge.readers.base import CardReader
from edge.readers.simulated import SimulatedReader
from edge.terminal.agent import MODES, REF_MODES, TerminalAgent, check_mode, check_ref
from edge.terminal.spool import ALREADY, CREDITED, PENDING, REJECTED, Spool, SpooledTap
from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.cli.points import BadInput, Unreachable, add_nats_args, check_idm, check_node, connect
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.inboxes import terminal_inbox_prefix
from towntip.kernel.contracts.points import (
    EP_BALANCE,
    EP_TERMINALS_LIST,
    SERVICE,
    Balance,
    BalanceQuery,
    TerminalId,
    TerminalList,
)

MAX_COUNT = 100_000
log = logging.getLogger(__name__)


def default_terminal() -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-") or "host"
    return f"sim-{host}"[:32].rstrip("-")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("edge", help="IC card terminal tools")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    sim = verbs.add_parser("simulate", help="touch a card N times on a simulated terminal and wait for the outcomes")
    add_nats_args(sim)
    add_mode_args(sim)
    sim.add_argument("--card", required=True, metavar="IDM", help="the card's IDm, 16 hex digits")
    sim.add_argument("--ref", action="append", default=None, metavar="REF",
                     help="donation/coupon mode: what each touch confirms; give it once per touch")
    sim.add_argument("--count", default=None, help=f"how many touches, 1..{MAX_COUNT} (default 1, or one per --ref)")
    sim.add_argument("--terminal", default=None, help="terminal id (default sim-<hostname>)")
    sim.add_argument("--spool", default=None, help="spool file (default ./var/edge/<terminal>.sqlite3)")
    sim.add_argument("--wait", default="10", help="seconds to wait for the outcomes (default 10)")
    sim.add_argument("--screen", default="none", choices=("none", "console"), help="show each outcome (default none)")
    sim.add_argument("--sound", default="none", choices=("none", "auto", "aplay", "bell"),
                     help="a tone per outcome (default none)")
    sim.set_defaults(func=cmd_simulate)

    run = verbs.add_parser("run", help="run a card terminal: read cards, send taps, show and sound the outcomes")
    add_nats_args(run, operator=False)  # with the URL `edge enroll` printed: never the operator's
    add_mode_args(run)
    run.add_argument("--terminal", default=None, help="terminal id (default sim-<hostname>); enrol it first")
    run.add_argument("--reader", default="nfc", choices=("nfc", "sim"),
                     help="nfc: a FeliCa reader through nfcpy; sim: IDms typed on standard input (default nfc)")
    run.add_argument("--device", default="usb", help="nfcpy device path (default usb; RC-S380: usb:054c:06c1)")
    run.add_argument("--spool", default=None, help="spool file (default ./var/edge/<terminal>.sqlite3)")
    run.add_argument("--heartbeat", default="30", help="seconds between heartbeats (default 30)")
    run.add_argument("--debounce", default="3", help="a card again within this many seconds counts once (default 3)")
    run.add_argument("--screen", default="console", choices=("none", "console"), help="where messages go")
    run.add_argument("--sound", default="auto", choices=("none", "auto", "aplay", "bell"),
                     help="auto: aplay where a sound device exists, else the terminal bell")
    run.set_defaults(func=cmd_run)

    status = verbs.add_parser("status", help="the node's card terminals: online, last seen, mode, queue (operator)")
    add_nats_args(status)
    status.add_argument("--json", action="store_true", help="print the service's answer as JSON")
    status.set_defaults(func=cmd_status)

    enroll = verbs.add_parser(
        "enroll", help="give a terminal its own NATS user (operator only); prints the URL the terminal connects with")
    add_nats_args(enroll)
    enroll.add_argument("--terminal", required=True, help="terminal id, e.g. hall-1")
    enroll.set_defaults(func=cmd_enroll)


def add_mode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", default="checkin", choices=MODES,
                   help="checkin (an event), register (card registration), donation or coupon (default checkin)")
    p.add_argument("--event", default=None, help="event code for check-in, e.g. seed-01")
    p.add_argument("--volunteer", action="store_true", help="check in as a volunteer (default: participant)")


def _mode(args: argparse.Namespace) -> tuple[str, str | None, str]:
    role = "volunteer" if args.volunteer else "participant"
    try:
        check_mode(args.mode, args.event, role)
    except ValueError as exc:
        raise BadInput(f"{exc} (--mode {args.mode}{' --event' if args.mode == 'checkin' else ''})") from None
    return args.mode, args.event, role


def _terminal(value: str | None) -> str:
    terminal = value or default_terminal()
    try:
        return TypeAdapter(TerminalId).validate_python(terminal)
    except ValidationError:
        raise BadInput(f"terminal id {terminal!r} must be 1-32 characters of a-z, 0-9 and '-'") from None


def _seconds(name: str, value: str, low: float, high: float) -> float:
    try:
        n = float(value)
    except ValueError:
        raise BadInput(f"{name} {value!r} is not a number of seconds") from None
    if not low <= n <= high:
        raise BadInput(f"{name} must be between {low:g} and {high:g} seconds")
    return n


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


def _check(args: argparse.Namespace) -> tuple[str, str, tuple[str, str | None, str], str, int, list[str] | None,
                                              float, Path]:
    node = check_node(args.node)
    idm = check_idm(args.card)
    mode = _mode(args)
    terminal = _terminal(args.terminal)
    refs = list(args.ref) if args.ref else None
    if mode[0] in REF_MODES:
        if not refs:
            raise BadInput(f"{mode[0]} mode: give what each touch confirms with --ref (once per touch)")
        try:
            refs = [check_ref(r) for r in refs]
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    elif refs:
        raise BadInput(f"--ref is for donation and coupon modes, not {mode[0]}")
    default_count = str(len(refs)) if refs else "1"
    try:
        count = int(args.count if args.count is not None else default_count)
    except ValueError:
        raise BadInput(f"--count {args.count!r} is not a whole number") from None
    if not 1 <= count <= MAX_COUNT:
        raise BadInput(f"--count must be between 1 and {MAX_COUNT}, not {count}")
    if refs and count != len(refs):
        raise BadInput(f"--count {count} but {len(refs)} --ref: one reference per touch")
    wait = _seconds("--wait", args.wait, 0, 86400)
    spool = Path(args.spool) if args.spool else Path("var") / "edge" / f"{terminal}.sqlite3"
    return node, idm, mode, terminal, count, refs, wait, spool


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        node, idm, mode, terminal, count, refs, wait, spool_path = _check(args)
        panel = FeedbackPanel(make_screen(args.screen), make_sound(args.sound))
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except (ValueError, FileNotFoundError) as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        return asyncio.run(_simulate(args.nats_url, node, terminal, spool_path, mode, idm, count, refs, wait, panel))
    except Unreachable as exc:
        return fail(f"{exc}; nothing was spooled or sent")
    except OSError as exc:
        return fail(f"cannot use the spool {spool_path}: {exc}")


async def _simulate(
    url: str, node: str, terminal: str, spool_path: Path, mode: tuple[str, str | None, str], idm: str, count: int,
    refs: list[str] | None, wait: float, panel: FeedbackPanel,
) -> int:
    nc = await connect(url, inbox_prefix=terminal_inbox_prefix(terminal))  # the inboxes a terminal may use
    mode_name, event, role = mode
    try:
        with Spool(spool_path) as spool:
            earlier = spool.queue_length()
            # Each simulated touch is a distinct tap on purpose: no debounce here.
            agent = TerminalAgent(nc, node, terminal, spool, event, role, mode=mode_name, debounce=0,  # type: ignore[arg-type]
                                  feedback=panel, heartbeat_interval=0)
            async with agent:
                reads = [r async for r in SimulatedReader.repeat(idm, count)]
                if count == 1:
                    tap = await agent.tap(reads[0], ref=refs[0] if refs else None, debounce=False)  # shown as real
                    taps = [tap] if tap is not None else []
                else:
                    taps = await agent.tap_many(reads, refs=refs)
                settled = await agent.wait_settled(wait)
                rows = spool.get_many([t.tap_id for t in taps])
                left = spool.queue_length()
        balance = (await _balance_now(nc, node, idm)
                   if mode_name == "checkin" and any(r.balance is not None for r in rows) else None)
    finally:
        await nc.close()
    return _report(rows, count, settled, wait, earlier, left, spool_path, balance)


async def _balance_now(nc: NATS, node: str, idm: str) -> int | None:
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
    tally = {"credited": 0, "duplicate": 0, "rejected": 0, "already": 0}
    for r in rows:
        if r.outcome == CREDITED and r.reason == ALREADY:
            tally["already"] += 1  # an event's points are earned once: settled, nothing credited
        elif r.outcome:
            tally[r.outcome] += 1
    balance = balance_now
    if balance is None:
        balance = next((r.balance for r in reversed(rows) if r.balance is not None), None)
    line = (f"{count} taps: {tally['credited']} credited, "
            + (f"{tally['already']} already checked in, " if tally["already"] else "")
            + f"{tally['duplicate']} duplicate, {tally['rejected']} rejected")
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


# ---- towntip edge run ---------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        mode = _mode(args)
        terminal = _terminal(args.terminal)
        heartbeat = _seconds("--heartbeat", args.heartbeat, 1, 3600)
        debounce = _seconds("--debounce", args.debounce, 0, 3600)
        panel = FeedbackPanel(make_screen(args.screen), make_sound(args.sound))
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except (ValueError, FileNotFoundError) as exc:
        return fail(str(exc), EXIT_USAGE)
    spool_path = Path(args.spool) if args.spool else Path("var") / "edge" / f"{terminal}.sqlite3"
    reader: CardReader
    if args.reader == "nfc":
        from edge.readers.nfc import NfcReader  # nfcpy only where a reader is used

        reader = NfcReader(args.device)
    else:
        reader = SimulatedReader(asyncio.Queue())
    try:
        return asyncio.run(run_terminal(
            url=args.nats_url, node=node, terminal=terminal, spool_path=spool_path, mode=mode, reader=reader,
            panel=panel, heartbeat=heartbeat, debounce=debounce, stdin_reads=args.reader == "sim"))
    except OSError as exc:
        return fail(f"terminal stopped: {exc}")
    except RuntimeError as exc:
        return fail(str(exc))


async def run_terminal(
    *, url: str, node: str, terminal: str, spool_path: Path, mode: tuple[str, str | None, str], reader: CardReader,
    panel: Any, heartbeat: float, debounce: float, stdin_reads: bool, lines: Any = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Runs a terminal until stopped (SIGINT/SIGTERM, `stop`, or the end of the input with the sim reader).

    Works offline from the first second: taps are spooled while NATS is out of reach and sent once it answers.
    Standard input (or `lines`, an async iterator of text lines) takes staff commands: `ref <REF>` (or a bare
    reference in donation/coupon mode) names what the next touch confirms; with `--reader sim` a line of 16 hex
    digits is a touch.
    """
    import nats

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    mode_name, event, role = mode
    spool = Spool(spool_path)
    agent = TerminalAgent(None, node, terminal, spool, event, role, mode=mode_name, debounce=debounce,  # type: ignore[arg-type]
                          feedback=panel, heartbeat_interval=heartbeat)
    await agent.start()

    async def quiet(exc: Exception) -> None:
        log.debug("nats: %r", exc)

    async def connect_forever() -> Any:
        nc = await nats.connect(url, name=f"terminal {terminal}", connect_timeout=2, max_reconnect_attempts=-1,
                                reconnect_time_wait=1, error_cb=quiet, reconnected_cb=agent.on_reconnected,
                                inbox_prefix=terminal_inbox_prefix(terminal))
        await agent.attach(nc)
        print(f"terminal {terminal}: connected to node {node}", file=sys.stderr)
        return nc

    async def take_lines() -> None:
        if stdin_reads:  # scripted touches: give the connection a moment, as a person walks up to the terminal
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(connecting), 3.0)
        source = lines if lines is not None else _stdin_lines()
        async for raw in source:
            line = raw.strip()
            if line:
                await _staff_line(agent, line, stdin_reads)
        if stdin_reads:
            await asyncio.sleep(0)
            stop.set()  # the simulated reader's input ended

    print(
        f"terminal {terminal}: {mode_name}{' ' + event if event else ''}{' (volunteer)' if role == 'volunteer' else ''}"
        f", spool {spool_path}, {spool.queue_length()} taps waiting", file=sys.stderr)
    connecting = asyncio.create_task(connect_forever(), name="connect")
    reading = asyncio.create_task(agent.run(reader), name="read")
    commands = asyncio.create_task(take_lines(), name="commands")
    stopping = asyncio.create_task(stop.wait())
    code = EXIT_OK
    try:
        done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if reading in done and reading.exception() is not None:
            exc = reading.exception()
            print(f"towntip: the card reader stopped: {exc}", file=sys.stderr)
            code = EXIT_FAILURE
        if stdin_reads:  # let the last touches reach the node when it is there
            await agent.wait_settled(3.0)
    finally:
        for task in (reading, commands, stopping):
            task.cancel()
        await reader.close()
        await agent.stop()
        await _close_connection(connecting)
        left = spool.queue_length()
        spool.close()
        if left:
            print(f"terminal {terminal}: {left} taps wait in {spool_path} and will be sent next time",
                  file=sys.stderr)
    return code


async def _staff_line(agent: TerminalAgent, line: str, stdin_reads: bool) -> None:
    """One non-empty line of staff input: `ref <REF>`, a bare reference in a REF mode, or (sim reader) a touch."""
    word, _, rest = line.partition(" ")
    try:
        if word.lower() == "ref":
            agent.set_pending_ref(rest.strip())
            print(f"next touch confirms {rest.strip()}", file=sys.stderr)
        elif stdin_reads and re.fullmatch(r"[0-9A-Fa-f]{16}", line):
            await agent.tap(line)
        elif agent.mode in REF_MODES:
            agent.set_pending_ref(line)
            print(f"next touch confirms {line}", file=sys.stderr)
        elif stdin_reads:
            await agent.tap(line)  # refused and shown: not an IDm
        else:
            print(f"unknown command {line!r}: ref <REF>", file=sys.stderr)
    except ValueError as exc:
        print(f"towntip: {exc}", file=sys.stderr)


async def _close_connection(connecting: asyncio.Task[Any]) -> None:
    """Closes the NATS connection if the connecting task made one; otherwise cancels it and waits for it to end."""
    nc = None
    if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
        nc = connecting.result()
    else:
        connecting.cancel()
        with contextlib.suppress(BaseException):
            await connecting
    if nc is not None:
        with contextlib.suppress(Exception):
            await nc.close()


async def _stdin_lines() -> Any:
    """Lines of standard input (a kiosk's keyboard or a pipe), read by a daemon thread: a terminal stopped with
    Ctrl-C or SIGTERM does not wait for one more line."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def pump() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, "")

    threading.Thread(target=pump, name="stdin", daemon=True).start()
    while line := await queue.get():
        yield line


# ---- towntip edge status --------------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)

    async def go() -> dict:
        nc = await connect(args.nats_url)
        try:
            return await rpc.call(nc, subjects.svc(node, SERVICE, EP_TERMINALS_LIST), None, timeout=10)
        finally:
            await nc.close()

    try:
        answer = TerminalList.model_validate(asyncio.run(go()))
    except Unreachable as exc:
        return fail(str(exc))
    except errors.ServiceError as exc:
        return fail(f"the points service did not answer: {exc.reason} ({exc.code})")
    except ValidationError:
        return fail("the points service answered terminals.list with an unexpected body")
    if args.json:
        print(answer.model_dump_json(indent=2))
        return EXIT_OK
    print(format_status(answer))
    return EXIT_OK


def _ago(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "-"
    s = max(0, int((now - t).total_seconds()))
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    if s < 2 * 86400:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def format_status(answer: TerminalList) -> str:
    """The terminals as a table; the online ones first within each name order."""
    now = answer.checked_at.astimezone(UTC)
    head = ("TERMINAL", "STATE", "LAST SEEN", "MODE", "EVENT", "QUEUE", "UNSETTLED", "LAST TAP", "VERSION")
    rows = [head]
    for t in answer.terminals:
        rows.append((
            t.terminal_id, "online" if t.online else "OFFLINE", _ago(t.last_seen_at, now), t.mode, t.event or "-",
            str(t.queue), str(t.unsettled), _ago(t.last_tap_at, now), t.version or "-",
        ))
    if len(rows) == 1:
        return "no terminal has been heard from yet"
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    online = sum(1 for t in answer.terminals if t.online)
    lines.append(f"{len(answer.terminals)} terminals, {online} online")
    return "\n".join(lines)
