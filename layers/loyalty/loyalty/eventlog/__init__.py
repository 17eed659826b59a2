"""The canonical event log: every accepted event, stored once by event id."""
