"""Every transition of the flow state machine, driven the way the operator drives it.

Flows are reached through `decide` itself (Pending -> ... -> the phase a test needs), so each
test starts from a status the machine really produces, not from a hand-written one.
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
)
from collectionflow.api.names import job_name
from collectionflow.api.reasons import EventReason
from collectionflow.domain.decision import (
    NOTHING,
    Decision,
    FlowEvent,
    FlowView,
    JobObservation,
    JobState,
    PhaseFinished,
    StartPhase,
)
from collectionflow.domain.history import HISTORY_LIMIT
from collectionflow.domain.machine import decide
from collectionflow.domain.registry import COLLECTION
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.domain.snapshot import child_snapshot

pytestmark = pytest.mark.unit

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


# --- Pending, Suspended ------------------------------------------------------------------


def test_pending_starts_the_first_phase() -> None:
    decision = decide(pending(), None, NOW)
    status = new_status(decision)
    name = job_name("demo", "initialization", 1)
    assert decision.start == StartPhase("initialization", 1, None)
    assert (status.state, status.phase, status.next_phase) == (
        FlowState.RUNNING,
        "initialization",
        "platform_detection",
    )
    assert (status.attempt, status.current_job) == (1, name)
    assert status.started_at == status.last_progress_time == NOW
    assert status.observed_generation == GENERATION
    assert decision.events == (
        FlowEvent("Normal", EventReason.PHASE_STARTED, "running phase initialization (attempt 1)"),
    )
    assert condition_statuses(status) == {
        ConditionType.READY: "False",
        ConditionType.RECONCILING: "True",
        ConditionType.STALLED: "False",
        ConditionType.SUCCEEDED: "Unknown",
    }
    assert {(c.observed_generation, c.last_transition_time) for c in status.conditions} == {
        (GENERATION, NOW)
    }
    [entry] = status.phase_history
    assert (entry.name, entry.state, entry.attempt, entry.job_name) == (
        "initialization",
        PhaseRunState.RUNNING,
        1,
        name,
    )
    assert (entry.started_at, entry.finished_at) == (NOW, None)
    assert (decision.finished, decision.failure, decision.consume_input) == (None, None, False)


def test_pending_with_suspend_is_suspended_before_the_first_phase() -> None:
    decision = decide(pending(spec=spec(suspend=True)), None, NOW)
    status = new_status(decision)
    assert decision.start is None
    assert (status.state, status.phase, status.attempt) == (
        FlowState.SUSPENDED,
        "initialization",
        1,
    )
    assert status.current_job is None
    assert reasons(decision) == ["FlowSuspended"]
    assert condition_statuses(status)[ConditionType.RECONCILING] == "False"
    assert status.phase_history == []


def test_suspended_stays_suspended_while_suspend_is_set() -> None:
    flow = pending(spec=spec(suspend=True))
    flow = then(flow, decide(flow, None, NOW))
    assert decide(flow, None, LATER) == NOTHING


def test_resume_starts_the_phase_it_was_suspended_before() -> None:
    flow = pending(spec=spec(suspend=True))
    flow = then(flow, decide(flow, None, NOW), spec=spec())
    decision = decide(flow, None, LATER)
    status = new_status(decision)
    assert decision.start == StartPhase("initialization", 1, None)
    assert status.state is FlowState.RUNNING
    assert status.started_at == NOW
    assert decision.events[0] == FlowEvent(
        "Normal", EventReason.FLOW_RESUMED, "resumed at phase initialization"
    )
    assert reasons(decision) == ["FlowResumed", "PhaseStarted"]


def test_suspended_without_a_phase_does_nothing() -> None:
    flow = pending(status=CollectionFlowStatus(state=FlowState.SUSPENDED))
    assert decide(flow, None, NOW) == NOTHING


# --- Running -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [None, JobState.ACTIVE, JobState.MISSING])
def test_running_waits_for_its_job(state: JobState | None) -> None:
    flow = at("gap_analysis")
    observation = None if state is None else job(flow, state)
    decision = decide(flow, observation, LATER)
    assert decision == NOTHING


def test_succeeded_phase_starts_the_registry_successor() -> None:
    flow = at("initialization")
    decision = decide(flow, job(flow), LATER)
    status = new_status(decision)
    assert decision.finished == PhaseFinished(
        "initialization", 1, job_name("demo", "initialization", 1), True, None, None
    )
    assert decision.start == StartPhase("platform_detection", 1, None)
    assert (status.phase, status.next_phase, status.attempt) == (
        "platform_detection",
        "automated_collection",
        1,
    )
    assert (status.progress, status.progress_percentage) == ("1/7", 14)
    assert status.last_progress_time == LATER
    assert reasons(decision) == ["PhaseSucceeded", "PhaseStarted"]
    assert decision.events[0].message == (
        "phase initialization attempt 1 succeeded; next phase platform_detection"
    )


def test_phase_history_entries_are_opened_and_closed() -> None:
    flow = at("initialization")
    status = new_status(decide(flow, job(flow), LATER))
    assert [(h.name, h.state, h.started_at, h.finished_at) for h in status.phase_history] == [
        ("initialization", PhaseRunState.SUCCEEDED, NOW, LATER),
        ("platform_detection", PhaseRunState.RUNNING, LATER, None),
    ]


def test_transition_times_stay_while_condition_status_does_not_change() -> None:
    flow = at("initialization")
    status = new_status(decide(flow, job(flow), LATER))
    reconciling = status.condition(ConditionType.RECONCILING)
    assert reconciling is not None
    assert reconciling.status == "True"
    assert reconciling.last_transition_time == NOW
    assert reconciling.message == "running phase platform_detection (attempt 1)"


def test_result_can_skip_the_manual_phase() -> None:
    flow = at("questionnaire_generation")
    decision = decide(flow, job(flow, result=result("synthesis", agent_decision="no gaps")), LATER)
    status = new_status(decision)
    assert decision.start == StartPhase("synthesis", 1, None)
    assert (status.state, status.phase, status.next_phase) == (FlowState.RUNNING, "synthesis", None)
    assert status.progress == "5/7"
    assert "manual_collection" not in {h.name for h in status.phase_history}


def test_observed_generation_follows_the_flow() -> None:
    flow = replace(at("initialization"), generation=GENERATION + 4)
    status = new_status(decide(flow, job(flow), LATER))
    assert status.observed_generation == GENERATION + 4
    assert {c.observed_generation for c in status.conditions} == {GENERATION + 4}


# --- manual phases -------------------------------------------------------------------------


def test_entering_a_manual_phase_waits_for_input() -> None:
    flow = at("questionnaire_generation")
    decision = decide(flow, job(flow), LATER)
    status = new_status(decision)
    assert decision.start is None
    assert (status.state, status.phase, status.next_phase) == (
        FlowState.WAITING_FOR_INPUT,
        "manual_collection",
        "synthesis",
    )
    assert (status.current_job, status.input_requested_at) == (None, LATER)
    assert reasons(decision) == ["PhaseSucceeded", "InputRequired"]
    assert "flows.collectionflow.io/input-complete=true" in decision.events[-1].message
    assert condition_statuses(status)[ConditionType.RECONCILING] == "True"
    assert status.phase_history[-1].name == "questionnaire_generation"


def test_waiting_without_input_does_nothing_again() -> None:
    flow = at("manual_collection")
    assert flow.status.state is FlowState.WAITING_FOR_INPUT
    decision = decide(flow, None, LATEST)
    assert decision == NOTHING


def test_complete_input_starts_the_manual_phase_with_it() -> None:
    answers = {"answers": {"q1": "yes"}}
    flow = replace(at("manual_collection"), input_complete=True, manual_input=answers)
    decision = decide(flow, None, LATEST)
    status = new_status(decision)
    assert decision.start == StartPhase("manual_collection", 1, answers)
    assert decision.consume_input is True
    assert (status.state, status.current_job) == (
        FlowState.RUNNING,
        job_name("demo", "manual_collection", 1),
    )
    assert status.input_requested_at is None
    assert reasons(decision) == ["PhaseStarted"]
    assert status.phase_history[-1].name == "manual_collection"


def test_input_is_not_passed_to_automatic_phases() -> None:
    flow = replace(pending(), input_complete=True, manual_input={"x": 1})
    decision = decide(flow, None, NOW)
    assert decision.start == StartPhase("initialization", 1, None)
    assert decision.consume_input is False


def test_a_phase_made_manual_by_the_spec_waits_for_input() -> None:
    decision = decide(
        pending(spec=spec(phases=[{"name": "initialization", "manual": True}])), None, NOW
    )
    assert new_status(decision).state is FlowState.WAITING_FOR_INPUT
    assert decision.start is None


# --- the end -------------------------------------------------------------------------------


def test_last_phase_succeeding_completes_the_flow() -> None:
    flow = at("synthesis")
    decision = decide(flow, job(flow), LATER)
    status = new_status(decision)
    assert decision.start is None
    assert decision.finished is not None
    assert decision.finished.succeeded
    assert status.state is FlowState.SUCCEEDED
    assert (status.progress_percentage, status.progress) == (100, "7/7")
    assert (status.completed_at, status.current_job, status.next_phase) == (LATER, None, None)
    assert status.message == "all phases completed (7/7)"
    assert condition_statuses(status) == {
        ConditionType.READY: "True",
        ConditionType.RECONCILING: "False",
        ConditionType.STALLED: "False",
        ConditionType.SUCCEEDED: "True",
    }
    assert reasons(decision) == ["PhaseSucceeded", "FlowSucceeded"]
    assert status.phase_history[-1].state is PhaseRunState.SUCCEEDED


def test_a_whole_flow_in_registry_order() -> None:
    flow = pending()
    flow = then(flow, decide(flow, None, NOW))
    seen: list[tuple[str | None, str | None]] = []
    while flow.status.state is not FlowState.SUCCEEDED:
        seen.append((flow.status.phase, flow.status.progress))
        if flow.status.state is FlowState.WAITING_FOR_INPUT:
            flow = then(flow, decide(replace(flow, input_complete=True), None, LATER))
            flow = replace(flow, input_complete=False)
            continue
        flow = then(flow, decide(flow, job(flow), LATER))
    assert [phase for phase, _ in seen if phase] == [
        *PHASES[:6],
        "manual_collection",  # waiting, then running
        "synthesis",
    ]
    assert [progress for _, progress in seen] == [
        None,
        "1/7",
        "2/7",
        "3/7",
        "4/7",
        "5/7",
        "5/7",
        "6/7",
    ]
    assert [h.state for h in flow.status.phase_history] == [PhaseRunState.SUCCEEDED] * 7


@pytest.mark.parametrize("state", [FlowState.SUCCEEDED, FlowState.FAILED])
@pytest.mark.parametrize("observation", [None, JobState.SUCCEEDED, JobState.FAILED])
def test_terminal_states_do_nothing(state: FlowState, observation: JobState | None) -> None:
    flow = pending(
        status=CollectionFlowStatus(
            state=state, phase="synthesis", attempt=1, current_job="demo-synthesis-1"
        )
    )
    seen = None if observation is None else job(flow, observation)
    assert decide(flow, seen, LATER) == NOTHING


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
    assert (decision.failure.phase, decision.failure.next_phase) == ("gap_analysis", "finalization")
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
    assert (failure.operation, failure.phase, failure.attempt) == (
        "run_phase",
        "platform_detection",
        1,
    )
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
    assert reasons(decision) == ["PhaseSucceeded", "FlowSuspended"]
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
    assert reasons(decision) == ["RetryRequested", "PhaseStarted"]
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
    flow = failed("gap_analysis")
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
