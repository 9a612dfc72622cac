"""The records shared by domain and database, above all: master-flow writes use the master id."""

from __future__ import annotations

import pytest

from collectionflow.api.models import CollectionFlowSpec, CollectionFlowStatus
from collectionflow.domain.records import (
    ChildSnapshot,
    ExistingMaster,
    FlowIds,
    MasterFlowUpdate,
    NewMaster,
    RunRowState,
    master_link,
    master_update_for,
    recorded_ids,
)

MASTER = "6f1d1d0e-5f43-4a53-9d0e-8a7c1b9e2c11"

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


def test_a_named_master_is_joined_and_keeps_its_own_account_and_engagement() -> None:
    spec = CollectionFlowSpec.model_validate(
        {"masterFlowId": MASTER, "clientAccountId": "acct", "engagementId": "eng"}
    )

    assert master_link(spec) == ExistingMaster(MASTER)


def test_without_a_named_master_a_new_one_carries_the_account_and_engagement() -> None:
    spec = CollectionFlowSpec.model_validate({"clientAccountId": "acct", "engagementId": "eng"})

    assert master_link(spec) == NewMaster("acct", "eng")
    assert master_link(CollectionFlowSpec()) == NewMaster(None, None)


@pytest.mark.parametrize(
    ("status", "ids"),
    [
        (None, None),
        (CollectionFlowStatus(), None),
        (CollectionFlowStatus(master_flow_id="m"), None),
        (CollectionFlowStatus(child_flow_id="c"), None),
        (CollectionFlowStatus(master_flow_id="m", child_flow_id="c"), FlowIds("m", "c")),
    ],
)
def test_a_status_records_the_ids_only_once_it_holds_both(
    status: CollectionFlowStatus | None, ids: FlowIds | None
) -> None:
    assert recorded_ids(status) == ids
