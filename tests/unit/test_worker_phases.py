"""The built-in phases of the `collection` flow type, on a sample inventory."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from collectionflow.domain.registry import COLLECTION
from collectionflow.domain.results import TERMINATION_MESSAGE_LIMIT, PhaseOutcome, PhaseResult
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.phases import (
    BUILT_IN_PHASES,
    automated_collection,
    gap_analysis,
    initialization,
    manual_collection,
    platform_detection,
    questionnaire_generation,
    synthesis,
)

pytestmark = pytest.mark.unit

SAMPLE: dict[str, Any] = {
    "assets": [
        {"name": "web-01", "platform": "vmware", "os": "linux", "cpu": 4},
        {"name": "web-02", "platform": "vmware", "os": "linux", "cpu": 4, "memoryGiB": 16},
        {
            "name": "db-01",
            "platform": "aws",
            "os": "linux",
            "cpu": 8,
            "memoryGiB": 64,
            "owner": "dba",
        },
        {"name": "legacy-01", "os": "", "cpu": None},
    ],
    "requiredAttributes": ["os", "cpu", "memoryGiB", "owner"],
}

COMPLETE: dict[str, Any] = {
    "assets": [
        {"name": "a", "platform": "aws", "os": "linux", "cpu": 2},
        {"name": "b", "platform": "gcp", "os": "windows", "cpu": 4},
    ],
    "requiredAttributes": ["os", "cpu"],
}


def context(
    phase: str,
    parameters: dict[str, Any] | None = None,
    previous_outputs: dict[str, dict[str, Any]] | None = None,
    manual_input: dict[str, Any] | None = None,
) -> PhaseContext:
    return PhaseContext(
        namespace="ns",
        flow_name="flow",
        flow_uid="00000000-0000-0000-0000-000000000001",
        flow_type="collection",
        phase=phase,
        attempt=1,
        parameters=SAMPLE if parameters is None else parameters,
        previous_outputs=previous_outputs or {},
        manual_input=manual_input,
        heartbeat_lease=None,
        heartbeat_seconds=10.0,
    )


def run_flow(
    parameters: dict[str, Any], manual_input: dict[str, Any] | None = None
) -> dict[str, PhaseResult]:
    """Every phase in the order the results choose, each seeing the outputs before it."""
    results: dict[str, PhaseResult] = {}
    outputs: dict[str, dict[str, Any]] = {}
    phase: str | None = COLLECTION.first_phase
    while phase is not None:
        result = BUILT_IN_PHASES[phase](context(phase, parameters, dict(outputs), manual_input))
        assert result.state is PhaseOutcome.SUCCEEDED, result.error
        results[phase] = result
        outputs[phase] = result.outputs
        phase = result.next_phase
    return results


def test_every_registry_phase_of_collection_has_a_built_in() -> None:
    assert tuple(BUILT_IN_PHASES) == COLLECTION.phase_names


def test_initialization_counts_the_assets() -> None:
    result = initialization(context("initialization"))
    assert result.state is PhaseOutcome.SUCCEEDED
    assert result.outputs == {
        "assetCount": 4,
        "requiredAttributes": ["os", "cpu", "memoryGiB", "owner"],
    }
    assert result.next_phase == "platform_detection"


def test_required_attributes_have_a_default() -> None:
    result = initialization(context("initialization", {"assets": [{"name": "a"}]}))
    assert result.outputs["requiredAttributes"] == ["os", "cpu", "memoryGiB", "owner"]


def test_platform_detection_counts_per_platform_with_unknown() -> None:
    result = platform_detection(context("platform_detection"))
    assert result.outputs == {
        "platforms": {"vmware": 2, "aws": 1, "unknown": 1},
        "platformCount": 3,
    }
    assert "1 without a platform" in result.agent_decision


def test_automated_collection_lists_known_attributes_per_asset() -> None:
    result = automated_collection(context("automated_collection"))
    assert result.outputs == {
        "collected": {
            "web-01": ["os", "cpu"],
            "web-02": ["os", "cpu", "memoryGiB"],
            "db-01": ["os", "cpu", "memoryGiB", "owner"],
            "legacy-01": [],
        },
        "collectedAttributeCount": 9,
        "requiredAttributeCount": 16,
    }


def test_gap_analysis_lists_missing_attributes() -> None:
    result = gap_analysis(context("gap_analysis"))
    assert result.outputs == {
        "gaps": {
            "web-01": ["memoryGiB", "owner"],
            "web-02": ["owner"],
            "legacy-01": ["os", "cpu", "memoryGiB", "owner"],
        },
        "gapCount": 7,
        "assetsWithGaps": 3,
    }


def test_gap_analysis_uses_the_outputs_of_automated_collection() -> None:
    previous = {
        "automated_collection": {
            "collected": {
                "web-01": ["os", "cpu", "memoryGiB", "owner"],
                "web-02": ["os", "cpu", "memoryGiB", "owner"],
                "db-01": ["os", "cpu", "memoryGiB", "owner"],
                "legacy-01": ["os"],
            }
        }
    }
    result = gap_analysis(context("gap_analysis", previous_outputs=previous))
    assert result.outputs["gaps"] == {"legacy-01": ["cpu", "memoryGiB", "owner"]}


@pytest.mark.parametrize(
    "collected",
    [
        {"web-01": ["os"]},  # not every asset
        {"web-01": ["os"], "web-02": [], "db-01": [], "legacy-01": [], "ghost": []},
        {"web-01": ["colour"], "web-02": [], "db-01": [], "legacy-01": []},
        {"web-01": "os", "web-02": [], "db-01": [], "legacy-01": []},
    ],
)
def test_inconsistent_previous_outputs_are_recomputed(collected: dict[str, Any]) -> None:
    previous = {"automated_collection": {"collected": collected}}
    with_previous = gap_analysis(context("gap_analysis", previous_outputs=previous))
    assert with_previous.outputs == {  # the gaps of the collection recomputed from the inventory
        "gaps": {
            "web-01": ["memoryGiB", "owner"],
            "web-02": ["owner"],
            "legacy-01": ["os", "cpu", "memoryGiB", "owner"],
        },
        "gapCount": 7,
        "assetsWithGaps": 3,
    }


def test_cut_listings_of_earlier_phases_are_not_trusted() -> None:
    previous = {"gap_analysis": {"gaps": {"web-01": ["owner"]}, "gapsOmitted": 2}}
    result = questionnaire_generation(context("questionnaire_generation", None, previous))
    assert result.outputs["questionCount"] == 7


def test_questionnaire_asks_one_question_per_gap_and_goes_to_manual_collection() -> None:
    result = questionnaire_generation(context("questionnaire_generation"))
    assert result.outputs["questionCount"] == 7
    assert result.outputs["questions"]["web-02"] == {"owner": "Who owns web-02?"}
    assert sum(len(q) for q in result.outputs["questions"].values()) == 7
    assert result.next_phase == "manual_collection"
    assert "7 gaps" in result.agent_decision


def test_questionnaire_skips_manual_collection_without_gaps() -> None:
    result = questionnaire_generation(context("questionnaire_generation", COMPLETE))
    assert result.outputs == {"questions": {}, "questionCount": 0}
    assert result.next_phase == "synthesis"
    assert "manual_collection is skipped" in result.agent_decision


def test_questions_for_attributes_without_a_template_are_generic() -> None:
    parameters = {"assets": [{"name": "a"}], "requiredAttributes": ["rack"]}
    result = questionnaire_generation(context("questionnaire_generation", parameters))
    assert result.outputs["questions"] == {"a": {"rack": "What is the rack of a?"}}


def test_manual_collection_counts_answered_and_remaining_gaps() -> None:
    answers = {
        "answers": {
            "web-01": {"owner": "web-team", "memoryGiB": 8},
            "legacy-01": {"os": "", "cpu": 2},
            "db-01": {"owner": "someone-else"},
            "ghost": {"os": "linux"},
        }
    }
    result = manual_collection(context("manual_collection", manual_input=answers))
    assert result.state is PhaseOutcome.SUCCEEDED
    assert result.outputs == {
        "answered": {"web-01": ["memoryGiB", "owner"], "legacy-01": ["cpu"]},
        "answeredCount": 3,
        "remaining": {"web-02": ["owner"], "legacy-01": ["os", "memoryGiB", "owner"]},
        "remainingGapCount": 4,
        "answeredByPlatform": {"vmware": 2, "unknown": 1},
        "ignoredAnswerCount": 3,
    }
    assert result.next_phase == "synthesis"


def test_manual_collection_without_input_keeps_every_gap() -> None:
    result = manual_collection(context("manual_collection"))
    assert result.outputs["answeredCount"] == 0
    assert result.outputs["remainingGapCount"] == 7
    assert result.agent_decision.startswith("no manual input was given")


@pytest.mark.parametrize("answers", [["owner"], {"web-01": "web-team"}])
def test_manual_collection_rejects_malformed_answers(answers: Any) -> None:
    result = manual_collection(context("manual_collection", manual_input={"answers": answers}))
    assert result.state is PhaseOutcome.FAILED
    assert result.error is not None
    assert "answers" in result.error


def test_synthesis_reports_readiness_per_platform() -> None:
    result = synthesis(context("synthesis"))
    assert result.outputs == {
        "readiness": {"vmware": 62.5, "aws": 100.0, "unknown": 0.0},
        "readinessPercentage": 56.2,
        "knownAttributeCount": 9,
        "requiredAttributeCount": 16,
        "remainingGapCount": 7,
    }
    assert result.next_phase is None


def test_synthesis_counts_the_manual_answers() -> None:
    previous = {"manual_collection": {"answeredByPlatform": {"vmware": 3, "unknown": 4}}}
    result = synthesis(context("synthesis", previous_outputs=previous))
    assert result.outputs["readiness"] == {"vmware": 100.0, "aws": 100.0, "unknown": 100.0}
    assert result.outputs["readinessPercentage"] == 100.0
    assert "every asset is complete" in result.agent_decision


def test_a_whole_flow_with_gaps_goes_through_manual_collection() -> None:
    answers = {"answers": {"web-01": {"memoryGiB": 8, "owner": "web"}, "web-02": {"owner": "web"}}}
    results = run_flow(SAMPLE, answers)
    assert tuple(results) == COLLECTION.phase_names
    assert results["synthesis"].outputs["readiness"]["vmware"] == 100.0
    assert results["synthesis"].outputs["remainingGapCount"] == 4


def test_a_whole_flow_without_gaps_skips_manual_collection() -> None:
    results = run_flow(COMPLETE)
    assert "manual_collection" not in results
    assert tuple(results)[-1] == "synthesis"
    assert results["synthesis"].outputs["readinessPercentage"] == 100.0


@pytest.mark.parametrize("phase", COLLECTION.phase_names)
def test_next_phase_is_always_present_and_none_only_for_synthesis(phase: str) -> None:
    result = BUILT_IN_PHASES[phase](context(phase))
    assert "next_phase" in result.model_dump()
    if phase == "synthesis":
        assert result.next_phase is None
    else:
        assert result.next_phase in COLLECTION.phase_names


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({}, "parameters.assets is missing"),
        ({"assets": "web-01"}, "parameters.assets must be an array, got a string"),
        ({"assets": []}, "parameters.assets is empty"),
        ({"assets": [{"name": "a"}, 3]}, "parameters.assets[1] must be an object, got a number"),
        ({"assets": [{"platform": "aws"}]}, "parameters.assets[0].name must be a non-empty"),
        ({"assets": [{"name": " "}]}, "parameters.assets[0].name must be a non-empty"),
        ({"assets": [{"name": "a"}, {"name": "a"}]}, "is already the name of parameters.assets[0]"),
        ({"assets": [{"name": "a", "platform": 7}]}, "parameters.assets[0].platform must be"),
        ({"assets": [{"name": "a"}], "requiredAttributes": []}, "requiredAttributes must be"),
        ({"assets": [{"name": "a"}], "requiredAttributes": ["os", 1]}, "requiredAttributes must"),
        ({"assets": [{"name": "a"}], "requiredAttributes": ["os", "os"]}, "an attribute twice"),
    ],
)
@pytest.mark.parametrize("phase", COLLECTION.phase_names)
def test_invalid_parameters_fail_every_phase_clearly(
    phase: str, parameters: dict[str, Any], message: str
) -> None:
    result = BUILT_IN_PHASES[phase](context(phase, parameters))
    assert result.state is PhaseOutcome.FAILED
    assert result.error is not None
    assert message in result.error
    assert result.next_phase == COLLECTION.next_phase_for(phase)


def test_results_fit_the_termination_message_for_a_large_inventory() -> None:
    parameters = {
        "assets": [
            {"name": f"{'very-long-asset-name-' * 8}{index:04d}", "platform": f"platform-{index}"}
            for index in range(600)
        ]
    }
    outputs: dict[str, dict[str, Any]] = {}
    for phase in COLLECTION.phase_names:
        result = BUILT_IN_PHASES[phase](context(phase, parameters, dict(outputs)))
        message = result.to_message()
        assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
        assert PhaseResult.from_message(message) == result, f"{phase} was shrunk"
        outputs[phase] = result.outputs
    assert outputs["gap_analysis"]["gapCount"] == 2400
    assert outputs["gap_analysis"]["gapsOmitted"] > 0
    assert outputs["questionnaire_generation"]["questionCount"] == 2400


def test_phases_are_deterministic_and_name_the_registry_order() -> None:
    following = {
        "initialization": "platform_detection",
        "platform_detection": "automated_collection",
        "automated_collection": "gap_analysis",
        "gap_analysis": "questionnaire_generation",
        "questionnaire_generation": "manual_collection",
        "manual_collection": "synthesis",
        "synthesis": None,
    }
    for phase in COLLECTION.phase_names:
        first = BUILT_IN_PHASES[phase](context(phase))
        again = BUILT_IN_PHASES[phase](dataclasses.replace(context(phase), attempt=2))
        assert first == again, f"{phase} differs between attempts"
        assert first.next_phase == following[phase], phase
