"""`towntip signage ...`: the operator's signage tools.

- `enroll --screen NAME`: gives a screen its own NATS user (allowed only its own subjects: docs/signage.md) and
  registers it with the signage service (place, orientation, resolution, groups); prints the URL the screen
  connects with.
- `play --screen NAME --http-port PORT`: the screen's player (edge/signage): syncs and caches its schedule and
  content, serves the kiosk page on 127.0.0.1:PORT, plays from the cache while the node is away, sends proof of play.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.cli.points import BadInput, Unreachable, add_nats_args, check_node, connect
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST, utcnow
from towntip.kernel.contracts import signage as c


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("signage", help="signage screens (映像交流・配信)")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    enroll = verbs.add_parser(
        "enroll", help="give a screen its own NATS user and register it (operator only); prints the screen's URL"
    )
    add_nats_args(enroll)
    enroll.add_argument("--screen", required=True, help="screen name, e.g. hall-1f-1 (a-z, 0-9, '-')")
    enroll.add_argument("--place", default="", help="the facility it stands in, e.g. 中央公民館")
    enroll.add_argument("--orientation", default="landscape", choices=("landscape", "portrait"))
    enroll.add_argument("--size", default="1920x1080", help="resolution WIDTHxHEIGHT (default 1920x1080)")
    enroll.add_argument("--group", action="append", default=[], help="a group it belongs to (repeatable)")
    enroll.set_defaults(func=cmd_enroll)
    add_play(verbs)


def _registration(args: argparse.Namespace) -> c.ScreenRegister:
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise BadInput(f"--size {args.size!r} is not WIDTHxHEIGHT, e.g. 1920x1080") from None
    try:
        return c.ScreenRegister(
            name=args.screen,
            place=args.place,
            orientation=args.orientation,
            width=width,
            height=height,
            groups=tuple(args.group),
        )
    except ValidationError as exc:
        raise BadInput(errors.describe_validation_error(exc)) from None


def cmd_enroll(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        screen = _registration(args)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)

    async def go() -> dict[str, Any]:
        nc = await connect(args.nats_url)
        try:
            answer: dict[str, Any] = await rpc.call(
                nc, subjects.svc(node, "node", "enroll"), {"screen": screen.name}, timeout=15
            )
            await rpc.call(nc, subjects.svc(node, c.SERVICE, c.EP_ADMIN_SCREEN_ENROLLED), screen, timeout=10)
            return answer
        finally:
            await nc.close()

    try:
        answer = asyncio.run(go())
    except Unreachable as exc:
        return fail(str(exc))
    except errors.ServiceError as exc:
        return fail(f"enrolment refused: {exc.reason} ({exc.code})", EXIT_FAILURE)
    print(answer["url"])
    print(
        f"screen {screen.name}: it may publish only {c.screen_subject(node, screen.name, '>')} and read only "
        f"{c.push_all(node)} and its own inboxes ({answer['inbox_prefix']}.>); keep this URL secret. "
        "Enrolling again replaces the password.",
        file=sys.stderr,
    )
    return EXIT_OK


# ---- towntip signage play (the screen's side) -------------------------------------------------------------------


def add_play(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    play = verbs.add_parser(
        "play", help="run a screen's player: sync and cache its schedule, serve the kiosk page, send proof of play"
    )
    add_nats_args(play, operator=False)  # with the URL `signage enroll` printed: never the operator's
    play.add_argument("--screen", required=True, help="the screen's name, as enrolled (e.g. hall-1f)")
    play.add_argument("--http-port", default="8090", help="the kiosk page's port on 127.0.0.1 (default 8090)")
    play.add_argument("--cache-dir", default=None, help="the screen's cache (default ./var/signage/<screen>)")
    play.add_argument(
        "--now",
        default=None,
        metavar="ISO",
        help="run the player's clock from this moment (e.g. 2026-12-08T12:10+09:00): to try a "
        "schedule's dayparts on a real screen",
    )
    play.set_defaults(func=cmd_play)


def _play_args(args: argparse.Namespace) -> tuple[str, str, int, Path, Callable[[], datetime]]:
    node = check_node(args.node)
    try:
        screen = TypeAdapter(c.ScreenName).validate_python(args.screen)
    except ValidationError:
        raise BadInput(f"screen name {args.screen!r} must be 1-32 characters of a-z, 0-9 and '-'") from None
    try:
        port = int(args.http_port)
    except ValueError:
        raise BadInput(f"--http-port {args.http_port!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise BadInput(f"--http-port must be between 1 and 65535, not {port}")
    clock: Callable[[], datetime] = utcnow
    if args.now:
        try:
            start = datetime.fromisoformat(args.now)
        except ValueError:
            raise BadInput(f"--now {args.now!r} is not an ISO 8601 time such as 2026-12-08T12:10+09:00") from None
        clock = _shifted(start if start.tzinfo else start.replace(tzinfo=JST))
    cache = Path(args.cache_dir) if args.cache_dir else Path("var") / "signage" / screen
    return node, screen, port, cache, clock


def cmd_play(args: argparse.Namespace) -> int:
    try:
        node, screen, port, cache, clock = _play_args(args)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    from edge.signage.screen import run_player  # the player's code only where a screen runs

    try:
        asyncio.run(run_player(url=args.nats_url, node=node, screen=screen, cache_dir=cache, port=port, clock=clock))
    except OSError as exc:
        return fail(f"player stopped: {exc}")
    return EXIT_OK


def _shifted(start: datetime) -> Callable[[], datetime]:
    from edge.signage.screen import shifted_clock

    return shifted_clock(start)
