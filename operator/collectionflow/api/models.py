"""The CollectionFlow API types: the spec a user writes and the status the operator reports.

These pydantic models are the one source of truth for the resource: `api.crd` generates the
CRD's OpenAPI schema from them, and the operator parses every flow it reads through them.
Field names are the Kubernetes camelCase ones; Python code uses snake_case attributes.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "flows.collectionflow.io"
VERSION = "v1alpha1"
KIND = "CollectionFlow"
PLURAL = "collectionflows"
SINGULAR = "collectionflow"
SHORT_NAMES = ("cflow", "cflows")
CATEGORIES = ("flows",)

PHASE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
MAX_PARAMETERS_BYTES = 16 * 1024

PhaseName = Annotated[str, Field(pattern=PHASE_NAME_PATTERN)]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        extra="forbid",
    )

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class EnvVar(ApiModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=253)
    value: str = Field(default="", max_length=4096)


class PhaseOverride(ApiModel):
    """Overrides the registry's settings of one phase, found by name."""

    name: PhaseName
    image: str | None = Field(default=None, min_length=1, max_length=512)
    command: list[str] | None = Field(default=None, max_length=64)
    args: list[str] | None = Field(default=None, max_length=256)
    env: list[EnvVar] | None = Field(default=None, max_length=64)
    timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    retries: int | None = Field(default=None, ge=0, le=20)
    manual: bool | None = None
    stall_timeout_seconds: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)


class RecoveryPolicy(StrEnum):
    RETRY_PHASE = "RetryPhase"
    FAIL = "Fail"


class CollectionFlowSpec(ApiModel):
    flow_type: str = Field(default="collection", pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    master_flow_id: str | None = Field(default=None, pattern=UUID_PATTERN)
    client_account_id: str | None = Field(default=None, max_length=128)
    engagement_id: str | None = Field(default=None, max_length=128)
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Free-form phase input, at most {MAX_PARAMETERS_BYTES} bytes as JSON.",
    )
    phases: list[PhaseOverride] | None = Field(default=None, max_length=32)
    suspend: bool = False
    stall_timeout_seconds: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)
    max_recoveries: int | None = Field(default=None, ge=0, le=50)
    recovery_policy: RecoveryPolicy = RecoveryPolicy.RETRY_PHASE


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
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: dt.datetime
    observed_generation: int | None = Field(default=None, ge=0)


class PhaseHistoryEntry(ApiModel):
    name: PhaseName
    state: PhaseRunState
    attempt: int = Field(ge=1)
    job_name: str | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    message: str | None = None


class CollectionFlowStatus(ApiModel):
    state: FlowState = FlowState.PENDING
    phase: str | None = None
    next_phase: str | None = None
    progress_percentage: int = Field(default=0, ge=0, le=100)
    progress: str | None = Field(default=None, description='Phases completed, as "3/7".')
    attempt: int = Field(default=0, ge=0)
    recoveries: int = Field(default=0, ge=0)
    current_job: str | None = None
    master_flow_id: str | None = None
    child_flow_id: str | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    last_progress_time: dt.datetime | None = None
    input_requested_at: dt.datetime | None = None
    last_input_reminder_time: dt.datetime | None = None
    last_recovery_time: dt.datetime | None = None
    retry_token: str | None = Field(
        default=None, description="The retry annotation value the operator last acted on."
    )
    message: str | None = None
    observed_generation: int | None = None
    phase_history: list[PhaseHistoryEntry] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)

    def condition(self, kind: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)
