"""The flow registry and the choice of a phase's successor."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from collectionflow.domain.machine import next_phase_for
from collectionflow.domain.registry import (
    COLLECTION,
    FLOW_TYPES,
    UnknownFlowType,
    UnknownPhase,
    flow_definition,
)
from collectionflow.domain.results import PhaseOutcome, PhaseResult

pytestmark = pytest.mark.unit

COLLECTION_PHASES = (
    "initialization",
    "platform_detection",
    "automated_collection",
    "gap_analysis",
    "questionnaire_generation",
    "manual_collection",
    "synthesis",
)


def result(next_phase: str | None) -> PhaseResult:
    return PhaseResult(state=PhaseOutcome.SUCCEEDED, next_phase=next_phase)


def test_collection_phases_in_order() -> None:
    assert COLLECTION.phase_names == COLLECTION_PHASES
    assert COLLECTION.first_phase == "initialization"
    assert [COLLECTION.position(name) for name in COLLECTION_PHASES] == list(range(7))


def test_only_manual_collection_is_manual() -> None:
    assert [p.name for p in COLLECTION.phases if p.manual] == ["manual_collection"]


def test_flow_definition_by_type() -> None:
    assert flow_definition("collection") is COLLECTION
    assert set(FLOW_TYPES) == {"collection"}


def test_unknown_flow_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownFlowType, match=r"'survey'.*known: collection"):
        flow_definition("survey")


@pytest.mark.parametrize(
    "lookup", [COLLECTION.phase, COLLECTION.position, COLLECTION.next_phase_for]
)
def test_unknown_phase_raises(lookup: Callable[[str], object]) -> None:
    with pytest.raises(UnknownPhase, match=r"'finalization' is not part of flow type 'collection'"):
        lookup("finalization")


@pytest.mark.parametrize(
    ("phase", "successor"),
    [*itertools.pairwise(COLLECTION_PHASES), ("synthesis", None)],
)
def test_registry_successor(phase: str, successor: str | None) -> None:
    assert COLLECTION.next_phase_for(phase) == successor


@pytest.mark.parametrize(
    ("phase", "stored_phase", "stored_status"),
    [
        ("initialization", "initialization", "initialization"),
        ("manual_collection", "manual_collection", "manual_collection"),
        ("synthesis", "finalization", "automated_collection"),
    ],
)
def test_child_record_vocabulary(phase: str, stored_phase: str, stored_status: str) -> None:
    definition = COLLECTION.phase(phase)
    assert (definition.stored_phase, definition.stored_status) == (stored_phase, stored_status)


@pytest.mark.parametrize(
    ("phase", "phase_result", "expected"),
    [
        pytest.param(
            "questionnaire_generation", result("synthesis"), "synthesis", id="result-wins"
        ),
        pytest.param("initialization", result("gap_analysis"), "gap_analysis", id="result-skips"),
        pytest.param("gap_analysis", result("initialization"), "initialization", id="result-back"),
        pytest.param("gap_analysis", result(None), "questionnaire_generation", id="result-none"),
        pytest.param("gap_analysis", None, "questionnaire_generation", id="no-result"),
        pytest.param("synthesis", result(None), None, id="last-phase"),
    ],
)
def test_next_phase_for(phase: str, phase_result: PhaseResult | None, expected: str | None) -> None:
    assert next_phase_for(COLLECTION, phase, phase_result) == expected


def test_next_phase_for_rejects_an_unknown_choice() -> None:
    with pytest.raises(UnknownPhase, match="'finalization'"):
        next_phase_for(COLLECTION, "gap_analysis", result("finalization"))
