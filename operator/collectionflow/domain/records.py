"""The plain records the domain and the database layer hand each other.

They keep the database out of the domain: the domain decides with these, the repository stores
and loads them. The master flow and the child (collection) flow have different ids, and every
master-flow write must carry the master id; `master_update_for` is the one place that builds
such a write from a child's state, so the child id can never end up there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from collectionflow.api.models import CollectionFlowSpec, CollectionFlowStatus

JsonObject = dict[str, Any]


class ChildStatus(StrEnum):
    """The lifecycle words of a child (and master) flow record's `status`, in the older
    application's vocabulary. While a phase is current the status is that phase's
    `stored_status` (`domain.registry`) instead."""

    INITIALIZED = "initialized"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunRowState(StrEnum):
    """The state of a phase run's row in the database (`phase_runs.state`). A flow's status
    shows attempts with `api.models.PhaseRunState`; an abandoned attempt there is a cancelled
    row here."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self is not RunRowState.RUNNING


@dataclass(frozen=True)
class FlowRef:
    """A CollectionFlow object as the database knows it."""

    flow_uid: str
    namespace: str
    name: str
    flow_type: str


@dataclass(frozen=True)
class ExistingMaster:
    """The flow joins this master-flow record (`spec.masterFlowId`)."""

    master_flow_id: str


@dataclass(frozen=True)
class NewMaster:
    """The flow gets a master-flow record of its own, carrying these."""

    client_account_id: str | None = None
    engagement_id: str | None = None


MasterLink = ExistingMaster | NewMaster


def master_link(spec: CollectionFlowSpec) -> MasterLink:
    """The master record a flow's spec asks for: the one it names, else a new one. The account
    and engagement describe a master the flow creates; one it joins keeps its own."""
    if spec.master_flow_id is not None:
        return ExistingMaster(spec.master_flow_id)
    return NewMaster(spec.client_account_id, spec.engagement_id)


@dataclass(frozen=True)
class FlowIds:
    """The ids of a flow's master and child records."""

    master_flow_id: str
    child_flow_id: str


def recorded_ids(status: CollectionFlowStatus | None) -> FlowIds | None:
    """The ids a flow's status has recorded, once the operator has written both."""
    if status is None or not (status.master_flow_id and status.child_flow_id):
        return None
    return FlowIds(status.master_flow_id, status.child_flow_id)


@dataclass(frozen=True)
class ChildSnapshot:
    """The child-flow record's state; phase names are already in the child's vocabulary."""

    current_phase: str | None
    next_phase: str | None
    status: str
    progress_percentage: float
    phase_state: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class PhaseRunRecord:
    """One attempt of one phase entering `state` at `at`: a running attempt's record says
    when it started, a finished one's when it finished. `result` holds the phase's outputs
    once it succeeded."""

    flow_uid: str
    phase: str
    attempt: int
    job_name: str
    state: RunRowState
    at: datetime
    result: JsonObject | None = None
    error: str | None = None


@dataclass(frozen=True)
class JournalEntry:
    """A failure worth keeping; entries with the same `dedupe_key` are stored once."""

    source: str
    operation: str
    dedupe_key: str
    flow_uid: str | None = None
    ids: FlowIds | None = None
    phase: str | None = None
    next_phase: str | None = None
    agent_decision: str | None = None
    error_message: str | None = None
    diagnostics: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class MasterFlowUpdate:
    master_flow_id: str
    status: str
    current_phase: str | None
    progress_percentage: float


def master_update_for(ids: FlowIds, snapshot: ChildSnapshot) -> MasterFlowUpdate:
    """The master-flow write mirroring a child's state, addressed to the master id."""
    return MasterFlowUpdate(
        master_flow_id=ids.master_flow_id,
        status=snapshot.status,
        current_phase=snapshot.current_phase,
        progress_percentage=snapshot.progress_percentage,
    )


@dataclass(frozen=True)
class Transition:
    """What one phase transition writes to the database, in one transaction."""

    finished: PhaseRunRecord | None = None
    started: PhaseRunRecord | None = None
    child: tuple[str, ChildSnapshot] | None = None
    master: MasterFlowUpdate | None = None
    child_flow_id: str | None = None
