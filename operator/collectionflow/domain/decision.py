"""What the state machine reads and what it decides: the flow, its Job, and a `Decision`.

`FlowView` is a CollectionFlow as the machine needs it; `JobObservation` is what the current
attempt's Job says; a `Decision` is everything a reconcile carries out: the new status, the
Job to start, the phase run to record, the failure to journal and the Events to post.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from collectionflow.api.limits import InputKind
from collectionflow.api.models import CollectionFlowSpec, CollectionFlowStatus
from collectionflow.api.reasons import EventReason
from collectionflow.domain.plan import FlowPlan, InvalidSpec, plan_for
from collectionflow.domain.results import PhaseResult


@dataclass(frozen=True)
class FlowView:
    """A CollectionFlow as the state machine needs it."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: CollectionFlowSpec
    status: CollectionFlowStatus
    input_complete: bool = False
    manual_input: dict[str, Any] | None = None
    input_error: str | None = None
    retry_request: str | None = None
    spec_error: str | None = None
    allow_simulation: bool = False

    @cached_property
    def plan(self) -> FlowPlan:
        """The flow's plan, worked out once per view (one per reconcile); InvalidSpec if the
        spec has none."""
        if self.spec_error is not None:
            raise InvalidSpec(self.spec_error)
        return plan_for(self.spec, self.allow_simulation)


class JobState(StrEnum):
    MISSING = "Missing"
    ACTIVE = "Active"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobObservation:
    """The current attempt's Job and the last of its containers to terminate."""

    name: str
    state: JobState
    result: PhaseResult | None = None
    result_error: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    termination_message: str | None = None
    job_reason: str | None = None
    job_message: str | None = None


@dataclass(frozen=True)
class StartPhase:
    phase: str
    attempt: int
    manual_input: dict[str, Any] | None = None


@dataclass(frozen=True)
class PhaseFinished:
    phase: str
    attempt: int
    job_name: str
    succeeded: bool
    result: PhaseResult | None
    error: str | None


@dataclass(frozen=True)
class Failure:
    """A failure of the flow's current attempt, for the journal: what failed, and everything
    needed to diagnose it (`domain.journal.failure_entry` adds the flow, phase and attempt)."""

    operation: str
    error_message: str
    next_phase: str | None = None
    agent_decision: str | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowEvent:
    type: Literal["Normal", "Warning"]
    reason: EventReason
    message: str


def one_event(first: FlowEvent, then: tuple[FlowEvent, ...]) -> tuple[FlowEvent, ...]:
    """`first`, then `then`, as one Event where one transition says both: a phase that
    succeeded (or a flow resumed, a retry asked for) and the phase that starts because of it
    (`PhaseSucceeded: phase a attempt 1 succeeded; running phase b (attempt 1)`), or what the
    flow does next, which then names the Event (`FlowSucceeded`, `InputRequired`,
    `FlowSuspended`: `phase a attempt 1 succeeded; ...`). A Warning stays an Event of its own.
    One transition, one write to the apiserver."""
    if first.type != "Normal" or not then or then[0].type != "Normal":
        return (first, *then)
    following, *rest = then
    reason = first.reason if following.reason is EventReason.PHASE_STARTED else following.reason
    return (FlowEvent("Normal", reason, f"{first.message}; {following.message}"), *rest)


@dataclass(frozen=True)
class Decision:
    status: CollectionFlowStatus | None = None
    start: StartPhase | None = None
    finished: PhaseFinished | None = None
    failure: Failure | None = None
    events: tuple[FlowEvent, ...] = ()
    consume_input: bool = False
    rejected: InputKind | None = None  # an untrusted input this decision refused


NOTHING = Decision()
