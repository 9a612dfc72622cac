"""Parsing the worker's environment into a `PhaseContext`, and its result helpers."""

from __future__ import annotations

import pytest

from collectionflow.api.contract import DEFAULT_HEARTBEAT_SECONDS, WorkerConfigError
from collectionflow.domain.results import PhaseOutcome
from collectionflow.worker.context import PhaseContext

pytestmark = pytest.mark.unit

ENVIRON = {
    "COLLECTIONFLOW_FLOW_NAMESPACE": "team-a",
    "COLLECTIONFLOW_FLOW_NAME": "inventory",
    "COLLECTIONFLOW_FLOW_UID": "6f1c2a9e-0000-4000-8000-000000000001",
    "COLLECTIONFLOW_FLOW_TYPE": "collection",
    "COLLECTIONFLOW_PHASE": "gap_analysis",
    "COLLECTIONFLOW_ATTEMPT": "2",
    "COLLECTIONFLOW_PARAMETERS": '{"assets": [{"name": "a"}]}',
    "COLLECTIONFLOW_PREVIOUS_OUTPUTS": '{"initialization": {"assetCount": 1}}',
    "COLLECTIONFLOW_INPUT": '{"answers": {}}',
    "COLLECTIONFLOW_HEARTBEAT_LEASE": "inventory-gap-analysis-2",
    "COLLECTIONFLOW_HEARTBEAT_SECONDS": "2.5",
}


def environ(**changes: str | None) -> dict[str, str]:
    """ENVIRON with `changes` applied; None removes the variable."""
    merged: dict[str, str | None] = {**ENVIRON, **changes}
    return {name: value for name, value in merged.items() if value is not None}


def test_parses_every_variable() -> None:
    ctx = PhaseContext.from_environ(ENVIRON)
    assert ctx == PhaseContext(
        namespace="team-a",
        flow_name="inventory",
        flow_uid="6f1c2a9e-0000-4000-8000-000000000001",
        flow_type="collection",
        phase="gap_analysis",
        attempt=2,
        parameters={"assets": [{"name": "a"}]},
        previous_outputs={"initialization": {"assetCount": 1}},
        manual_input={"answers": {}},
        heartbeat_lease="inventory-gap-analysis-2",
        heartbeat_seconds=2.5,
    )


def test_optional_variables_have_defaults() -> None:
    ctx = PhaseContext.from_environ(
        environ(
            COLLECTIONFLOW_PREVIOUS_OUTPUTS=None,
            COLLECTIONFLOW_INPUT=None,
            COLLECTIONFLOW_HEARTBEAT_LEASE="",
            COLLECTIONFLOW_HEARTBEAT_SECONDS=None,
        )
    )
    assert ctx.previous_outputs == {}
    assert ctx.manual_input is None
    assert ctx.heartbeat_lease is None
    assert ctx.heartbeat_seconds == DEFAULT_HEARTBEAT_SECONDS


def test_null_input_means_no_input() -> None:
    assert PhaseContext.from_environ(environ(COLLECTIONFLOW_INPUT="null")).manual_input is None


@pytest.mark.parametrize(
    "variable",
    [
        "COLLECTIONFLOW_FLOW_NAMESPACE",
        "COLLECTIONFLOW_FLOW_NAME",
        "COLLECTIONFLOW_FLOW_UID",
        "COLLECTIONFLOW_FLOW_TYPE",
        "COLLECTIONFLOW_PHASE",
        "COLLECTIONFLOW_ATTEMPT",
        "COLLECTIONFLOW_PARAMETERS",
    ],
)
@pytest.mark.parametrize("missing", [None, "", "  "])
def test_a_missing_required_variable_is_named(variable: str, missing: str | None) -> None:
    with pytest.raises(WorkerConfigError, match=f"^{variable} is not set$"):
        PhaseContext.from_environ(environ(**{variable: missing}))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COLLECTIONFLOW_PARAMETERS", "{assets", "COLLECTIONFLOW_PARAMETERS is not valid JSON"),
        ("COLLECTIONFLOW_PARAMETERS", "[1]", "COLLECTIONFLOW_PARAMETERS must be a JSON object"),
        ("COLLECTIONFLOW_PREVIOUS_OUTPUTS", "{", "COLLECTIONFLOW_PREVIOUS_OUTPUTS is not valid"),
        ("COLLECTIONFLOW_PREVIOUS_OUTPUTS", '{"a": 1}', "'a' maps to a number"),
        ("COLLECTIONFLOW_INPUT", "answers", "COLLECTIONFLOW_INPUT is not valid JSON"),
        ("COLLECTIONFLOW_INPUT", '"x"', "COLLECTIONFLOW_INPUT must be a JSON object or null"),
        ("COLLECTIONFLOW_ATTEMPT", "two", "COLLECTIONFLOW_ATTEMPT must be an integer"),
        ("COLLECTIONFLOW_ATTEMPT", "0", "COLLECTIONFLOW_ATTEMPT must be 1 or more"),
        ("COLLECTIONFLOW_HEARTBEAT_SECONDS", "soon", "COLLECTIONFLOW_HEARTBEAT_SECONDS must be"),
        ("COLLECTIONFLOW_HEARTBEAT_SECONDS", "0", "COLLECTIONFLOW_HEARTBEAT_SECONDS must be pos"),
        ("COLLECTIONFLOW_HEARTBEAT_SECONDS", "nan", "COLLECTIONFLOW_HEARTBEAT_SECONDS must be pos"),
    ],
)
def test_an_invalid_variable_is_named(variable: str, value: str, message: str) -> None:
    with pytest.raises(WorkerConfigError, match=message):
        PhaseContext.from_environ(environ(**{variable: value}))


def test_results_default_to_the_registry_next_phase() -> None:
    ctx = PhaseContext.from_environ(ENVIRON)
    assert ctx.default_next_phase == "questionnaire_generation"
    succeeded = ctx.succeeded({"n": 1}, "done")
    assert succeeded.state is PhaseOutcome.SUCCEEDED
    assert succeeded.next_phase == "questionnaire_generation"
    assert ctx.succeeded({}, "skip", "synthesis").next_phase == "synthesis"
    failed = ctx.failed("broken")
    assert failed.state is PhaseOutcome.FAILED
    assert failed.error == "broken"
    assert failed.next_phase == "questionnaire_generation"


def test_phases_outside_the_registry_have_no_default_next_phase() -> None:
    assert (
        PhaseContext.from_environ(environ(COLLECTIONFLOW_PHASE="custom")).default_next_phase is None
    )
    other = PhaseContext.from_environ(environ(COLLECTIONFLOW_FLOW_TYPE="other"))
    assert other.default_next_phase is None
