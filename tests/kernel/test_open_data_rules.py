"""The small-count rules of open data (towntip/kernel/open_data.py): a count of 1 to 4 withheld, a lone withheld
cell covered by the next smallest, a series of totals never moving by a small step between published months."""

from __future__ import annotations

from datetime import UTC, datetime

from towntip.kernel import open_data as od


def test_small_counts_are_withheld_zero_is_not() -> None:
    assert [od.count(n) for n in (0, 1, 4, 5, 120)] == [0, None, None, 5, 120]
    assert od.cell(None) == "<5" and od.cell(0) == "0" and od.cell(2.50) == "2.5"


def test_a_lone_withheld_cell_takes_the_next_smallest_with_it() -> None:
    raw = [6, 5, 2, 0]
    assert od.complementary([od.count(n) for n in raw], raw) == [6, None, None, 0]
    raw = [6, 5, 2, 1]  # two withheld already: neither can be had from a total
    assert od.complementary([od.count(n) for n in raw], raw) == [6, 5, None, None]


def test_monthly_totals_move_by_zero_or_at_least_the_threshold() -> None:
    joined = ([datetime(2026, 1, 5, tzinfo=UTC)] * 3 + [datetime(2026, 3, 5, tzinfo=UTC)] * 4
              + [datetime(2026, 4, 5, tzinfo=UTC)] * 10 + [datetime(2026, 5, 5, tzinfo=UTC)])
    raw = od.usage("registered", joined, now=datetime(2026, 6, 10, tzinfo=UTC))
    assert [(m.month, m.new, m.total) for m in raw.months] == [
        ("2026-01", 3, 3), ("2026-02", 0, 3), ("2026-03", 4, 7), ("2026-04", 10, 17), ("2026-05", 1, 18),
        ("2026-06", 0, 18)]
    shown = od.published(raw)
    assert [(m.month, m.new, m.total) for m in shown.months] == [
        ("2026-01", None, None), ("2026-02", None, None), ("2026-03", 7, 7), ("2026-04", 10, 17),
        ("2026-05", None, None), ("2026-06", None, None)]
    assert shown.total is None  # the total now would give May's one person away
    published = [m.total for m in shown.months if m.total is not None]
    assert all(b - a == 0 or b - a >= od.SUPPRESS_BELOW for a, b in zip([0, *published], published, strict=False))
