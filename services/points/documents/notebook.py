"""まちづくり手帳 (the activity notebook) as PDF: A4 landscape pages with the table, its totals and the comparison with
the district and the region, the header and page number on every page, the Japanese font embedded.

The cells come as text from services/points/notebook.py (`table_rows`, the same as the CSV's), so the two exports
always say the same thing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from towntip.kernel import pdf

# Date, field, activity, kind, points, contribution, donation, empathy, CO2, hours, kcal: 780 of 842 points.
WIDTHS = (70, 124, 146, 50, 56, 62, 46, 46, 76, 44, 60)
FIGURES_FROM = 4  # the columns from here on are numbers: right-aligned
MARGIN = 31


def notebook_pdf(*, title: str, heading: str, subheading: str, head: Sequence[str], rows: Sequence[Sequence[str]],
                 summary: Sequence[Sequence[str]], note: str) -> bytes:
    """`rows` and `summary` have one cell per column of `head`; a summary line's label (its first cell) spans the
    date, field and activity columns."""
    page_w, page_h = pdf.A4_LANDSCAPE

    def header(c: Any, page: int) -> None:
        pdf.draw(c, MARGIN, page_h - 40, heading, 15)
        pdf.draw(c, MARGIN, page_h - 58, subheading, 9)
        pdf.draw(c, page_w - MARGIN, page_h - 58, f"p.{page}", 9, align="right")

    data: list[list[str]] = [list(head), *[list(r) for r in rows]]
    first = len(data)
    data += [[s[0], "", "", *s[3:]] for s in summary]
    extra: list[tuple[Any, ...]] = [("LINEABOVE", (0, first), (-1, first), 0.8, pdf.colors.black)] if summary else []
    extra += [("SPAN", (0, i), (2, i)) for i in range(first, len(data))]
    extra += [("BACKGROUND", (0, i), (-1, i), pdf.colors.Color(0.97, 0.97, 0.97)) for i in range(first, len(data))]
    # Headers at 8 pt, a unit that does not fit going to a second line; the lines at 9 pt.
    head_cells: list[Any] = [pdf.paragraph(_unit_below(h, w), 8, leading=10,
                                           align="right" if i >= FIGURES_FROM else "left")
                             for i, (h, w) in enumerate(zip(head, WIDTHS, strict=True))]
    # The note closes the table as its last line, as in the CSV, so it never stands alone on a page of its own.
    last = len(data)
    body = [head_cells, *data[1:], [pdf.paragraph(note, 8, leading=11)] + [""] * (len(head) - 1)]
    extra += [("SPAN", (0, last), (-1, last)), ("LINEBELOW", (0, last), (-1, last), 0.6, pdf.colors.white),
              ("TOPPADDING", (0, last), (-1, last), 6)]
    table = pdf.table(body, WIDTHS, size=9, right_from=FIGURES_FROM, extra=extra)
    return pdf.story_pdf([table], title=title, page_size=pdf.A4_LANDSCAPE, margins=MARGIN, top=70, on_page=header,
                         subject=heading)


def _unit_below(label: str, width: float) -> str:
    """負荷削減(kg-CO2) as 負荷削減 over (kg-CO2) where it does not fit on one line, rather than cut anywhere."""
    if pdf.text_width(label, 8) <= width - 5 or "(" not in label:
        return label
    name, unit = label.split("(", 1)
    return f"{name.rstrip()}\n({unit}"
