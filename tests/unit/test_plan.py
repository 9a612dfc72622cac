"""A flow's plan: registry defaults, the spec's per-phase overrides, and invalid specs."""

from __future__ import annotations

from typing import Any

import pytest

from collectionflow.api.env import EnvVar
from collectionflow.api.limits import MAX_PARAMETERS_BYTES
from collectionflow.api.models import CollectionFlowSpec
from collectionflow.domain.plan import InvalidSpec, PhaseConfig, plan_for
from collectionflow.domain.registry import COLLECTION, UnknownPhase

pytestmark = pytest.mark.unit


def spec(**fields: Any) -> CollectionFlowSpec:
    """A spec as the API would deliver it (camelCase keys)."""
    return CollectionFlowSpec.model_validate(fields)


def override(phase: str, **fields: Any) -> CollectionFlowSpec:
    return spec(phases=[{"name": phase, **fields}])


def test_defaults_are_the_registry() -> None:
    plan = plan_for(spec())
    assert plan.definition is COLLECTION
    assert list(plan.phases) == list(COLLECTION.phase_names)
    for base in COLLECTION.phases:
        assert plan.phase(base.name) == PhaseConfig(
            name=base.name,
            manual=base.manual,
            timeout_seconds=base.timeout_seconds,
            retries=base.retries,
            image=None,
            command=None,
            args=None,
            env=(),
            stall_timeout_seconds=None,
        )


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        ({"timeoutSeconds": 42}, "timeout_seconds", 42),
        ({"retries": 5}, "retries", 5),
        ({"retries": 0}, "retries", 0),
        ({"manual": True}, "manual", True),
        ({"image": "example.com/phase:1"}, "image", "example.com/phase:1"),
        ({"command": ["python", "-m", "x"]}, "command", ("python", "-m", "x")),
        ({"args": ["--fast"]}, "args", ("--fast",)),
        ({"args": []}, "args", ()),
        ({"env": [{"name": "A", "value": "1"}]}, "env", (EnvVar(name="A", value="1"),)),
        ({"stallTimeoutSeconds": 60}, "stall_timeout_seconds", 60),
    ],
)
def test_override_applies_to_its_phase_only(
    fields: dict[str, Any], attribute: str, expected: object
) -> None:
    plan = plan_for(override("gap_analysis", **fields))
    default = plan_for(spec())
    assert getattr(plan.phase("gap_analysis"), attribute) == expected
    for name in COLLECTION.phase_names:
        if name != "gap_analysis":
            assert plan.phase(name) == default.phase(name)


def test_override_can_make_the_manual_phase_automatic() -> None:
    assert (
        plan_for(override("manual_collection", manual=False)).phase("manual_collection").manual
        is False
    )


def test_override_leaves_unset_fields_at_registry_values() -> None:
    config = plan_for(override("automated_collection", retries=7)).phase("automated_collection")
    assert (config.retries, config.timeout_seconds, config.manual) == (7, 1800, False)


def test_parameters_at_the_limit_are_accepted_and_one_byte_more_is_not() -> None:
    padding = "x" * (MAX_PARAMETERS_BYTES - len('{"p":""}'))
    plan = plan_for(spec(parameters={"p": padding}))
    assert plan.phase("initialization").name == "initialization"
    with pytest.raises(InvalidSpec, match="parameters"):
        plan_for(spec(parameters={"p": padding + "x"}))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        pytest.param(
            spec(flowType="survey"), "flow type 'survey' is not registered", id="flow-type"
        ),
        pytest.param(override("finalization"), "phase 'finalization' is not part", id="phase-name"),
        pytest.param(
            spec(parameters={"p": "x" * MAX_PARAMETERS_BYTES}),
            rf"spec.parameters is {MAX_PARAMETERS_BYTES + 8} bytes as JSON; "
            rf"the limit is {MAX_PARAMETERS_BYTES}",
            id="parameters-size",
        ),
    ],
)
def test_invalid_specs(bad: CollectionFlowSpec, match: str) -> None:
    with pytest.raises(InvalidSpec, match=match):
        plan_for(bad)


def test_plan_phase_rejects_an_unknown_name() -> None:
    with pytest.raises(UnknownPhase):
        plan_for(spec()).phase("finalization")


def test_the_stall_timeout_is_the_phases_else_the_flows_else_left_to_the_operator() -> None:
    both = CollectionFlowSpec.model_validate(
        {
            "stallTimeoutSeconds": 120,
            "phases": [{"name": "gap_analysis", "stallTimeoutSeconds": 30}],
        }
    )
    plan = plan_for(both)
    assert plan.stall_timeout("gap_analysis") == 30
    assert plan.stall_timeout("synthesis") == 120
    assert plan.stall_timeout(None) == 120, "before its first phase: the flow's"
    assert plan_for(spec()).stall_timeout("synthesis") is None


@pytest.mark.parametrize(
    "selector",
    [{"x" * 300: "a"}, {"disk": "ssd!"}, {"-bad": "a"}, {"example.com/": "a"}],
)
def test_a_node_selector_that_is_no_node_label_is_refused_with_what_to_fix(
    selector: dict[str, str],
) -> None:
    with pytest.raises(InvalidSpec, match="is not a node label"):
        plan_for(spec(nodeSelector=selector))


def test_node_label_selectors_pass() -> None:
    plan = plan_for(spec(nodeSelector={"kubernetes.io/arch": "amd64", "pool": ""}))
    assert plan.phase("initialization").name == "initialization"
