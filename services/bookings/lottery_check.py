"""Recompute a lottery's draw from its published data, offline: `python -m services.bookings.lottery_check FILE`
(FILE: the JSON of GET /api/v1/lottery/rounds/{id}/published, or `-` for standard input). Prints whether the
published results are the ones the seed and the entries give, and exits 1 when they are not."""

from __future__ import annotations

import sys
from pathlib import Path

from services.bookings.lottery_draw import check
from towntip.kernel.contracts import bookings_lottery as lc


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    text = sys.stdin.read() if argv[0] == "-" else Path(argv[0]).read_text(encoding="utf-8")
    result = check(lc.LotteryPublication.model_validate_json(text))
    print(f"round {result.round_id}: {result.entries} entries, {result.winners} drawn")
    if result.matches:
        print("OK: the published results are the ones the seed and the entries give (一致)")
        return 0
    print("MISMATCH (不一致): " + ", ".join(result.differences))
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
