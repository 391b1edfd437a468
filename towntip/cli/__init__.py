"""The `towntip` command: node, edge, points, identity, federation and demo verbs.
Exit codes: 0 ok, 1 failure, 2 bad input."""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


# Each command's module, imported only for that command when it is the one asked: `towntip node up` is the node's
# supervisor for its whole life, and the other commands' imports (demo: every service's contracts) cost it ~35 MB.
COMMANDS = ("node", "edge", "points", "identity", "federation", "demo", "signage", "health")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="towntip", description="TownTip Commons: one municipality node and its tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if command not in COMMANDS else (command,):
        importlib.import_module(f"towntip.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(argv)
    if getattr(args, "nats_url", "") is None:  # an operator's command without --nats-url: the node's, if it left one
        from towntip.cli.points import BadInput, Unreachable, operator_nats_url

        try:
            args.nats_url = operator_nats_url(args.data_dir)
        except BadInput as exc:
            return fail(str(exc), EXIT_USAGE)
        except Unreachable as exc:
            return fail(str(exc))
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    return int(code or 0)


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"towntip: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
