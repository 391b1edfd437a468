"""`python -m towntip.anchor --data-dir D --entity-id URL [--host H] [--port P]`: serve a federation's trust anchor
as its own process (what `towntip federation anchor serve` runs; enrol members with `towntip federation anchor`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from towntip.anchor.anchor import base_url
from towntip.anchor.app import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m towntip.anchor", description=__doc__)
    parser.add_argument("--data-dir", default="./var/anchor",
                        help="the anchor's key and members (default: %(default)s)")
    parser.add_argument("--entity-id", required=True, help="the anchor's own URL, as nodes reach it")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    entity = base_url(args.entity_id)
    if entity is None:
        print(f"python -m towntip.anchor: --entity-id must be a URL (https://…), not {args.entity_id!r}",
              file=sys.stderr)
        return 2
    serve(Path(args.data_dir), entity, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
