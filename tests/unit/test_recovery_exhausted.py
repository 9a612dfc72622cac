"""A stall the recovery policy does not rerun: the budget is spent, or recoveryPolicy is Fail.

Flows are built by `recovery_flows`; the clock is fixed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.api.models import CollectionFlowStatus, ConditionType, FlowState, PhaseRunState
from collectionflow.api.names import job_name
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.decision import FlowEvent
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan
from unit.recovery_flows import (
    BACKOFF,
    MAX_RECOVERIES,
    NOW,
    PHASE,
    RERUN_REASONS,
    TICK,
    conditions,
    decided_status,
    plan,
    recovered,
    running,
)

pytestmark = pytest.mark.unit


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
    assert (failure.operation, failure.error_message) == (reason, p.summary)
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
