"""Pure logic of flows: registry, state machine, progress and stall rules. No I/O here."""
