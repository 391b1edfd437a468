"""The donation receipt (寄附金受領証明書): made by services/points/documents/receipt.py on the node's PDF toolkit."""

from __future__ import annotations

from services.points.documents.receipt import ReceiptData, receipt

__all__ = ["ReceiptData", "receipt"]
