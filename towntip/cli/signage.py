"""`towntip signage ...`: the operator's signage tools.

- `enroll --screen NAME`: gives a screen its own NATS user (allowed only its own subjects: docs/signage.md) and
  registers it with the signage service (place, orientation, resolution, groups); prints the URL the screen
  connects with.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from pydantic import ValidationError

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.cli.points import BadInput, Unreachable, add_nats_args, check_node, connect
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
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
