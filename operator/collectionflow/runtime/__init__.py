"""The controller runtime: list-then-watch, per-object tasks with wake-ups, leader election
and health, knowing nothing of flows (`controller/` uses it)."""
