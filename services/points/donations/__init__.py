"""Donations (寄附) to certified projects, their confirmation and receipts."""
