"""The recovery policy of a stalled flow: advance, re-sync, rerun the phase, back off.

Flows are built by `recovery_flows`; the clock is fixed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.api.models import ConditionType, FlowState, PhaseRunState, RecoveryPolicy
from collectionflow.api.names import job_name
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.decision import NOTHING, FlowEvent, JobObservation, JobState, StartPhase
from collectionflow.domain.machine import decide
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan
from collectionflow.domain.stall import RERUNS_PHASE, STALL_REASONS
from unit.recovery_flows import (
    BACKOFF,
    GENERATION,
    MAX_RECOVERIES,
    NOW,
    PHASE,
    RERUN_REASONS,
    STARTED,
    TICK,
    conditions,
    decided_status,
    plan,
    recovered,
    running,
    succeeded,
)

pytestmark = pytest.mark.unit

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
