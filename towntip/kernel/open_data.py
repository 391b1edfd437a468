"""Small counts in open data (オープンデータ): the one threshold and the rules every service applies before a figure
leaves it for the public zip (towntip/kernel/contracts/open_data.py; the README of the zip states the rule).

- A count of people under SUPPRESS_BELOW (1 to 4) is not published: the cell is None ("<5" in the CSV). Zero is
  published (it reveals nobody).
- A figure computed from a row's people (the points they earned, their participations) is suppressed with the row's
  count of people: two people's points are near each one's.
- Differences: where a column's suppressed cells could be recovered from a total published elsewhere (the sum of
  the districts against the node's total), a column with exactly one suppressed cell has its next smallest cell
  suppressed too (`complementary`); a series of totals by month publishes a month's total only where it moved by
  zero or by at least SUPPRESS_BELOW since the last published one (`cumulative`), so no difference of two published
  totals is a small count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from towntip.kernel.clock import JST
from towntip.kernel.contracts import open_data as c

SUPPRESS_BELOW = 5
SUPPRESSED = f"<{SUPPRESS_BELOW}"  # how a suppressed cell reads in the CSV


def small(n: int) -> bool:
    return 0 < n < SUPPRESS_BELOW


def count(n: int) -> int | None:
    """A count of people as published: None where it is small."""
    return None if small(n) else n


def complementary(values: Sequence[int | None], raw: Sequence[int]) -> list[int | None]:
    """A column already suppressed cell by cell (`values`, from `raw`): with exactly one suppressed cell, the smallest
    other non-zero cell goes too, so that a total published elsewhere does not give the suppressed one away."""
    out = list(values)
    hidden = [i for i, v in enumerate(out) if v is None and raw[i] != 0]
    if len(hidden) == 1:
        rest = [(raw[i], i) for i, v in enumerate(out) if v is not None and raw[i] != 0]
        if rest:
            out[min(rest)[1]] = None
    return out


def cumulative(new_by_month: Iterable[tuple[str, int]], *, start: int = 0) -> list[tuple[str, int | None, int | None]]:
    """(month, new that month) in order → (month, published new, published total by the month's end). A total is
    published only where it differs from the last published one by 0 or by at least SUPPRESS_BELOW (and is itself 0
    or not small); the 'new' published is then the difference from the last published total, so adding the
    published 'new' of a run of months gives the published totals and nothing smaller."""
    out: list[tuple[str, int | None, int | None]] = []
    total = start
    last = start
    for month, n in new_by_month:
        total += n
        step = total - last
        if (step == 0 or step >= SUPPRESS_BELOW) and not small(total):
            out.append((month, step, total))
            last = total
        else:
            out.append((month, None, None))
    return out


def cell(value: Any) -> str:
    """How a cell reads in the CSV: None is SUPPRESSED."""
    if value is None:
        return SUPPRESSED
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def _month(t: datetime) -> str:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(JST).strftime("%Y-%m")


def _next(month: str) -> str:
    y, m = int(month[:4]), int(month[5:])
    return f"{y + m // 12}-{m % 12 + 1:02d}"


def usage(series: str, times: Iterable[datetime], *, now: datetime) -> c.Usage:
    """A usage series from the times people joined (registered, bound their first card, became a leader): every
    month (Japan) from the first to `now`'s, with the month's new people and the total by its end."""
    per = Counter(_month(t) for t in times)
    months: list[c.UsageMonth] = []
    if per:
        month, last, total = min(per), max(max(per), _month(now)), 0
        while month <= last:
            total += per.get(month, 0)
            months.append(c.UsageMonth(month=month, new=per.get(month, 0), total=total))
            month = _next(month)
    return c.Usage(series=series, months=months, total=sum(per.values()))


def published(u: c.Usage) -> c.Usage:
    """The series as open data publishes it (`cumulative`)."""
    rows = cumulative((m.month, m.new or 0) for m in u.months)
    return c.Usage(series=u.series, months=[c.UsageMonth(month=m, new=n, total=t) for m, n, t in rows],
                   total=rows[-1][2] if rows else 0)  # None where the last month's total is withheld
