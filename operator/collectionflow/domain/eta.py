"""When a running flow should be done: each phase's usual duration, from the phase runs the
database holds for its flow type, added up over what is left. Pure.

The estimate is the median of the phase runs that succeeded lately, for the phase under way
less what it has run already, plus the medians of the phases after it in the registry's order,
each scaled by the flow's own pace so far (its finished phases' time over their medians).
A phase with no run to go by leaves the estimate unknown (None); so does waiting for input,
which no duration predicts.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collectionflow.api.models import CollectionFlowStatus, FlowState, PhaseRunState
from collectionflow.domain.registry import FlowDefinition


@dataclass(frozen=True)
class PhaseStats:
    median: float
    p90: float
    runs: int


def phase_stats(samples: Mapping[str, Sequence[float]]) -> dict[str, PhaseStats]:
    """Median and 90th percentile (seconds) of each phase's recent durations."""
    stats = {}
    for phase, durations in samples.items():
        ordered = sorted(durations)
        if not ordered:
            continue
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        stats[phase] = PhaseStats(statistics.median(ordered), p90, len(ordered))
    return stats


def estimated_completion(
    definition: FlowDefinition,
    status: CollectionFlowStatus,
    stats: Mapping[str, PhaseStats],
    now: dt.datetime,
) -> dt.datetime | None:
    """When the running flow of `status` should succeed; None when nothing tells."""
    if status.state is not FlowState.RUNNING or status.phase is None:
        return None
    names = definition.phase_names
    if status.phase not in names:
        return None
    current = stats.get(status.phase)
    if current is None:
        return None
    started = next(
        (
            h.started_at
            for h in reversed(status.phase_history)
            if h.name == status.phase and h.attempt == status.attempt and h.started_at
        ),
        now,
    )
    pace = _pace(status, stats)
    remaining = max(current.median * pace - (now - started).total_seconds(), 0.0)
    for phase in names[names.index(status.phase) + 1 :]:
        if definition.phase(phase).manual:
            continue  # a person's answer: no duration predicts it; its run is short
        following = stats.get(phase)
        if following is None:
            return None
        remaining += following.median * pace
    return now + dt.timedelta(seconds=round(remaining))


PACE_BOUNDS = (0.5, 4.0)


def _pace(status: CollectionFlowStatus, stats: Mapping[str, PhaseStats]) -> float:
    """How fast this flow has gone so far against the usual: its succeeded phases' time over
    their medians (1 before any), within `PACE_BOUNDS`. A busy cluster slows every phase of a
    flow alike, so the phases left are scaled by it."""
    took = usual = 0.0
    for run in status.phase_history:
        known = stats.get(run.name)
        if run.state is PhaseRunState.SUCCEEDED and run.started_at and run.finished_at and known:
            took += (run.finished_at - run.started_at).total_seconds()
            usual += known.median
    if usual <= 0:
        return 1.0
    low, high = PACE_BOUNDS
    return min(max(took / usual, low), high)
