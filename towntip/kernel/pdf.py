"""The node's PDF toolkit on ReportLab: A4 pages with the Japanese font embedded, text, paragraphs and tables.

The font is BIZ UDPGothic (Morisawa's universal-design Gothic, SIL Open Font License 1.1; the file and its licence in
`towntip/kernel/fonts/`), registered once per process and embedded in every PDF as a subset of the glyphs used, so a
document prints the same everywhere and its text (Latin letters and figures included) extracts whole. It is a
TrueType (glyf) font because ReportLab's TTFont reads no CFF outlines; the node ships it rather than naming a system
font, so a fresh clone makes the same documents on any machine.

Two ways to lay out a page, both in points from the bottom left:
- `Canvas`: fixed layouts (a receipt, a certificate): text at a place, centred or right-aligned, lines, boxes,
  wrapped paragraphs;
- `story_pdf`: flowing documents (the notebook): paragraphs and tables that break across pages, with a header drawn
  on each page.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Table, TableStyle

__all__ = ["A4", "A4_LANDSCAPE", "FONT", "FONT_FILE", "Canvas", "colors", "draw", "fit", "font", "paragraph",
           "printable", "story_pdf", "style", "table", "text_width"]

A4_LANDSCAPE = landscape(A4)
FONT = "BIZUDPGothic"
FONT_FILE = Path(__file__).with_name("fonts") / "BIZUDPGothic-Regular.ttf"
MISSING = "〓"  # 下駄記号: what Japanese print puts for a character the font does not have
PRODUCER = "TownTip Commons"


_registering = threading.Lock()


@functools.cache
def font() -> str:
    """The Japanese font's name, registered with ReportLab on first use (reading the file takes about 0.4 s). Under
    a lock: documents are laid out in worker threads too, and the first two may ask at once."""
    with _registering:
        if FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(FONT, str(FONT_FILE)))
            # <b>/<i> in a paragraph map to the same face rather than to a Latin Helvetica without Japanese glyphs.
            pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT, italic=FONT, boldItalic=FONT)
    return FONT


@functools.cache
def _covered() -> frozenset[int]:
    face = pdfmetrics.getFont(font()).face  # type: ignore[attr-defined]
    return frozenset(face.charToGlyph)


def printable(text: str) -> str:
    """The text as the font can print it: control characters dropped, characters it lacks (emoji, rare kanji outside
    JIS X 0213) shown as 〓 rather than as an empty box that extracts as nothing."""
    covered = _covered()
    out = []
    for ch in str(text):
        if ch in "\t\n\r" or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            out.append(" " if ch in "\t\n\r" else "")
        elif ord(ch) in covered or ch == " ":
            out.append(ch)
        else:
            out.append(MISSING)
    return "".join(out)


def text_width(text: str, size: float) -> float:
    return pdfmetrics.stringWidth(printable(text), font(), size)


def fit(text: str, width: float, size: float) -> str:
    """The text cut (with …) to fit `width` points at `size`: for one-line cells where wrapping is not wanted."""
    text = printable(text)
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


_ALIGN: dict[str, Literal[0, 1, 2]] = {"left": TA_LEFT, "centre": TA_CENTER, "right": TA_RIGHT}


def style(size: float = 10.5, *, leading: float | None = None, align: str = "left",
          colour: Any = colors.black) -> ParagraphStyle:
    """A paragraph style in the Japanese font; Japanese wraps between any two characters (wordWrap CJK)."""
    return ParagraphStyle(
        f"tt-{size}-{align}", fontName=font(), fontSize=size, leading=leading or size * 1.45,
        alignment=_ALIGN[align], wordWrap="CJK",
        textColor=colour)


def _markup(text: str) -> str:
    """Plain text as paragraph markup: ReportLab reads <, > and & as tags and entities."""
    return printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def paragraph(text: str, size: float = 10.5, **kw: Any) -> Paragraph:
    """A paragraph of plain text (never markup: names and titles come from people); a newline breaks the line."""
    return Paragraph("<br/>".join(_markup(line) for line in str(text).split("\n")), style(size, **kw))


def table(rows: Sequence[Sequence[str | Flowable]], widths: Sequence[float], *, size: float = 9,
          header_rows: int = 1, right_from: int | None = None, extra: Iterable[tuple[Any, ...]] = ()) -> Table:
    """A table whose cells are plain text (wrapped within their column) or flowables; the header rows repeat on each
    page and are shaded; columns from `right_from` on (figures) are right-aligned."""
    pad = 5.0  # left and right padding together

    def cell(value: str | Flowable, col: int) -> str | Flowable:
        if isinstance(value, Flowable):
            return value
        text = printable(str(value))
        # A line that fits stays a plain string: a Paragraph per cell is ten times slower on a long notebook.
        if "\n" not in str(value) and pdfmetrics.stringWidth(text, font(), size) <= widths[col] - pad:
            return text
        right = right_from is not None and col >= right_from
        return paragraph(str(value), size, leading=size * 1.3, align="right" if right else "left")

    data = [[cell(v, i) for i, v in enumerate(r)] for r in rows]
    commands: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), font(), size),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5), ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, colors.Color(0.75, 0.75, 0.75)),
        ("LEADING", (0, 0), (-1, -1), size * 1.3),
    ]
    if right_from is not None:
        commands.append(("ALIGN", (right_from, 0), (-1, -1), "RIGHT"))
    if header_rows:
        commands += [("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.Color(0.92, 0.95, 0.93)),
                     ("LINEBELOW", (0, header_rows - 1), (-1, header_rows - 1), 0.8, colors.black)]
    return Table(data, colWidths=list(widths), repeatRows=header_rows,
                 style=TableStyle(commands + list(extra)))


class Canvas:
    """One document drawn at fixed places: `page_size` points, the Japanese font, and its bytes at `finish()`."""

    def __init__(self, *, title: str, page_size: tuple[float, float] = A4, subject: str = "",
                 author: str = PRODUCER) -> None:
        self.size = page_size
        self._buf = io.BytesIO()
        self.c = canvas.Canvas(self._buf, pagesize=page_size, initialFontName=font(),  # type: ignore[arg-type]
                               initialFontSize=11, pdfVersion=(1, 4))  # (types-reportlab types the name a float)
        _describe(self.c, title=title, subject=subject, author=author)

    @property
    def width(self) -> float:
        return self.size[0]

    @property
    def height(self) -> float:
        return self.size[1]

    def text(self, x: float, y: float, text: str, size: float = 11, *, bold: bool = False,
             colour: Any = None, align: str = "left") -> None:
        """One line at (x, y): `align` says whether x is its left end, its centre or its right end. `bold` draws
        the outline too (the font has one weight), for titles."""
        t = printable(text)
        width = pdfmetrics.stringWidth(t, font(), size)
        left = {"left": x, "centre": x - width / 2, "right": x - width}[align]
        obj = self.c.beginText(left, y)
        obj.setFont(font(), size)
        if bold:
            obj.setTextRenderMode(2)  # fill and stroke: a heavier stroke without a second font file
            self.c.setLineWidth(size * 0.03)
        obj.textOut(t)
        self.c.saveState()
        if colour is not None:
            self.c.setFillColor(colour)
            self.c.setStrokeColor(colour)
        self.c.drawText(obj)
        self.c.restoreState()

    def centred(self, y: float, text: str, size: float = 11, **kw: Any) -> None:
        self.text(self.width / 2, y, text, size, align="centre", **kw)

    def line_or_lines(self, x: float, y: float, width: float, text: str, size: float, *, smallest: float,
                      **kw: Any) -> float:
        """A name or title that must be printed whole: one line at (x, y) at `size`, or smaller down to
        `smallest` so that it fits `width`, or else wrapped at `smallest` from there down. Gives the y of the
        bottom of the last line (below its descenders)."""
        needed = text_width(text, size)
        if needed <= width or text_width(text, smallest) <= width:
            fitted = size if needed <= width else max(smallest, size * width / needed)
            self.text(x, y, text, fitted, **kw)
            return y - fitted * 0.3
        return self.paragraph(x, y + smallest, width, text, smallest, **kw)

    def paragraph(self, x: float, y_top: float, width: float, text: str, size: float = 11, **kw: Any) -> float:
        """Plain text wrapped within `width` from `y_top` down; gives the y below it."""
        p = paragraph(text, size, **kw)
        _, h = p.wrap(width, self.height)
        p.drawOn(self.c, x, y_top - h)
        return y_top - h

    def flowable(self, f: Flowable, x: float, y_top: float, width: float) -> float:
        """A table (or any flowable) drawn with its top at `y_top`; gives the y below it."""
        _, h = f.wrap(width, self.height)
        f.drawOn(self.c, x, y_top - h)
        return y_top - h

    def line(self, x1: float, y1: float, x2: float, y2: float, width: float = 0.8, colour: Any = None) -> None:
        self.c.saveState()
        self.c.setLineWidth(width)
        if colour is not None:
            self.c.setStrokeColor(colour)
        self.c.line(x1, y1, x2, y2)
        self.c.restoreState()

    def rect(self, x: float, y: float, w: float, h: float, width: float = 1.2, colour: Any = None) -> None:
        self.c.saveState()
        self.c.setLineWidth(width)
        if colour is not None:
            self.c.setStrokeColor(colour)
        self.c.rect(x, y, w, h, stroke=1, fill=0)
        self.c.restoreState()

    def new_page(self) -> None:
        self.c.showPage()
        self.c.setFont(font(), 11)

    def finish(self) -> bytes:
        self.c.showPage()
        self.c.save()
        return self._buf.getvalue()


def story_pdf(story: list[Flowable], *, title: str, page_size: tuple[float, float] = A4, margins: float = 33,
              top: float = 40, on_page: Callable[[canvas.Canvas, int], None] | None = None,
              subject: str = "", author: str = PRODUCER) -> bytes:
    """Flowing content over as many pages as it needs; `on_page(canvas, page_number)` draws each page's header
    (the top `top` points are left for it)."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=page_size, leftMargin=margins, rightMargin=margins, topMargin=top,
                            bottomMargin=margins, title=printable(title), author=author, subject=subject,
                            creator=PRODUCER, initialFontName=font())

    def each(c: canvas.Canvas, d: Any) -> None:
        c.setFont(font(), 11)
        if on_page is not None:
            c.saveState()
            on_page(c, d.page)
            c.restoreState()

    doc.build(story, onFirstPage=each, onLaterPages=each)
    return buf.getvalue()


def draw(c: canvas.Canvas, x: float, y: float, text: str, size: float = 9, *, align: str = "left") -> None:
    """One line of plain text on a raw ReportLab canvas (for `story_pdf`'s page headers)."""
    c.setFont(font(), size)
    t = printable(text)
    {"left": c.drawString, "centre": c.drawCentredString, "right": c.drawRightString}[align](x, y, t)


def _describe(c: canvas.Canvas, *, title: str, subject: str, author: str) -> None:
    c.setTitle(printable(title))
    c.setAuthor(author)
    c.setSubject(subject)
    c.setCreator(PRODUCER)
