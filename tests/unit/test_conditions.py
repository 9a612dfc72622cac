"""kstatus conditions follow the flow state; transition times move only on a status change."""

from __future__ import annotations

import datetime as dt

import pytest

from collectionflow.api.models import Condition, ConditionType, FlowState
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.conditions import Status, conditions_for, set_condition

pytestmark = pytest.mark.unit

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)
ORDER = [
    ConditionType.READY,
    ConditionType.RECONCILING,
    ConditionType.STALLED,
    ConditionType.SUCCEEDED,
]


def statuses(conditions: list[Condition]) -> dict[ConditionType, str]:
    return {c.type: c.status for c in conditions}


def ready(status: Status, at: dt.datetime) -> list[Condition]:
    return set_condition(
        [], ConditionType.READY, status, ConditionReason.PHASE_RUNNING, "first", at, 1
    )


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    updated = set_condition(
        ready("False", NOW), ConditionType.READY, "False", ConditionReason.RECOVERING, "m", LATER, 2
    )
    assert len(updated) == 1
    condition = updated[0]
    assert condition.last_transition_time == NOW
    assert (condition.reason, condition.message, condition.observed_generation) == (
        ConditionReason.RECOVERING,
        "m",
        2,
    )


def test_set_condition_moves_transition_time_when_status_changes() -> None:
    updated = set_condition(
        ready("False", NOW), ConditionType.READY, "True", ConditionReason.SUCCEEDED, "", LATER, 2
    )
    assert [(c.status, c.last_transition_time) for c in updated] == [("True", LATER)]


def test_set_condition_does_not_mutate_its_input() -> None:
    original = ready("False", NOW)
    set_condition(original, ConditionType.READY, "True", ConditionReason.SUCCEEDED, "", LATER, 2)
    assert original[0].status == "False"


def test_conditions_are_kept_in_a_stable_order() -> None:
    conditions: list[Condition] = []
    for kind in reversed(ORDER):
        conditions = set_condition(
            conditions, kind, "Unknown", ConditionReason.PHASE_RUNNING, "", NOW, 1
        )
    assert [c.type for c in conditions] == ORDER


@pytest.mark.parametrize(
    ("state", "stalled", "expected"),
    [
        # Ready, Reconciling, Stalled, Succeeded
        (FlowState.PENDING, False, ("False", "True", "False", "Unknown")),
        (FlowState.RUNNING, False, ("False", "True", "False", "Unknown")),
        (FlowState.RUNNING, True, ("False", "True", "True", "Unknown")),
        (FlowState.WAITING_FOR_INPUT, False, ("False", "True", "False", "Unknown")),
        (FlowState.SUSPENDED, False, ("False", "False", "False", "Unknown")),
        (FlowState.SUCCEEDED, False, ("True", "False", "False", "True")),
        (FlowState.FAILED, False, ("False", "False", "True", "False")),
    ],
)
def test_conditions_for_state(state: FlowState, stalled: bool, expected: tuple[str, ...]) -> None:
    conditions = conditions_for(
        [], state, ConditionReason.WAITING_FOR_INPUT, "what", NOW, 4, stalled=stalled
    )
    assert [c.type for c in conditions] == ORDER
    assert tuple(c.status for c in conditions) == expected
    assert {
        (c.reason, c.message, c.observed_generation, c.last_transition_time) for c in conditions
    } == {(ConditionReason.WAITING_FOR_INPUT, "what", 4, NOW)}


def test_conditions_for_keeps_unchanged_transition_times() -> None:
    running = conditions_for([], FlowState.RUNNING, ConditionReason.PHASE_RUNNING, "", NOW, 1)
    done = conditions_for(running, FlowState.SUCCEEDED, ConditionReason.SUCCEEDED, "", LATER, 2)
    times = {c.type: c.last_transition_time for c in done}
    assert times == {
        ConditionType.READY: LATER,  # False -> True
        ConditionType.RECONCILING: LATER,  # True -> False
        ConditionType.STALLED: NOW,  # False -> False
        ConditionType.SUCCEEDED: LATER,  # Unknown -> True
    }
    assert statuses(done)[ConditionType.READY] == "True"
