"""kstatus-style conditions, derived from the flow's state so they can never disagree with it.

`Ready`, `Reconciling`, `Stalled` and `Succeeded` are what `kubectl wait`, Argo CD and Flux
read. `lastTransitionTime` only moves when a condition's status really changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from collectionflow.api.models import Condition, ConditionType, FlowState
from collectionflow.api.reasons import ConditionReason

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: list[Condition],
    kind: ConditionType,
    status: Status,
    reason: ConditionReason,
    message: str,
    now: dt.datetime,
    generation: int | None,
) -> list[Condition]:
    """A copy of `conditions` with `kind` set, keeping its transition time if unchanged."""
    previous = next((c for c in conditions if c.type == kind), None)
    transition = previous.last_transition_time if previous and previous.status == status else now
    updated = Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    others = [c for c in conditions if c.type != kind]
    return sorted([*others, updated], key=lambda c: list(ConditionType).index(c.type))


def conditions_for(
    conditions: list[Condition],
    state: FlowState,
    reason: ConditionReason,
    message: str,
    now: dt.datetime,
    generation: int | None,
    stalled: bool = False,
) -> list[Condition]:
    """All four conditions as they follow from `state` (and a stall being recovered)."""
    ready: Status = "True" if state is FlowState.SUCCEEDED else "False"
    in_progress = state in (FlowState.PENDING, FlowState.RUNNING, FlowState.WAITING_FOR_INPUT)
    reconciling: Status = "True" if in_progress else "False"
    is_stalled: Status = "True" if stalled or state is FlowState.FAILED else "False"
    succeeded: Status = {
        FlowState.SUCCEEDED: "True",
        FlowState.FAILED: "False",
    }.get(state, "Unknown")  # type: ignore[assignment]
    result = conditions
    for kind, status in (
        (ConditionType.READY, ready),
        (ConditionType.RECONCILING, reconciling),
        (ConditionType.STALLED, is_stalled),
        (ConditionType.SUCCEEDED, succeeded),
    ):
        result = set_condition(result, kind, status, reason, message, now, generation)
    return result
