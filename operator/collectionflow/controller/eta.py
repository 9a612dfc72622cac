"""The estimated completion time a running flow's status carries, from its flow type's recent
phase durations (`domain.eta`), read from the database at most every five minutes per type
(every ten seconds while the type's first flows run)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from collectionflow.api.models import CollectionFlowStatus, FlowState
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.queries import FlowQueries
from collectionflow.domain.eta import PhaseStats, estimated_completion, phase_stats
from collectionflow.domain.registry import FlowDefinition, UnknownFlowType, flow_definition

REFRESH_SECONDS = 300.0
# While some automatic phase of the type has no run yet (its first flows): a batch of new flows
# moving together would otherwise read the durations at every transition.
PARTIAL_REFRESH_SECONDS = 10.0


class Durations:
    """Each flow type's phase statistics, kept for `REFRESH_SECONDS` once every automatic
    phase of the type has a run to go by, for `PARTIAL_REFRESH_SECONDS` until then."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._stats: dict[str, tuple[float, dict[str, PhaseStats]]] = {}

    async def of(self, queries: FlowQueries, definition: FlowDefinition) -> dict[str, PhaseStats]:
        cached = self._stats.get(definition.flow_type)
        if cached is not None and self._clock() < cached[0]:
            return cached[1]
        stats = phase_stats(await queries.phase_durations(definition.flow_type))
        whole = all(p.name in stats for p in definition.phases if not p.manual)
        keep = REFRESH_SECONDS if whole else PARTIAL_REFRESH_SECONDS
        self._stats[definition.flow_type] = (self._clock() + keep, stats)
        return stats


async def with_eta(
    durations: Durations,
    queries: FlowQueries,
    flow_type: str,
    status: CollectionFlowStatus,
    now: dt.datetime,
) -> CollectionFlowStatus:
    """`status` with its estimated completion time (none unless it runs); the one it had when
    the database cannot tell now."""
    eta = None
    if status.state is FlowState.RUNNING:
        try:
            definition = flow_definition(flow_type)
            eta = estimated_completion(
                definition, status, await durations.of(queries, definition), now
            )
        except UnknownFlowType:
            eta = None
        except DatabaseUnavailable:
            return status
    if eta == status.estimated_completion_time:
        return status
    return status.model_copy(update={"estimated_completion_time": eta})
