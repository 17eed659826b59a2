"""Channel ingest: verify signed webhooks, normalise them into canonical events, queue them."""
