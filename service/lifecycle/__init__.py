"""A call's life as writer commands (ingest, team status, overrides, follow-ups,
check-ins, rejects) and the reads of calls."""
