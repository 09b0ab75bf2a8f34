"""The agent core (async, no UI): loop, history, compaction, token accounting."""
