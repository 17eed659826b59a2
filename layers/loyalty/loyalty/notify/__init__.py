"""Notification fan-out: table changes -> consent-aware, capped, deduplicated messages per channel."""
