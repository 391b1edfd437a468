"""Taps and cards: check-in events and their rules, taps credited through the ledger, cards bound to people."""
