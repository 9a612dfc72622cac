"""Flows driven through `decide` to the state a machine test needs, and their builders."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from collectionflow.api.models import (
    CollectionFlowSpec,
    CollectionFlowStatus,
    ConditionType,
)
from collectionflow.domain.decision import (
    Decision,
    FlowView,
    JobObservation,
    JobState,
)
from collectionflow.domain.machine import decide
from collectionflow.domain.registry import COLLECTION
from collectionflow.domain.results import PhaseOutcome, PhaseResult

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)
LATEST = NOW + dt.timedelta(hours=1)
GENERATION = 3
PHASES = COLLECTION.phase_names


# --- builders ------------------------------------------------------------------------------


def spec(**fields: Any) -> CollectionFlowSpec:
    return CollectionFlowSpec.model_validate(fields)


def pending(**fields: Any) -> FlowView:
    defaults: dict[str, Any] = {
        "namespace": "team-a",
        "name": "demo",
        "uid": "6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21",
        "generation": GENERATION,
        "spec": spec(),
        "status": CollectionFlowStatus(),
    }
    return FlowView(**(defaults | fields))


def then(flow: FlowView, decision: Decision, **fields: Any) -> FlowView:
    """The flow once `decision` was carried out (and, optionally, the user changed it)."""
    assert decision.status is not None, decision
    return replace(flow, status=decision.status, **fields)


def result(next_phase: str | None = None, **fields: Any) -> PhaseResult:
    return PhaseResult(**({"state": PhaseOutcome.SUCCEEDED, "next_phase": next_phase} | fields))


def job(flow: FlowView, state: JobState = JobState.SUCCEEDED, **fields: Any) -> JobObservation:
    """An observation of the flow's current Job."""
    assert flow.status.current_job is not None
    defaults: dict[str, Any] = {"exit_code": 0 if state is JobState.SUCCEEDED else None}
    return JobObservation(flow.status.current_job, state, **(defaults | fields))


def at(phase: str, **fields: Any) -> FlowView:
    """A flow whose first phase succeeded and named `phase` next (Running or WaitingForInput)."""
    flow = pending(**fields)
    flow = then(flow, decide(flow, None, NOW))
    if phase != COLLECTION.first_phase:
        flow = then(flow, decide(flow, job(flow, result=result(phase)), NOW))
    assert flow.status.phase == phase
    return flow


def failed(phase: str = "platform_detection", **fields: Any) -> FlowView:
    flow = at(phase, **fields)
    return then(flow, decide(flow, job(flow, JobState.FAILED, exit_code=2), LATER))


def condition_statuses(status: CollectionFlowStatus) -> dict[ConditionType, str]:
    return {c.type: c.status for c in status.conditions}


def reasons(decision: Decision) -> list[str]:
    return [e.reason for e in decision.events]


def new_status(decision: Decision) -> CollectionFlowStatus:
    assert decision.status is not None, decision
    return decision.status
