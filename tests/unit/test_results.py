"""Phase results survive the trip through a 4096-byte termination message."""

from __future__ import annotations

from typing import Any

import pytest

from collectionflow.domain.results import (
    TERMINATION_MESSAGE_LIMIT,
    InvalidPhaseResult,
    PhaseOutcome,
    PhaseResult,
)

pytestmark = pytest.mark.unit


def phase_result(**fields: Any) -> PhaseResult:
    defaults: dict[str, Any] = {"state": PhaseOutcome.SUCCEEDED, "next_phase": "gap_analysis"}
    return PhaseResult(**(defaults | fields))


def size(message: str) -> int:
    return len(message.encode())


def test_small_result_round_trips_unchanged() -> None:
    original = phase_result(
        agent_decision="platforms found", outputs={"platforms": ["aws", "gcp"], "n": 2}
    )
    assert PhaseResult.from_message(original.to_message()) == original


def test_message_is_the_documented_json_object() -> None:
    message = phase_result(state=PhaseOutcome.FAILED, next_phase=None, error="boom").to_message()
    assert message == (
        '{"state":"failed","next_phase":null,"agent_decision":"","outputs":{},"error":"boom"}'
    )


HUGE = {
    "one-big-value": {"outputs": {"blob": "x" * 100_000}},
    "many-keys": {"outputs": {f"key-{i:05}": i for i in range(5_000)}},
    "long-keys": {"outputs": {f"{i:02}" + "k" * 2_000: i for i in range(30)}},
    "multibyte": {"outputs": {"text": "é" * 5_000}, "error": "ü" * 3_000},
    "escaped-error": {"outputs": {"a": 1, "b": "x" * 5_000}, "error": "\x00" * 3_000},
    "long-decision": {"outputs": {"b": "x" * 5_000}, "agent_decision": "d" * 10_000},
}


@pytest.mark.parametrize("fields", HUGE.values(), ids=HUGE.keys())
def test_huge_results_fit_and_round_trip(fields: dict[str, Any]) -> None:
    original = phase_result(**fields)
    message = original.to_message()
    assert size(message) <= TERMINATION_MESSAGE_LIMIT
    parsed = PhaseResult.from_message(message)
    assert (parsed.state, parsed.next_phase) == (original.state, original.next_phase)
    assert parsed.outputs["truncated"] is True


def test_worst_case_still_fits() -> None:
    """Every field huge and made of characters JSON escapes to six bytes each."""
    nasty = "\x01" * 20_000
    original = PhaseResult(
        state=PhaseOutcome.FAILED,
        next_phase=nasty,
        agent_decision=nasty,
        outputs={f"{i:02}{nasty}": nasty for i in range(30)},
        error=nasty,
    )
    parsed = PhaseResult.from_message(original.to_message())
    assert size(original.to_message()) <= TERMINATION_MESSAGE_LIMIT
    assert parsed.state is PhaseOutcome.FAILED
    assert parsed.outputs == {"truncated": True, "keys": []}


def test_shrunk_outputs_list_the_first_keys() -> None:
    parsed = PhaseResult.from_message(
        phase_result(outputs={f"key-{i:05}": "v" * 10 for i in range(5_000)}).to_message()
    )
    assert parsed.outputs == {"truncated": True, "keys": [f"key-{i:05}" for i in range(20)]}


def test_shrinking_keeps_the_head_of_the_error() -> None:
    original = phase_result(
        state=PhaseOutcome.FAILED, outputs={"blob": "x" * 10_000}, error="E" * 5_000
    )
    parsed = PhaseResult.from_message(original.to_message())
    assert parsed.state is PhaseOutcome.FAILED
    assert parsed.error is not None
    assert parsed.error.startswith("E" * 200)


GARBAGE = {
    "empty": "",
    "text": "Error: something went wrong",
    "truncated-json": '{"state": "succeeded", "next_ph',
    "list": "[]",
    "null": "null",
    "empty-object": "{}",
    "bad-state": '{"state": "maybe", "next_phase": null}',
    "extra-field": '{"state": "succeeded", "next_phase": null, "surprise": 1}',
    "outputs-not-object": '{"state": "succeeded", "next_phase": null, "outputs": [1]}',
}


@pytest.mark.parametrize("message", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_is_not_a_phase_result(message: str) -> None:
    with pytest.raises(InvalidPhaseResult, match="not a phase result"):
        PhaseResult.from_message(message)


def test_invalid_result_quotes_a_short_excerpt() -> None:
    with pytest.raises(InvalidPhaseResult) as caught:
        PhaseResult.from_message("line one\nline two " + "z" * 1_000)
    assert "'line one line two" in str(caught.value)
    assert "z" * 201 not in str(caught.value)
