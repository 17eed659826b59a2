"""Operations: replay the event log through the router, redrive dead letters (`python -m loyalty.ops`)."""
