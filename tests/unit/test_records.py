"""The records shared by domain and database, above all: master-flow writes use the master id."""

from __future__ import annotations

import pytest

from collectionflow.domain.records import (
    ChildSnapshot,
    FlowIds,
    MasterFlowUpdate,
    RunRowState,
    master_update_for,
)

pytestmark = pytest.mark.unit


def test_master_update_is_addressed_to_the_master_not_the_child() -> None:
    ids = FlowIds(master_flow_id="master-1", child_flow_id="child-1")
    snapshot = ChildSnapshot(
        current_phase="gap_analysis",
        next_phase="questionnaire_generation",
        status="running",
        progress_percentage=42.5,
        phase_state={"gap_analysis": {"gaps": 3}},
    )

    update = master_update_for(ids, snapshot)

    assert update == MasterFlowUpdate(
        master_flow_id="master-1",
        status="running",
        current_phase="gap_analysis",
        progress_percentage=42.5,
    )
    assert update.master_flow_id != ids.child_flow_id


@pytest.mark.parametrize(
    ("state", "finished"),
    [
        (RunRowState.RUNNING, False),
        (RunRowState.SUCCEEDED, True),
        (RunRowState.FAILED, True),
        (RunRowState.CANCELLED, True),
    ],
)
def test_only_running_is_unfinished(state: RunRowState, finished: bool) -> None:
    assert state.finished is finished
