"""The points service's documents as PDFs, on the node's toolkit (towntip/kernel/pdf.py): the donation receipt
(receipt.py), the activity notebook (notebook.py) and the signed course certificate (certificate.py: its JWS; the
portal prints its PDF)."""
