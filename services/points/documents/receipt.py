"""寄附金受領証明書 (the donation receipt): one A4 page, the Japanese font embedded (towntip/kernel/pdf.py)."""

from __future__ import annotations

from dataclasses import dataclass

from towntip.kernel import pdf

GREEN = pdf.colors.Color(0.04, 0.43, 0.31)
GREY = pdf.colors.Color(0.35, 0.35, 0.35)


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
    donor_address: str = ""  # 寄附者の住所 (printed above the name when the donor gave it)


def receipt(d: ReceiptData) -> bytes:
    """寄附金受領証明書 for one confirmed donation."""
    doc = pdf.Canvas(title=f"寄附金受領証明書 {d.receipt_no}", subject="寄附金受領証明書")
    w, h = doc.width, doc.height
    doc.rect(40, 60, w - 80, h - 120, 1.2)
    doc.text(w - 60, h - 95, f"No. {d.receipt_no}", 10, align="right")
    doc.text(w - 60, h - 112, f"発行日 {d.issued_on}", 10, align="right")
    doc.centred(h - 170, "寄附金受領証明書", 24, bold=True)
    if d.donor_address:
        doc.text(80, h - 208, "住所", 9, colour=GREY)
        doc.line_or_lines(112, h - 208, w - 192, d.donor_address, 11, smallest=8)
        doc.text(80, h - 240, "氏名", 9, colour=GREY)
    name = f"{d.donor_name} 様"  # whole, however long (smaller, or over lines, rather than past the edge)
    left = 112 if d.donor_address else 80
    under = doc.line_or_lines(left, h - 240, w - 80 - left, name, 16, smallest=11) - 2
    doc.line(left, under, min(w - 80, max(330, left + pdf.text_width(name, 16) + 10)), under)
    doc.centred(h - 320, f"金 {d.amount_yen:,} 円", 26, bold=True)
    doc.line(150, h - 330, w - 150, h - 330, 1.2)
    doc.paragraph(80, h - 366, w - 160, "上記の金額を、寄附によるまちづくり条例に基づく認定プロジェクトへの"
                  "寄附金として受領したことを証明します。", 11, leading=18)
    rows = [("寄附先プロジェクト", d.project_title), ("実施団体", d.project_organisation),
            ("受領日", d.received_on), ("寄附金額", f"{d.amount_yen:,} 円"), ("受付番号", d.reference)]
    y = doc.flowable(pdf.table(rows, (130, w - 160 - 130), size=11, header_rows=0), 80, h - 430, w - 160)
    doc.paragraph(80, y - 24, w - 160,
                  "この証明書は、寄附金控除の申告の際に必要となりますので、大切に保管してください。",
                  9, colour=GREY)
    doc.text(w - 80, 150, d.issuer, 14, align="right")
    doc.text(w - 80, 128, f"TownTip 地域協働ポータル ノード {d.node}", 9, align="right", colour=GREY)
    return doc.finish()
