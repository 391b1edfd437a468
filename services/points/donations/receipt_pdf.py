"""A small hand-written PDF writer for the donation receipt (寄附金受領証明書): one A4 page, text and lines.

Japanese text uses the standard CID font HeiseiKakuGo-W5 (a Type0 font, encoding UniJIS-UCS2-H, strings as UTF-16BE
hex), which PDF readers provide without embedding; a ToUnicode map makes the text searchable and extractable.
Characters beyond the Basic Multilingual Plane (UCS-2 cannot carry them) are written as 〓."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

FONT = "HeiseiKakuGo-W5"
A4 = (595, 842)  # points


def _ucs2(text: str) -> str:
    return "".join(ch if ord(ch) <= 0xFFFF else "〓" for ch in text)


def _pdf_string(text: str) -> str:
    """A hex string of UTF-16BE (UCS-2) code units, as UniJIS-UCS2-H reads them."""
    return "<" + _ucs2(text).encode("utf-16-be").hex().upper() + ">"


def text_width(text: str, size: float) -> float:
    """Width as the font's W array says: half-width (ASCII, half-width kana) 500, everything else 1000 /1000 em."""
    return sum(500 if ord(ch) < 0x7F or 0xFF61 <= ord(ch) <= 0xFF9F else 1000 for ch in _ucs2(text)) * size / 1000


@dataclass
class Page:
    """Drawing operations, in PDF units from the bottom left."""

    ops: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def text(self, x: float, y: float, text: str, size: float = 11) -> None:
        self.used.update(_ucs2(text))
        self.ops.append(f"BT /F1 {size:g} Tf {x:.2f} {y:.2f} Td {_pdf_string(text)} Tj ET")

    def centred(self, y: float, text: str, size: float = 11) -> None:
        self.text((A4[0] - text_width(text, size)) / 2, y, text, size)

    def right(self, x_right: float, y: float, text: str, size: float = 11) -> None:
        self.text(x_right - text_width(text, size), y, text, size)

    def line(self, x1: float, y1: float, x2: float, y2: float, width: float = 0.8) -> None:
        self.ops.append(f"{width:g} w {x1:.2f} {y1:.2f} m {x2:.2f} {y2:.2f} l S")

    def rect(self, x: float, y: float, w: float, h: float, width: float = 1.2) -> None:
        self.ops.append(f"{width:g} w {x:.2f} {y:.2f} {w:.2f} {h:.2f} re S")


def _to_unicode(chars: set[str]) -> bytes:
    """A ToUnicode CMap: each code used maps to itself (the codes are UCS-2)."""
    codes = sorted({ord(c) for c in chars})
    lines = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
             "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
             "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
             "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
    for start in range(0, len(codes), 100):
        chunk = codes[start:start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines += [f"<{c:04X}> <{c:04X}>" for c in chunk]
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


def render(page: Page, *, title: str) -> bytes:
    """The page as a complete PDF 1.4 file."""
    content = zlib.compress("\n".join(page.ops).encode("ascii"))
    cmap = zlib.compress(_to_unicode(page.used))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {A4[0]} {A4[1]}] "
         "/Resources << /Font << /F1 4 0 R >> >> /Contents 7 0 R >>").encode(),
        f"<< /Type /Font /Subtype /Type0 /BaseFont /{FONT} /Encoding /UniJIS-UCS2-H "
        "/DescendantFonts [5 0 R] /ToUnicode 8 0 R >>".encode(),
        f"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /{FONT} "
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (Japan1) /Supplement 2 >> "
        "/FontDescriptor 6 0 R /DW 1000 /W [1 95 500 231 632 500] >>".encode(),
        f"<< /Type /FontDescriptor /FontName /{FONT} /Flags 4 /FontBBox [-92 -250 1010 922] /ItalicAngle 0 "
        "/Ascent 752 /Descent -221 /CapHeight 737 /StemV 114 /XHeight 553 >>".encode(),
        f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode() + content + b"\nendstream",
        f"<< /Length {len(cmap)} /Filter /FlateDecode >>\nstream\n".encode() + cmap + b"\nendstream",
        f"<< /Title <FEFF{_pdf_string(title)[1:-1]}> /Producer (TownTip Commons) >>".encode(),  # text string: BOM
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


@dataclass(frozen=True)
class ReceiptData:
    receipt_no: str
    issued_on: str  # 2025年5月3日
    donor_name: str
    amount_yen: int
    project_title: str
    project_organisation: str
    received_on: str
    reference: str
    issuer: str  # the municipality (or the node id)
    node: str


def receipt(d: ReceiptData) -> bytes:
    """寄附金受領証明書 for one confirmed donation."""
    p = Page()
    w, h = A4
    p.rect(40, 60, w - 80, h - 120)
    p.right(w - 60, h - 95, f"No. {d.receipt_no}", 10)
    p.right(w - 60, h - 112, f"発行日 {d.issued_on}", 10)
    p.centred(h - 170, "寄附金受領証明書", 24)
    p.text(80, h - 240, f"{d.donor_name} 様", 16)
    p.line(80, h - 246, 330, h - 246)
    amount = f"金 {d.amount_yen:,} 円"
    p.centred(h - 320, amount, 26)
    p.line(150, h - 330, w - 150, h - 330, 1.2)
    p.text(80, h - 380, "上記の金額を、寄附によるまちづくり条例に基づく認定プロジェクトへの", 11)
    p.text(80, h - 398, "寄附金として受領したことを証明します。", 11)
    rows = [("寄附先プロジェクト", d.project_title), ("実施団体", d.project_organisation),
            ("受領日", d.received_on), ("寄附金額", f"{d.amount_yen:,} 円"), ("受付番号", d.reference)]
    y = h - 450
    for label, value in rows:
        p.text(80, y, label, 11)
        p.text(210, y, value[:40], 11)
        p.line(80, y - 6, w - 80, y - 6, 0.4)
        y -= 28
    p.text(80, y - 30, "この証明書は、寄附金控除の申告の際に必要となりますので、大切に保管してください。", 9)
    p.right(w - 80, 150, d.issuer, 14)
    p.right(w - 80, 128, f"TownTip 地域協働ポータル ノード {d.node}", 9)
    return render(p, title=f"寄附金受領証明書 {d.receipt_no}")
