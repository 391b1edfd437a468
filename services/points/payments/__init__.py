"""Payments of facility fees for the bookings service: charges and refunds through the ledger."""
