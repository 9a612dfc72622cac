"""Flows for the recovery tests, reached through `decide` (and earlier recoveries through
`plan_recovery` itself), so every plan is made for a status the operator really produces; the
clock is fixed."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from collectionflow.api.models import (
    CollectionFlowSpec,
    CollectionFlowStatus,
    ConditionType,
    FlowState,
)
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import Decision, FlowView, JobObservation, JobState
from collectionflow.domain.machine import decide
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan, plan_recovery
from collectionflow.domain.registry import COLLECTION
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.domain.stall import RERUNS_PHASE, Finding

STARTED = dt.datetime(2024, 5, 1, 11, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)
BACKOFF = dt.timedelta(minutes=1)
MAX_RECOVERIES = 2
GENERATION = 4
PHASE = "gap_analysis"
RERUN_REASONS = sorted(RERUNS_PHASE)


def then(flow: FlowView, decision: Decision | None) -> FlowView:
    assert decision is not None
    assert decision.status is not None, decision
    return replace(flow, status=decision.status)


def succeeded(flow: FlowView, next_phase: str | None = None) -> JobObservation:
    """The flow's current Job, complete, with a result naming `next_phase`."""
    assert flow.status.current_job is not None
    result = PhaseResult(state=PhaseOutcome.SUCCEEDED, next_phase=next_phase)
    return JobObservation(flow.status.current_job, JobState.SUCCEEDED, result=result, exit_code=0)


def running(phase: str = PHASE, **spec_fields: Any) -> FlowView:
    """A flow whose first phase succeeded (at STARTED) and named `phase` next: attempt 1."""
    flow = FlowView(
        namespace="team-a",
        name="demo",
        uid="6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21",
        generation=GENERATION,
        spec=CollectionFlowSpec.model_validate(spec_fields),
        status=CollectionFlowStatus(),
    )
    flow = then(flow, decide(flow, None, STARTED))
    if phase != COLLECTION.first_phase:
        flow = then(flow, decide(flow, succeeded(flow, phase), STARTED))
    assert (flow.status.state, flow.status.phase, flow.status.attempt) == (
        FlowState.RUNNING,
        phase,
        1,
    )
    return flow


def finding(reason: ConditionReason = ConditionReason.NO_PROGRESS) -> Finding:
    return Finding(reason, f"{reason.value} seen", {"phase": PHASE, "attempt": 1})


def plan(
    flow: FlowView,
    reason: ConditionReason = ConditionReason.NO_PROGRESS,
    now: dt.datetime = NOW,
    max_recoveries: int = MAX_RECOVERIES,
) -> RecoveryPlan:
    return plan_recovery(flow, finding(reason), now, max_recoveries, BACKOFF)


def recovered(flow: FlowView, times: int, first: dt.datetime = NOW) -> FlowView:
    """`flow` after `times` recoveries, each exactly one backoff after the previous one."""
    for n in range(times):
        step = plan(flow, now=first + n * BACKOFF, max_recoveries=times)
        assert step.action is RecoveryAction.RETRY_PHASE, step
        flow = then(flow, step.decision)
    return flow


def conditions(status: CollectionFlowStatus) -> dict[ConditionType, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def decided_status(p: RecoveryPlan) -> CollectionFlowStatus:
    assert p.decision is not None, p
    assert p.decision.status is not None, p
    return p.decision.status
