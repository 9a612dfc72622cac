"""A flow's phase history: one entry per attempt, the newest `HISTORY_LIMIT` kept."""

from __future__ import annotations

import datetime as dt

from collectionflow.api.models import CollectionFlowStatus, PhaseHistoryEntry, PhaseRunState

HISTORY_LIMIT = 50


def open_attempt(status: CollectionFlowStatus, entry: PhaseHistoryEntry) -> list[PhaseHistoryEntry]:
    """The history with `entry` (a started attempt) last, replacing an entry of the same
    attempt; the oldest entries go past `HISTORY_LIMIT`."""
    kept = [
        h for h in status.phase_history if not (h.name == entry.name and h.attempt == entry.attempt)
    ]
    return [*kept, entry][-HISTORY_LIMIT:]


def close_attempt(
    status: CollectionFlowStatus,
    phase: str,
    attempt: int,
    state: PhaseRunState,
    now: dt.datetime,
    message: str | None,
) -> list[PhaseHistoryEntry]:
    """The history with the running entry of `phase` and `attempt` finished in `state`."""
    closed = []
    for entry in status.phase_history:
        if (
            entry.name == phase
            and entry.attempt == attempt
            and entry.state is PhaseRunState.RUNNING
        ):
            entry = entry.model_copy(
                update={"state": state, "finished_at": now, "message": message}
            )
        closed.append(entry)
    return closed
