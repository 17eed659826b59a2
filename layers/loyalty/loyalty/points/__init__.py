"""Loyalty points: append-only ledger, lots, accrual rules, tiers, redemption and expiry."""
