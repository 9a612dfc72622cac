"""The child-flow record (the database's view of a flow), derived from the flow's status."""

from __future__ import annotations

from collectionflow.api.models import CollectionFlowStatus, FlowState
from collectionflow.domain.records import ChildSnapshot, ChildStatus
from collectionflow.domain.registry import FlowDefinition

CHILD_STATUS = {
    FlowState.PENDING: ChildStatus.INITIALIZED,
    FlowState.SUSPENDED: ChildStatus.PAUSED,
    FlowState.SUCCEEDED: ChildStatus.COMPLETED,
    FlowState.FAILED: ChildStatus.FAILED,
}


def child_snapshot(definition: FlowDefinition, status: CollectionFlowStatus) -> ChildSnapshot:
    """The child-flow record as it should be after `status`, in the child's vocabulary."""

    def stored(phase: str | None) -> str | None:
        return definition.phase(phase).stored_phase if phase else None

    child_status: str
    if status.state in CHILD_STATUS:
        child_status = CHILD_STATUS[status.state]
    elif status.phase is not None:
        child_status = definition.phase(status.phase).stored_status
    else:
        child_status = ChildStatus.INITIALIZED
    return ChildSnapshot(
        current_phase=stored(status.phase),
        next_phase=stored(status.next_phase),
        status=child_status,
        progress_percentage=status.progress_percentage,
        phase_state={
            "state": status.state.value,
            "phase": status.phase,
            "attempt": status.attempt,
            "recoveries": status.recoveries,
            "progress": status.progress,
            "history": [
                {"phase": h.name, "attempt": h.attempt, "state": h.state.value}
                for h in status.phase_history
            ],
        },
    )
