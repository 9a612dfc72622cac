"""The recovery policy of a stalled flow: advance, re-sync, rerun the phase, back off, or fail.

Flows are reached through `decide` (and earlier recoveries through `plan_recovery` itself), so
every plan is made for a status the operator really produces; the clock is fixed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from collectionflow.api.models import (
    CollectionFlowSpec,
    CollectionFlowStatus,
    ConditionType,
    FlowState,
    PhaseRunState,
    RecoveryPolicy,
)
from collectionflow.api.names import job_name
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.decision import (
    NOTHING,
    Decision,
    FlowEvent,
    FlowView,
    JobObservation,
    JobState,
    StartPhase,
)
from collectionflow.domain.machine import decide
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan, plan_recovery
from collectionflow.domain.registry import COLLECTION
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.domain.stall import RERUNS_PHASE, STALL_REASONS, Finding

pytestmark = pytest.mark.unit

STARTED = dt.datetime(2024, 5, 1, 11, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)
BACKOFF = dt.timedelta(minutes=1)
MAX_RECOVERIES = 2
GENERATION = 4
PHASE = "gap_analysis"
RERUN_REASONS = sorted(RERUNS_PHASE)


# --- builders ------------------------------------------------------------------------------


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


# --- advance, re-sync ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "action", "summary"),
    [
        (
            ConditionReason.MISSED_COMPLETION,
            RecoveryAction.ADVANCE,
            "advanced past the finished phase without rerunning it",
        ),
        (
            ConditionReason.DATABASE_DRIFT,
            RecoveryAction.RESYNC,
            "re-synced the database from the flow",
        ),
    ],
)
@pytest.mark.parametrize(
    ("policy", "max_recoveries"),
    [
        pytest.param(RecoveryPolicy.RETRY_PHASE, MAX_RECOVERIES, id="retry-phase"),
        pytest.param(RecoveryPolicy.RETRY_PHASE, 0, id="no-recoveries-left"),
        pytest.param(RecoveryPolicy.FAIL, MAX_RECOVERIES, id="policy-fail"),
    ],
)
def test_a_missed_completion_advances_and_drift_resyncs_whatever_the_policy(
    reason: ConditionReason,
    action: RecoveryAction,
    summary: str,
    policy: RecoveryPolicy,
    max_recoveries: int,
) -> None:
    flow = running(recoveryPolicy=policy.value)
    assert plan(flow, reason, max_recoveries=max_recoveries) == RecoveryPlan(
        action, summary=summary
    )


# --- RetryPhase ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason", RERUN_REASONS)
def test_a_rerun_reason_starts_the_phase_again_as_its_next_attempt(reason: ConditionReason) -> None:
    flow = running()
    stale_job = job_name("demo", PHASE, 1)
    new_job = job_name("demo", PHASE, 2)
    p = plan(flow, reason)
    assert (p.action, p.delete_job, p.exhausted) == (RecoveryAction.RETRY_PHASE, stale_job, False)
    assert p.summary == f"started phase {PHASE} again as attempt 2 (recovery 1 of 2)"

    assert p.decision is not None
    assert p.decision.start == StartPhase(PHASE, 2, None)
    assert p.decision.failure is None
    assert p.decision.events == (
        FlowEvent("Normal", EventReason.PHASE_STARTED, f"running phase {PHASE} (attempt 2)"),
    )
    status = decided_status(p)
    assert (status.state, status.phase, status.next_phase) == (
        FlowState.RUNNING,
        PHASE,
        "questionnaire_generation",
    )
    assert (status.attempt, status.recoveries, status.current_job) == (2, 1, new_job)
    assert status.last_recovery_time == status.last_progress_time == NOW
    assert status.completed_at is None

    *earlier, stale, fresh = status.phase_history
    assert [(h.name, h.state) for h in earlier] == [("initialization", PhaseRunState.SUCCEEDED)]
    assert (stale.name, stale.attempt, stale.job_name, stale.state) == (
        PHASE,
        1,
        stale_job,
        PhaseRunState.ABANDONED,
    )
    assert (stale.started_at, stale.finished_at, stale.message) == (
        STARTED,
        NOW,
        f"stalled: {reason.value}",
    )
    assert (fresh.name, fresh.attempt, fresh.job_name, fresh.state) == (
        PHASE,
        2,
        new_job,
        PhaseRunState.RUNNING,
    )
    assert (fresh.started_at, fresh.finished_at) == (NOW, None)

    assert conditions(status) == {
        ConditionType.READY: ("False", "Recovering"),
        ConditionType.RECONCILING: ("True", "Recovering"),
        ConditionType.STALLED: ("True", "Recovering"),
        ConditionType.SUCCEEDED: ("Unknown", "Recovering"),
    }
    stalled = status.condition(ConditionType.STALLED)
    assert stalled is not None
    assert (stalled.last_transition_time, stalled.observed_generation) == (NOW, GENERATION)


def test_each_recovery_abandons_its_attempt_and_counts() -> None:
    flow = recovered(running(), 2)
    status = flow.status
    assert (status.attempt, status.recoveries) == (3, 2)
    assert status.last_recovery_time == NOW + BACKOFF
    assert status.current_job == job_name("demo", PHASE, 3)
    assert [(h.name, h.attempt, h.state) for h in status.phase_history] == [
        ("initialization", 1, PhaseRunState.SUCCEEDED),
        (PHASE, 1, PhaseRunState.ABANDONED),
        (PHASE, 2, PhaseRunState.ABANDONED),
        (PHASE, 3, PhaseRunState.RUNNING),
    ]
    stalled = status.condition(ConditionType.STALLED)
    assert stalled is not None
    assert (stalled.status, stalled.last_transition_time) == ("True", NOW), "still the first stall"


# --- backoff -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since_last_recovery", "action", "summary"),
    [
        (dt.timedelta(0), RecoveryAction.BACK_OFF, "next recovery in 60s"),
        (dt.timedelta(seconds=15), RecoveryAction.BACK_OFF, "next recovery in 45s"),
        (BACKOFF - TICK, RecoveryAction.BACK_OFF, "next recovery in 0s"),
        (BACKOFF, RecoveryAction.RETRY_PHASE, "started phase gap_analysis again as attempt 3 "),
        (BACKOFF + TICK, RecoveryAction.RETRY_PHASE, "started phase gap_analysis again"),
    ],
)
def test_a_recovery_waits_for_the_backoff_after_the_previous_one(
    since_last_recovery: dt.timedelta, action: RecoveryAction, summary: str
) -> None:
    flow = recovered(running(), 1)
    p = plan(flow, now=NOW + since_last_recovery)
    assert p.action is action
    assert p.summary.startswith(summary)
    if action is RecoveryAction.BACK_OFF:
        assert p == RecoveryPlan(RecoveryAction.BACK_OFF, summary=p.summary)
    else:
        assert decided_status(p).attempt == 3


def test_the_first_recovery_does_not_wait() -> None:
    assert plan(running(), now=STARTED + TICK).action is RecoveryAction.RETRY_PHASE


# --- exhausted, recoveryPolicy Fail --------------------------------------------------------


def assert_failed(
    p: RecoveryPlan, reason: str, attempt: int, now: dt.datetime = NOW
) -> CollectionFlowStatus:
    """The flow failed for `reason` at `attempt`, its Job to be deleted, journaled and told."""
    stale_job = job_name("demo", PHASE, attempt)
    assert (p.action, p.delete_job) == (RecoveryAction.FAIL, stale_job)
    assert p.decision is not None
    assert p.decision.start is None
    assert p.decision.events == (FlowEvent("Warning", EventReason.FLOW_FAILED, p.summary),)
    status = decided_status(p)
    assert (status.state, status.current_job, status.completed_at) == (FlowState.FAILED, None, now)
    assert (status.phase, status.attempt, status.message) == (PHASE, attempt, p.summary)
    assert conditions(status) == {
        ConditionType.READY: ("False", reason),
        ConditionType.RECONCILING: ("False", reason),
        ConditionType.STALLED: ("True", reason),
        ConditionType.SUCCEEDED: ("False", reason),
    }
    last = status.phase_history[-1]
    assert (last.name, last.attempt, last.state, last.message) == (
        PHASE,
        attempt,
        PhaseRunState.FAILED,
        p.summary,
    )
    failure = p.decision.failure
    assert failure is not None
    assert (failure.operation, failure.phase, failure.attempt, failure.error_message) == (
        reason,
        PHASE,
        attempt,
        p.summary,
    )
    assert failure.next_phase == "questionnaire_generation"
    assert failure.diagnostics == {
        "reason": reason,
        "phase": PHASE,
        "next_phase": "questionnaire_generation",
        "attempt": attempt,
        "state_before": "Running",
    }
    return status


@pytest.mark.parametrize("reason", RERUN_REASONS)
def test_a_stall_after_the_last_recovery_fails_the_flow_as_exhausted(
    reason: ConditionReason,
) -> None:
    flow = recovered(running(), MAX_RECOVERIES)
    later = NOW + BACKOFF * 10
    p = plan(flow, reason, now=later)
    assert p.exhausted
    assert p.summary == (f"stalled ({reason.value}) after 2 of 2 recoveries: {reason.value} seen")
    status = assert_failed(p, "RecoveryExhausted", attempt=3, now=later)
    assert status.recoveries == MAX_RECOVERIES


def test_exhaustion_is_not_postponed_by_the_backoff() -> None:
    flow = recovered(running(), MAX_RECOVERIES)
    last_recovery = flow.status.last_recovery_time
    assert last_recovery is not None
    p = plan(flow, now=last_recovery + TICK)
    assert (p.action, p.exhausted) == (RecoveryAction.FAIL, True)


def test_with_no_recoveries_allowed_the_first_stall_fails_the_flow() -> None:
    p = plan(running(), ConditionReason.JOB_MISSING, max_recoveries=0)
    assert p.exhausted
    assert p.summary.startswith("stalled (JobMissing) after 0 of 0 recoveries: ")
    assert_failed(p, "RecoveryExhausted", attempt=1)


@pytest.mark.parametrize("reason", RERUN_REASONS)
def test_recovery_policy_fail_fails_at_once_with_the_stall_reason(reason: ConditionReason) -> None:
    flow = running(recoveryPolicy="Fail")
    p = plan(flow, reason)
    assert not p.exhausted
    assert p.summary == (
        f"stalled ({reason.value}) and recoveryPolicy is Fail: {reason.value} seen"
    )
    status = assert_failed(p, reason.value, attempt=1)
    assert (status.recoveries, status.last_recovery_time) == (0, None)


# --- after the recovery --------------------------------------------------------------------


def test_the_recovered_attempt_stays_stalled_while_it_runs() -> None:
    flow = recovered(running(), 1)
    assert flow.status.current_job is not None
    active = JobObservation(flow.status.current_job, JobState.ACTIVE)
    assert decide(flow, active, NOW + BACKOFF) == NOTHING


@pytest.mark.parametrize(
    ("phase", "state", "reason"),
    [
        pytest.param(PHASE, FlowState.RUNNING, "PhaseRunning", id="next-phase-runs"),
        pytest.param(
            "questionnaire_generation",
            FlowState.WAITING_FOR_INPUT,
            "WaitingForInput",
            id="next-phase-waits",
        ),
        pytest.param("synthesis", FlowState.SUCCEEDED, "Succeeded", id="last-phase"),
    ],
)
def test_once_the_recovered_attempt_succeeds_the_flow_is_no_longer_stalled(
    phase: str, state: FlowState, reason: str
) -> None:
    flow = recovered(running(phase), 1)
    later = NOW + dt.timedelta(minutes=3)
    decision = decide(flow, succeeded(flow), later)
    assert decision.finished is not None
    assert (decision.finished.phase, decision.finished.attempt) == (phase, 2)
    status = decision.status
    assert status is not None
    assert status.state is state
    stalled = status.condition(ConditionType.STALLED)
    assert stalled is not None
    assert (stalled.status, stalled.reason, stalled.last_transition_time) == (
        "False",
        reason,
        later,
    )
    assert [h.state for h in status.phase_history if h.name == phase] == [
        PhaseRunState.ABANDONED,
        PhaseRunState.SUCCEEDED,
    ]


def test_the_stall_reasons_rerun_the_phase_except_a_missed_completion_and_drift() -> None:
    assert {
        ConditionReason.MISSED_COMPLETION,
        ConditionReason.DATABASE_DRIFT,
    } == STALL_REASONS - RERUNS_PHASE
