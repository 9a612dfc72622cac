"""The CollectionFlow API types: the spec a user writes and the status the operator reports.

These pydantic models are the one source of truth for the resource: `api.crd` generates the
CRD's OpenAPI schema from them, and the operator parses every flow it reads through them.
Field names are the Kubernetes camelCase ones; Python code uses snake_case attributes.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from collectionflow.api.base import ApiModel
from collectionflow.api.env import EnvVar
from collectionflow.api.limits import (
    DEFAULT_MAX_PHASE_RUNS,
    MAX_PARAMETERS_BYTES,
    MAX_PARAMETERS_DEPTH,
)

GROUP = "flows.collectionflow.io"
VERSION = "v1alpha1"
KIND = "CollectionFlow"
PLURAL = "collectionflows"
SINGULAR = "collectionflow"
SHORT_NAMES = ("cflow", "cflows")
CATEGORIES = ("flows",)

PHASE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

PhaseName = Annotated[str, Field(pattern=PHASE_NAME_PATTERN)]


class PhaseOverride(ApiModel):
    """Overrides the registry's settings of one phase, found by name."""

    name: PhaseName = Field(
        description="The phase to override, by its registry name (initialization, "
        "platform_detection, ...); each phase at most once."
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Image of the phase's Job. Default: the operator's worker image. A phase "
        "with its own image always runs as a Job, never in the operator's process.",
    )
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None,
        max_length=64,
        description="Command of the phase's container, at most 64 items of 4096 bytes. "
        "Default: `collectionflow worker`. A phase with its own command or image always runs "
        "as a Job, never in the operator's process.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    args: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None,
        max_length=256,
        description="Arguments of the command, each at most 4096 bytes.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    env: list[EnvVar] | None = Field(
        default=None,
        max_length=64,
        description="Extra environment variables of the phase's container.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=7 * 24 * 3600,
        description="Seconds an attempt may run before its Job fails (activeDeadlineSeconds), "
        "1 to 604800. Default: the registry's, 600 to 1800 by phase.",
    )
    retries: int | None = Field(
        default=None,
        ge=0,
        le=20,
        description="Pod retries within one attempt (the Job's backoffLimit), 0 to 20. Default: 2.",
    )
    manual: bool | None = Field(
        default=None,
        description="Wait for input before the phase runs: the flow is WaitingForInput until "
        "annotated flows.collectionflow.io/input-complete=true. Default: the registry's "
        "(manual_collection only).",
    )
    stall_timeout_seconds: int | None = Field(
        default=None,
        ge=10,
        le=7 * 24 * 3600,
        description="Seconds without a heartbeat before this phase is stalled (NoProgress), "
        "10 to 604800. Default: spec.stallTimeoutSeconds.",
    )


class Runner(StrEnum):
    """Where a phase attempt runs."""

    JOB = "Job"
    IN_PROCESS = "InProcess"
    AUTO = "Auto"


class RecoveryPolicy(StrEnum):
    """What the operator does with a stalled phase."""

    RETRY_PHASE = "RetryPhase"
    FAIL = "Fail"


class CollectionFlowSpec(ApiModel):
    """The flow a user asks for: its type, its input, and how its phases run."""

    flow_type: str = Field(
        default="collection",
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="Registry flow type: which phases run, in which order. Default: collection.",
    )
    master_flow_id: str | None = Field(
        default=None,
        pattern=UUID_PATTERN,
        description="UUID of an existing master flow in the database to attach this flow to. "
        "Unset: a master flow is created. An id the database lacks fails the flow "
        "(UnknownMasterFlow). Kept once the flow first runs: a later change is refused with a "
        "Warning Event MasterFlowKept.",
    )
    client_account_id: str | None = Field(
        default=None,
        max_length=128,
        description="Client account, stored on the master flow this flow creates "
        "(a master named by masterFlowId keeps its own: Warning Event MasterFieldsUnused).",
    )
    engagement_id: str | None = Field(
        default=None,
        max_length=128,
        description="Engagement, stored on the master flow this flow creates "
        "(a master named by masterFlowId keeps its own: Warning Event MasterFieldsUnused).",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Free-form phase input, at most {MAX_PARAMETERS_BYTES} bytes as JSON "
        f"and nested at most {MAX_PARAMETERS_DEPTH} deep; every phase reads it "
        "(COLLECTIONFLOW_PARAMETERS). `simulate` (test and demo knobs) is refused unless the "
        "operator allows simulation.",
        json_schema_extra={"maxProperties": 256},
    )
    phases: list[PhaseOverride] | None = Field(
        default=None,
        max_length=32,
        description="Per-phase overrides, keyed by phase name (at most one per phase).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    suspend: bool = Field(
        default=False,
        description="Hold the flow before its next phase; the running phase finishes first. "
        "Set false to resume.",
    )
    stall_timeout_seconds: int | None = Field(
        default=None,
        ge=10,
        le=7 * 24 * 3600,
        description="Seconds without a heartbeat before a running phase is stalled "
        "(NoProgress), 10 to 604800. Default: the operator's, 300.",
    )
    max_recoveries: int | None = Field(
        default=None,
        ge=0,
        le=50,
        description="Stall recoveries before the flow fails with RecoveryExhausted, 0 to 50. "
        "Default: the operator's, 3.",
    )
    recovery_policy: RecoveryPolicy = Field(
        default=RecoveryPolicy.RETRY_PHASE,
        description="RetryPhase: rerun a stalled phase as a new attempt; Fail: fail the flow.",
    )
    runner: Literal[Runner.JOB] | None = Field(
        default=None,
        description="Job: every phase runs as a Job, and the flow fails if a Job is refused "
        "(never in the operator's process). Unset: the operator's setting decides, which may "
        "let a built-in phase run in the operator's process when Jobs are refused.",
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        max_length=16,
        description="Node labels every phase pod must match (its nodeSelector), at most 16. A "
        "selector no node matches keeps the pod Pending (Unschedulable), which the flow's "
        "status names.",
    )
    max_phase_runs: int = Field(
        default=DEFAULT_MAX_PHASE_RUNS,
        ge=1,
        le=1000,
        description="Phase attempts the flow may start in all, retries, recoveries and loops "
        "included, 1 to 1000; one more fails the flow with TransitionBudgetExhausted. "
        f"Default: {DEFAULT_MAX_PHASE_RUNS}.",
    )


class FlowState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    WAITING_FOR_INPUT = "WaitingForInput"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PhaseRunState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ABANDONED = "Abandoned"


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    SUCCEEDED = "Succeeded"


class Condition(ApiModel):
    """A kstatus condition: Ready, Reconciling, Stalled or Succeeded."""

    type: ConditionType = Field(description="Ready, Reconciling, Stalled or Succeeded.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="Why, in CamelCase (PhaseRunning, PhaseFailed, NoProgress, ...).",
    )
    message: str = Field(default="", max_length=32768, description="Why, for people.")
    last_transition_time: dt.datetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation the condition is about."
    )


class PhaseHistoryEntry(ApiModel):
    """One attempt of one phase."""

    name: PhaseName = Field(description="The phase.")
    state: PhaseRunState = Field(description="Running, Succeeded, Failed or Abandoned.")
    attempt: int = Field(ge=1, description="The attempt, from 1.")
    job_name: str | None = Field(default=None, description="The attempt's Job.")
    started_at: dt.datetime | None = Field(default=None, description="When it started.")
    finished_at: dt.datetime | None = Field(default=None, description="When it finished.")
    message: str | None = Field(default=None, description="How it ended.")
    runner: Runner | None = Field(
        default=None, description="Where the attempt ran: Job or InProcess."
    )


class CollectionFlowStatus(ApiModel):
    """What the operator reports; written by the operator only."""

    state: FlowState = Field(
        default=FlowState.PENDING,
        description="Pending, Running, WaitingForInput, Suspended, Succeeded or Failed.",
    )
    phase: str | None = Field(default=None, description="The current (or last) phase.")
    next_phase: str | None = Field(default=None, description="The phase after it, if any.")
    progress_percentage: int = Field(
        default=0, ge=0, le=100, description="Percent of the flow done, 0 to 100."
    )
    progress: str | None = Field(default=None, description='Phases completed, as "3/7".')
    attempt: int = Field(default=0, ge=0, description="Attempt of the current phase, from 1.")
    recoveries: int = Field(default=0, ge=0, description="Stall recoveries so far.")
    phase_runs: int = Field(
        default=0, ge=0, description="Phase attempts started so far (spec.maxPhaseRuns)."
    )
    current_job: str | None = Field(default=None, description="The running phase's Job.")
    master_flow_id: str | None = Field(
        default=None, description="The master flow's id in the database."
    )
    child_flow_id: str | None = Field(
        default=None, description="This flow's (child) id in the database."
    )
    started_at: dt.datetime | None = Field(
        default=None, description="When the first phase started."
    )
    completed_at: dt.datetime | None = Field(
        default=None, description="When the flow Succeeded or Failed."
    )
    last_progress_time: dt.datetime | None = Field(
        default=None, description="When a phase last started or finished."
    )
    estimated_completion_time: dt.datetime | None = Field(
        default=None,
        description="When the running flow should succeed: the median durations of its flow "
        "type's recent phase runs, over the phases left. Unset when nothing tells (no runs to "
        "go by) and while the flow does not run.",
    )
    input_requested_at: dt.datetime | None = Field(
        default=None, description="When the flow began waiting for input."
    )
    last_input_reminder_time: dt.datetime | None = Field(
        default=None, description="When the last InputReminder Event was posted."
    )
    last_recovery_time: dt.datetime | None = Field(
        default=None, description="When the last stall recovery happened."
    )
    retry_token: str | None = Field(
        default=None, description="The retry annotation value the operator last acted on."
    )
    message: str | None = Field(default=None, description="What is happening, for people.")
    observed_generation: int | None = Field(
        default=None, description="The spec generation this status is about."
    )
    phase_history: list[PhaseHistoryEntry] = Field(
        default_factory=list,
        description="Every phase attempt, oldest first, at most the last 50.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled and Succeeded, for kubectl wait.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)
