"""The ledger: double-entry journal and postings, balances, asset rules (expiry, demurrage), operator endpoints."""
