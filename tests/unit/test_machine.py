"""The flow state machine from Pending to the last phase, driven the way the operator drives it.

Flows are reached through `decide` itself (Pending -> ... -> the phase a test needs), so each
test starts from a status the machine really produces, not from a hand-written one.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from collectionflow.api.models import (
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
from collectionflow.domain.machine import decide
from unit.machine_flows import (
    GENERATION,
    LATER,
    LATEST,
    NOW,
    PHASES,
    at,
    condition_statuses,
    job,
    new_status,
    pending,
    reasons,
    result,
    spec,
    then,
)

pytestmark = pytest.mark.unit


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
    assert decision.events == (
        FlowEvent(
            "Normal",
            EventReason.FLOW_RESUMED,
            "resumed at phase initialization; running phase initialization (attempt 1)",
        ),
    ), "the resume and the start are one transition, one Event"


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
    assert reasons(decision) == ["PhaseSucceeded"], "one transition, one Event"
    assert decision.events[0].message == (
        "phase initialization attempt 1 succeeded; running phase platform_detection (attempt 1)"
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
    assert reasons(decision) == ["InputRequired"], "one transition, one Event"
    assert decision.events[0].message.startswith(
        "phase questionnaire_generation attempt 1 succeeded; "
    )
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
    assert reasons(decision) == ["FlowSucceeded"], "one transition, one Event"
    assert decision.events[0].message == (
        "phase synthesis attempt 1 succeeded; all phases completed (7/7)"
    )
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
