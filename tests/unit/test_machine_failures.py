"""The state machine's failures, suspends while running, invalid specs, retries and the
child-flow record.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from collectionflow.api.models import (
    CollectionFlowSpec,
    CollectionFlowStatus,
    ConditionType,
    FlowState,
    PhaseRunState,
)
from collectionflow.api.names import job_name
from collectionflow.api.reasons import EventReason
from collectionflow.domain.decision import (
    NOTHING,
    FlowEvent,
    JobState,
    PhaseFinished,
    StartPhase,
)
from collectionflow.domain.history import HISTORY_LIMIT
from collectionflow.domain.machine import decide
from collectionflow.domain.registry import COLLECTION
from collectionflow.domain.results import PhaseOutcome
from collectionflow.domain.snapshot import child_snapshot
from unit.machine_flows import (
    LATER,
    LATEST,
    NOW,
    at,
    condition_statuses,
    failed,
    job,
    new_status,
    pending,
    reasons,
    result,
    spec,
    then,
)

pytestmark = pytest.mark.unit


# --- failures -----------------------------------------------------------------------------


def test_unknown_next_phase_fails_the_flow() -> None:
    flow = at("gap_analysis")
    decision = decide(flow, job(flow, result=result("finalization", agent_decision="d")), LATER)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert status.completed_at == LATER
    assert status.message is not None
    assert "unknown next phase" in status.message
    stalled = status.condition(ConditionType.STALLED)
    assert stalled is not None
    assert (stalled.status, stalled.reason) == ("True", "UnknownPhase")
    assert decision.failure is not None
    assert decision.failure.operation == "resolve_next_phase"
    # The journal's next_phase column holds phases of the flow type; the unknown name the
    # phase gave is in the diagnostics, with the whole result.
    assert decision.failure.next_phase == "questionnaire_generation"
    assert decision.failure.diagnostics["phase"] == "gap_analysis"
    assert decision.failure.diagnostics["result"]["next_phase"] == "finalization"
    assert decision.failure.agent_decision == "d"
    assert decision.events == (FlowEvent("Warning", EventReason.FLOW_FAILED, status.message),)
    assert decision.finished is not None
    assert decision.finished.succeeded
    assert decision.start is None


def test_failed_job_fails_the_flow_with_its_diagnostics() -> None:
    flow = at("platform_detection")
    observation = job(
        flow,
        JobState.FAILED,
        exit_code=3,
        reason="Error",
        termination_message="cannot reach inventory API",
        job_reason="BackoffLimitExceeded",
    )
    decision = decide(flow, observation, LATER)
    status = new_status(decision)
    message = status.message
    assert message == (
        "phase platform_detection attempt 1 failed after 2 retries "
        "(Error, exit code 3): cannot reach inventory API"
    )
    assert status.state is FlowState.FAILED
    assert (status.current_job, status.completed_at) == (None, LATER)
    assert condition_statuses(status) == {
        ConditionType.READY: "False",
        ConditionType.RECONCILING: "False",
        ConditionType.STALLED: "True",
        ConditionType.SUCCEEDED: "False",
    }
    assert decision.events == (
        FlowEvent("Warning", EventReason.PHASE_FAILED, message),
        FlowEvent("Warning", EventReason.FLOW_FAILED, message),
    )
    assert decision.finished == PhaseFinished(
        "platform_detection", 1, observation.name, False, None, message
    )
    failure = decision.failure
    assert failure is not None
    assert failure.operation == "run_phase"
    assert failure.next_phase == "automated_collection"
    assert failure.error_message == message
    assert failure.diagnostics["state_before"] == "Running"
    assert {
        k: failure.diagnostics[k]
        for k in ("reason", "phase", "next_phase", "attempt", "exit_code", "job_name")
    } == {
        "reason": "PhaseFailed",
        "phase": "platform_detection",
        "next_phase": "automated_collection",
        "attempt": 1,
        "exit_code": 3,
        "job_name": observation.name,
    }
    assert failure.diagnostics["job_condition_reason"] == "BackoffLimitExceeded"
    last = status.phase_history[-1]
    assert (last.name, last.state, last.finished_at, last.message) == (
        "platform_detection",
        PhaseRunState.FAILED,
        LATER,
        message,
    )


@pytest.mark.parametrize(
    ("fields", "cause"),
    [
        (
            {
                "result": result(state=PhaseOutcome.FAILED, error="from result"),
                "termination_message": "tm",
            },
            "from result",
        ),
        ({"termination_message": "tm", "job_message": "jm"}, "tm"),
        ({"job_message": "jm", "result_error": "bad result"}, "jm"),
        ({"result_error": "bad result"}, "bad result"),
        ({}, "no message"),
    ],
)
def test_failure_message_names_the_best_cause(fields: dict[str, Any], cause: str) -> None:
    flow = at("gap_analysis")
    message = new_status(decide(flow, job(flow, JobState.FAILED, **fields), LATER)).message
    assert message is not None
    assert message.endswith(f": {cause}")


@pytest.mark.parametrize(
    ("fields", "part"),
    [
        ({"reason": "OOMKilled", "exit_code": 137}, "(OOMKilled, exit code 137)"),
        ({"job_reason": "DeadlineExceeded"}, "(DeadlineExceeded)"),
        ({}, "(Error)"),
    ],
)
def test_failure_message_names_reason_and_exit_code(fields: dict[str, Any], part: str) -> None:
    flow = at("gap_analysis")
    message = new_status(decide(flow, job(flow, JobState.FAILED, **fields), LATER)).message
    assert message is not None
    assert part in message


def test_failed_result_with_exit_code_zero_is_a_failure() -> None:
    flow = at("gap_analysis")
    reported = result(
        "questionnaire_generation",
        state=PhaseOutcome.FAILED,
        agent_decision="gave up",
        error="no data",
    )
    decision = decide(flow, job(flow, JobState.SUCCEEDED, result=reported, exit_code=0), LATER)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert decision.start is None
    assert decision.finished is not None
    assert not decision.finished.succeeded
    assert decision.failure is not None
    assert decision.failure.agent_decision == "gave up"
    assert decision.failure.next_phase == "questionnaire_generation"
    assert decision.failure.diagnostics["result"]["error"] == "no data"
    assert reasons(decision) == ["PhaseFailed", "FlowFailed"]


# --- suspend while running -----------------------------------------------------------------


def test_suspend_while_running_waits_for_the_job_then_suspends() -> None:
    flow = replace(at("gap_analysis"), spec=spec(suspend=True))
    assert decide(flow, job(flow, JobState.ACTIVE), LATER) == NOTHING
    decision = decide(flow, job(flow), LATER)
    status = new_status(decision)
    assert decision.start is None
    assert (status.state, status.phase, status.current_job) == (
        FlowState.SUSPENDED,
        "questionnaire_generation",
        None,
    )
    assert status.progress == "4/7"
    assert reasons(decision) == ["FlowSuspended"], "one transition, one Event"
    assert decision.events[0].message.startswith("phase gap_analysis attempt 1 succeeded; ")
    assert status.phase_history[-1].state is PhaseRunState.SUCCEEDED


# --- invalid specs ------------------------------------------------------------------------

INVALID_SPECS = {
    "flow-type": spec(flowType="survey"),
    "phase-override": spec(phases=[{"name": "finalization"}]),
    "parameters-size": spec(parameters={"blob": "x" * 17_000}),
}


@pytest.mark.parametrize("bad", INVALID_SPECS.values(), ids=INVALID_SPECS.keys())
def test_invalid_spec_fails_a_pending_flow(bad: CollectionFlowSpec) -> None:
    decision = decide(pending(spec=bad), None, NOW)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert decision.start is None
    assert status.message is not None
    assert status.message.startswith("invalid spec: ")
    assert {c.reason for c in status.conditions} == {"InvalidSpec"}
    assert decision.failure is not None
    assert decision.failure.operation == "invalid_spec"
    assert reasons(decision) == ["FlowFailed"]


def test_invalid_spec_fails_a_running_flow_and_closes_its_phase() -> None:
    flow = replace(at("gap_analysis"), spec=INVALID_SPECS["flow-type"])
    status = new_status(decide(flow, job(flow, JobState.ACTIVE), LATER))
    assert status.state is FlowState.FAILED
    assert status.phase_history[-1].state is PhaseRunState.FAILED


# --- retry ---------------------------------------------------------------------------------


def test_retry_request_runs_the_failed_phase_as_the_next_attempt() -> None:
    flow = replace(failed("platform_detection"), retry_request="r1")
    decision = decide(flow, None, LATEST)
    status = new_status(decision)
    assert decision.start == StartPhase("platform_detection", 2, None)
    assert (status.state, status.phase, status.attempt) == (
        FlowState.RUNNING,
        "platform_detection",
        2,
    )
    assert status.current_job == job_name("demo", "platform_detection", 2)
    assert (status.recoveries, status.retry_token) == (0, "r1"), "a user retry is no recovery"
    assert (status.last_recovery_time, status.completed_at) == (None, None)
    assert reasons(decision) == ["RetryRequested"]
    assert decision.events[0].message == (
        "retrying phase platform_detection as attempt 2 on request; "
        "running phase platform_detection (attempt 2)"
    )
    assert [
        (h.attempt, h.state) for h in status.phase_history if h.name == "platform_detection"
    ] == [
        (1, PhaseRunState.FAILED),
        (2, PhaseRunState.RUNNING),
    ]
    assert condition_statuses(status)[ConditionType.STALLED] == "False"


def test_the_same_retry_token_is_acted_on_once() -> None:
    flow = replace(failed("platform_detection"), retry_request="r1")
    flow = then(flow, decide(flow, None, LATEST))
    flow = then(flow, decide(flow, job(flow, JobState.FAILED), LATEST))
    assert (flow.status.state, flow.status.retry_token) == (FlowState.FAILED, "r1")
    assert decide(flow, None, LATEST) == NOTHING
    again = new_status(decide(replace(flow, retry_request="r2"), None, LATEST))
    assert (again.attempt, again.recoveries, again.retry_token) == (3, 0, "r2")


def test_retry_of_a_still_invalid_spec_is_acted_on_once() -> None:
    flow = pending(spec=INVALID_SPECS["flow-type"])
    flow = then(flow, decide(flow, None, NOW), retry_request="r1")
    decision = decide(flow, None, LATER)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert status.retry_token == "r1"
    assert decide(replace(flow, status=status), None, LATEST) == NOTHING


def test_retry_after_fixing_an_invalid_spec_starts_the_flow() -> None:
    flow = pending(spec=INVALID_SPECS["flow-type"])
    flow = then(flow, decide(flow, None, NOW), retry_request="r1", spec=spec())
    decision = decide(flow, None, LATER)
    status = new_status(decision)
    assert decision.start == StartPhase("initialization", 1, None)
    assert status.started_at == LATER


def test_retry_while_suspended_suspends_before_the_retried_phase() -> None:
    flow = replace(failed("gap_analysis"), retry_request="r1", spec=spec(suspend=True))
    decision = decide(flow, None, LATEST)
    status = new_status(decision)
    assert (status.state, status.phase, status.attempt) == (FlowState.SUSPENDED, "gap_analysis", 2)
    assert decision.start is None


def test_phase_history_is_bounded() -> None:
    flow = replace(failed("gap_analysis"), spec=spec(maxPhaseRuns=1000))
    for attempt in range(HISTORY_LIMIT + 5):
        flow = then(flow, decide(replace(flow, retry_request=f"r{attempt}"), None, LATER))
        flow = then(flow, decide(flow, job(flow, JobState.FAILED), LATER))
    assert len(flow.status.phase_history) == HISTORY_LIMIT
    assert flow.status.phase_history[-1].attempt == flow.status.attempt == HISTORY_LIMIT + 6


# --- the child-flow record ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "phase", "next_phase", "expected"),
    [
        (FlowState.PENDING, None, None, (None, None, "initialized")),
        (
            FlowState.RUNNING,
            "gap_analysis",
            "questionnaire_generation",
            ("gap_analysis", "questionnaire_generation", "gap_analysis"),
        ),
        (
            FlowState.WAITING_FOR_INPUT,
            "manual_collection",
            "synthesis",
            ("manual_collection", "finalization", "manual_collection"),
        ),
        (FlowState.RUNNING, "synthesis", None, ("finalization", None, "automated_collection")),
        (FlowState.SUSPENDED, "synthesis", None, ("finalization", None, "paused")),
        (FlowState.SUCCEEDED, "synthesis", None, ("finalization", None, "completed")),
        (
            FlowState.FAILED,
            "gap_analysis",
            "questionnaire_generation",
            ("gap_analysis", "questionnaire_generation", "failed"),
        ),
    ],
)
def test_child_snapshot_vocabulary(
    state: FlowState,
    phase: str | None,
    next_phase: str | None,
    expected: tuple[str | None, str | None, str],
) -> None:
    status = CollectionFlowStatus(state=state, phase=phase, next_phase=next_phase)
    snapshot = child_snapshot(COLLECTION, status)
    assert (snapshot.current_phase, snapshot.next_phase, snapshot.status) == expected


def test_child_snapshot_carries_progress_and_history() -> None:
    flow = at("initialization")
    status = new_status(decide(flow, job(flow), LATER))
    snapshot = child_snapshot(COLLECTION, status)
    assert snapshot.progress_percentage == 14
    assert snapshot.phase_state == {
        "state": "Running",
        "phase": "platform_detection",
        "attempt": 1,
        "recoveries": 0,
        "progress": "1/7",
        "history": [
            {"phase": "initialization", "attempt": 1, "state": "Succeeded"},
            {"phase": "platform_detection", "attempt": 1, "state": "Running"},
        ],
    }


def test_a_views_plan_is_worked_out_once() -> None:
    flow = at("gap_analysis")
    assert flow.plan is flow.plan
    assert flow.plan.phase("gap_analysis").name == "gap_analysis"
