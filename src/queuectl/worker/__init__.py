"""Workers: the claim-run-finish loop, its heartbeat, and the supervisor of N processes."""
