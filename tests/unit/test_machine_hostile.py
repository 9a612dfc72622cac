"""What the state machine does with input a flow author or a phase controls: refused input,
a result that is not one, a phase that names where to go next, and a flow that loops."""

from __future__ import annotations

from dataclasses import replace

import pytest

from collectionflow.api.limits import InputKind
from collectionflow.api.models import FlowState
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.decision import NOTHING, JobState
from collectionflow.domain.machine import decide, next_phase_for
from collectionflow.domain.plan import InvalidSpec, plan_for
from collectionflow.domain.registry import COLLECTION, FlowDefinition, UnknownPhase
from unit.machine_flows import (
    LATER,
    LATEST,
    NOW,
    at,
    job,
    new_status,
    pending,
    reasons,
    result,
    spec,
    then,
)

pytestmark = pytest.mark.unit


def test_refused_input_keeps_the_flow_waiting_says_what_to_fix_once_and_keeps_the_input() -> None:
    flow = replace(
        at("manual_collection"), input_complete=True, input_error="the input is not JSON: x"
    )
    decision = decide(flow, None, LATER)
    status = new_status(decision)
    assert status.state is FlowState.WAITING_FOR_INPUT
    assert status.message is not None
    assert "input rejected: the input is not JSON: x" in status.message
    assert "fix the annotation flows.collectionflow.io/input" in status.message
    reconciling = next(c for c in status.conditions if c.type == "Reconciling")
    assert reconciling.reason == ConditionReason.INPUT_REJECTED
    assert reasons(decision) == [EventReason.INPUT_REJECTED]
    assert decision.events[0].type == "Warning"
    assert (decision.start, decision.consume_input) == (None, False)
    assert decision.rejected is InputKind.INPUT
    # Decided again on what was written: nothing new, no second Event.
    assert decide(then(flow, decision), None, LATEST) == NOTHING
    # Fixed: the phase starts with the input.
    fixed = replace(then(flow, decision), input_error=None, manual_input={"answers": {}})
    started = decide(fixed, None, LATEST)
    assert started.start is not None
    assert started.start.manual_input == {"answers": {}}


def test_a_result_that_is_not_a_result_fails_the_phase_with_a_warning() -> None:
    flow = at("gap_analysis")
    observed = job(flow, termination_message="hello", result_error="not a phase result: 'hello'")
    decision = decide(flow, observed, LATER)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert status.message is not None
    assert "not a phase result" in status.message
    assert reasons(decision) == [EventReason.INVALID_RESULT, EventReason.FLOW_FAILED]
    assert decision.rejected is InputKind.RESULT
    assert decision.finished is not None
    assert not decision.finished.succeeded


def test_a_failed_job_whose_message_is_its_log_is_an_ordinary_failure() -> None:
    flow = at("gap_analysis")
    observed = job(
        flow, JobState.FAILED, exit_code=1, termination_message="Traceback", result_error="x"
    )
    decision = decide(flow, observed, LATER)
    assert reasons(decision) == [EventReason.PHASE_FAILED, EventReason.FLOW_FAILED]
    assert decision.rejected is None


def test_a_phase_that_loops_back_moves_the_attempt_on_so_no_job_name_repeats() -> None:
    flow = at("platform_detection")
    names = {flow.status.current_job}
    for _ in range(4):
        flow = then(flow, decide(flow, job(flow, result=result("initialization")), LATER))
        assert flow.status.phase == "initialization"
        names.add(flow.status.current_job)
        flow = then(flow, decide(flow, job(flow, result=result("platform_detection")), LATER))
        names.add(flow.status.current_job)
    assert len(names) == 9
    assert flow.status.phase_runs == 10
    attempts = [h.attempt for h in flow.status.phase_history]
    assert attempts == sorted(attempts)


def test_the_budget_of_phase_runs_fails_a_looping_flow() -> None:
    flow = at("platform_detection", spec=spec(maxPhaseRuns=3))
    flow = then(flow, decide(flow, job(flow, result=result("initialization")), LATER))
    decision = decide(flow, job(flow, result=result("platform_detection")), LATER)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert stalled.reason == ConditionReason.TRANSITION_BUDGET_EXHAUSTED
    assert status.message is not None
    assert "spec.maxPhaseRuns (3)" in status.message
    assert decision.start is None
    assert decision.failure is not None
    assert decision.failure.operation == "transition_budget"


def test_a_flow_type_without_loops_refuses_an_earlier_next_phase() -> None:
    straight = FlowDefinition("straight", COLLECTION.phases, loops=False)
    with pytest.raises(UnknownPhase, match="does not come after 'gap_analysis'"):
        next_phase_for(straight, "gap_analysis", result("initialization"))
    with pytest.raises(UnknownPhase, match="does not come after"):
        next_phase_for(straight, "gap_analysis", result("gap_analysis"))
    assert next_phase_for(straight, "gap_analysis", result("synthesis")) == "synthesis"
    assert next_phase_for(COLLECTION, "gap_analysis", result("initialization")) == "initialization"


def test_a_next_phase_too_long_for_any_phase_fails_the_flow_as_unknown() -> None:
    flow = at("gap_analysis")
    decision = decide(flow, job(flow, result=result("x" * 253)), LATER)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert stalled.reason == ConditionReason.UNKNOWN_PHASE
    assert decision.failure is not None
    assert decision.failure.next_phase == "questionnaire_generation"


def test_simulation_knobs_need_the_operators_permission() -> None:
    knobs = spec(parameters={"simulate": {"initialization": {"sleepSeconds": 1}}})
    with pytest.raises(InvalidSpec, match="does not allow simulation"):
        plan_for(knobs)
    plan_for(knobs, allow_simulation=True)
    decision = decide(pending(spec=knobs), None, NOW)
    assert new_status(decision).state is FlowState.FAILED
    assert decision.rejected is InputKind.PARAMETERS
    assert decide(pending(spec=knobs, allow_simulation=True), None, NOW).start is not None


def test_a_phase_env_may_not_set_the_workers_own_variables() -> None:
    for name in ("COLLECTIONFLOW_PHASE", "TERMINATION_MESSAGE_PATH", "KUBECONFIG"):
        hostile = spec(phases=[{"name": "gap_analysis", "env": [{"name": name, "value": "x"}]}])
        with pytest.raises(InvalidSpec, match=f"env sets {name}"):
            plan_for(hostile)


def test_parameters_nested_too_deep_fail_the_flow_naming_the_limit() -> None:
    deep: dict[str, object] = {}
    for _ in range(40):
        deep = {"a": deep}
    decision = decide(pending(spec=spec(parameters=deep)), None, NOW)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert status.message is not None
    assert "spec.parameters is nested 41 deep; the limit is 32" in status.message
    assert decision.rejected is InputKind.PARAMETERS


def test_a_spec_that_does_not_parse_fails_the_flow_as_invalid() -> None:
    decision = decide(replace(pending(), spec_error="invalid spec: runner: bad"), None, NOW)
    status = new_status(decision)
    assert status.state is FlowState.FAILED
    assert status.message == "invalid spec: runner: bad"
    assert decision.rejected is InputKind.SPEC


MASTER = "6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21"
OTHER = "0d3c4b1a-2222-4c1e-8d1e-3b8f0f4a9c21"


def test_a_changed_master_flow_id_is_refused_once_with_a_warning_and_the_flow_goes_on() -> None:
    flow = at("gap_analysis")
    joined = replace(flow, status=flow.status.model_copy(update={"master_flow_id": MASTER}))
    changed = replace(joined, spec=spec(masterFlowId=OTHER), generation=joined.generation + 1)
    refused = decide(changed, None, NOW)
    assert [e.reason for e in refused.events] == ["MasterFlowKept"]
    assert refused.events[0].type == "Warning"
    assert OTHER in refused.events[0].message
    assert MASTER in refused.events[0].message
    said = then(changed, refused)
    assert said.status.master_flow_id == MASTER, "the flow keeps the master it joined"
    assert decide(said, None, NOW).events == (), "said once per change of the spec"
    same = replace(joined, spec=spec(masterFlowId=MASTER.upper()), generation=9)
    assert decide(same, None, NOW).events == ()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"clientAccountId": "acct"}, "spec.clientAccountId not stored"),
        ({"engagementId": "eng"}, "spec.engagementId not stored"),
        (
            {"clientAccountId": "acct", "engagementId": "eng"},
            "spec.clientAccountId and spec.engagementId not stored",
        ),
    ],
)
def test_an_account_or_engagement_beside_a_master_flow_id_is_warned_of_once_at_the_start(
    fields: dict[str, str], named: str
) -> None:
    flow = pending(spec=spec(masterFlowId=MASTER, **fields))
    decision = decide(flow, None, NOW)
    warning, started = decision.events
    assert (warning.type, warning.reason) == ("Warning", EventReason.MASTER_FIELDS_UNUSED)
    assert warning.message.startswith(named)
    assert MASTER in warning.message
    assert started.reason is EventReason.PHASE_STARTED
    running = then(flow, decision)
    assert EventReason.MASTER_FIELDS_UNUSED not in {
        e.reason for e in decide(running, job(running, result=result()), NOW).events
    }


@pytest.mark.parametrize(
    "fields", [{"masterFlowId": MASTER}, {"clientAccountId": "acct", "engagementId": "eng"}]
)
def test_a_master_flow_id_alone_or_a_new_masters_fields_start_without_a_warning(
    fields: dict[str, str],
) -> None:
    events = decide(pending(spec=spec(**fields)), None, NOW).events
    assert [e.reason for e in events] == [EventReason.PHASE_STARTED]
