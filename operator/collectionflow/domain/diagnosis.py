"""Why a flow is not moving, what happens next, and when: one diagnosis, used everywhere.

Computed from the same evidence as the stall rules (`domain.stall.Evidence`), so what it
announces is what the stall sweep will do: "pod cannot start: ImagePullBackOff: <kubelet
message>; PodNotStarting at 18:30:22Z, then attempt 2 (recovery 1 of 3)". The reconciler writes
its one-line form to `status.message` (with reason `Waiting` on `Reconciling`) when something
abnormal holds the flow; `collectionflow why` prints all of it. Pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from collectionflow.api.models import (
    CollectionFlowStatus,
    ConditionType,
    FlowState,
    RecoveryPolicy,
)
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import FlowView, JobState
from collectionflow.domain.entering import running_message
from collectionflow.domain.failing import moved
from collectionflow.domain.stall import (
    Evidence,
    PodWait,
    first_beat_overdue,
    heartbeat_lapsed,
    pod_wait,
)

DATABASE_HELD = "the database is unavailable; the flow is held"


class WaitsFor(StrEnum):
    """What a flow that is not at rest waits for."""

    START = "Start"
    POD_SCHEDULING = "PodScheduling"
    IMAGE_PULL = "ImagePull"
    CONTAINER_CONFIG = "ContainerConfig"
    POD_START = "PodStart"
    FIRST_HEARTBEAT = "FirstHeartbeat"
    HEARTBEAT = "Heartbeat"
    PHASE = "Phase"
    JOB = "Job"
    INPUT = "Input"
    SUSPENDED = "Suspended"
    DATABASE = "Database"
    NOTHING = "Nothing"


ABNORMAL = frozenset(
    {
        WaitsFor.POD_SCHEDULING,
        WaitsFor.IMAGE_PULL,
        WaitsFor.CONTAINER_CONFIG,
        WaitsFor.HEARTBEAT,
        WaitsFor.DATABASE,
    }
)
_POD_WAITS = {
    "scheduling": WaitsFor.POD_SCHEDULING,
    "image": WaitsFor.IMAGE_PULL,
    "config": WaitsFor.CONTAINER_CONFIG,
    "start": WaitsFor.POD_START,
}


@dataclass(frozen=True)
class Recoveries:
    """How a stall of the flow would be handled: its policy and what is left of its budget."""

    policy: RecoveryPolicy
    used: int
    limit: int


@dataclass(frozen=True)
class Diagnosis:
    waits_for: WaitsFor
    summary: str
    since: dt.datetime | None = None
    next_action: str | None = None
    next_at: dt.datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def abnormal(self) -> bool:
        """Something other than the phase's own work or a person holds the flow."""
        return self.waits_for in ABNORMAL

    def line(self) -> str:
        """The one-line form, for the status message."""
        return self.summary + (f"; {self.next_action}" if self.next_action else "")

    @classmethod
    def invalid(cls, problem: str) -> Diagnosis:
        """A flow whose spec has no plan: the operator fails it at its next reconcile."""
        return cls(WaitsFor.NOTHING, problem, next_action="the operator fails it (InvalidSpec)")

    def to_json(self) -> dict[str, Any]:
        return {
            "waitsFor": self.waits_for.value,
            "summary": self.summary,
            "since": _iso(self.since),
            "nextAction": self.next_action,
            "nextAt": _iso(self.next_at),
            "abnormal": self.abnormal,
            "evidence": self.evidence,
        }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def clock(moment: dt.datetime) -> str:
    """A time of day as people read it in a message: 18:30:22Z."""
    return moment.astimezone(dt.UTC).strftime("%H:%M:%SZ")


def _after_stall(stall: str, at: dt.datetime, e: Evidence, recoveries: Recoveries) -> str:
    """What the sweep does when `stall` is declared at `at`."""
    if recoveries.policy is RecoveryPolicy.FAIL:
        return f"{stall} at {clock(at)}, then the flow fails (recoveryPolicy Fail)"
    if recoveries.used >= recoveries.limit:
        return (
            f"{stall} at {clock(at)}, then the flow fails with RecoveryExhausted "
            f"({recoveries.used} of {recoveries.limit} recoveries used)"
        )
    return (
        f"{stall} at {clock(at)}, then attempt {e.attempt + 1} "
        f"(recovery {recoveries.used + 1} of {recoveries.limit})"
    )


def diagnose(
    e: Evidence,
    recoveries: Recoveries,
    *,
    input_requested_at: dt.datetime | None = None,
    reminder_at: dt.datetime | None = None,
    database_down_since: dt.datetime | None = None,
    database_held: bool = False,
) -> Diagnosis:
    """Why the flow of `e` is not moving (or that it is), and what happens next, when.
    `database_held`: the database is known down, since an unknown time."""
    held = database_held or database_down_since is not None
    if held and e.state not in (FlowState.SUCCEEDED, FlowState.FAILED):
        return Diagnosis(
            WaitsFor.DATABASE,
            DATABASE_HELD,
            since=database_down_since,
            next_action="it goes on when the database answers (probed every second)",
        )
    match e.state:
        case FlowState.SUCCEEDED | FlowState.FAILED:
            return Diagnosis(WaitsFor.NOTHING, f"at rest: {e.state.value}")
        case FlowState.PENDING:
            return Diagnosis(WaitsFor.START, "its first phase starts at the next reconcile")
        case FlowState.SUSPENDED:
            return Diagnosis(
                WaitsFor.SUSPENDED,
                f"suspended before phase {e.phase} (spec.suspend)",
                next_action="resumes when spec.suspend is set to false",
            )
        case FlowState.WAITING_FOR_INPUT:
            return Diagnosis(
                WaitsFor.INPUT,
                f"phase {e.phase} waits for input",
                since=input_requested_at,
                next_action=f"a reminder Event at {clock(reminder_at)}" if reminder_at else None,
                next_at=reminder_at,
            )
    return _running(e, recoveries)


def _running(e: Evidence, recoveries: Recoveries) -> Diagnosis:
    job = e.job
    where = f"phase {e.phase} attempt {e.attempt}"
    if job is None or job.state is JobState.MISSING:
        return Diagnosis(
            WaitsFor.JOB,
            f"{where}: its Job {e.current_job} is not there (yet)",
            next_action="JobMissing at the next stall sweep unless it appears",
        )
    if job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return Diagnosis(
            WaitsFor.JOB,
            f"{where}: its Job {job.state.value.lower()}; the flow acts on it now",
            since=e.job_finished_at,
        )
    wait = pod_wait(e)
    if wait is not None:
        return _pod_waits(e, wait, recoveries)
    latest = max((m for m in (e.heartbeat, e.last_progress_time) if m is not None), default=None)
    due = latest + e.stall_timeout if latest is not None else None
    next_action = _after_stall("NoProgress", due, e, recoveries) if due else None
    waits_for, summary, since, evidence = _worker(e, where)
    return Diagnosis(
        waits_for, summary, since=since, next_action=next_action, next_at=due, evidence=evidence
    )


# What a running phase's worker is found doing: what it waits for, what to say, since when,
# and the evidence.
_WorkerState = tuple[WaitsFor, str, dt.datetime | None, dict[str, Any]]


def _worker(e: Evidence, where: str) -> _WorkerState:
    """What a running phase's heartbeat says of its worker: overdue (it never beat, or it
    stopped), not beaten yet, or beating."""
    silent_since = first_beat_overdue(e)
    if silent_since is not None:
        summary = f"{where}: the worker has not beaten since its pod started at "
        return _overdue(e, summary + clock(silent_since), silent_since, _iso(silent_since))
    if e.heartbeat is None:
        summary = f"{where}: its pod started; waiting for the worker's first heartbeat"
        return WaitsFor.FIRST_HEARTBEAT, summary, e.last_progress_time, {}
    if heartbeat_lapsed(e):
        summary = f"{where}: the worker stopped heart-beating: last beat at {clock(e.heartbeat)}"
        return _overdue(e, summary, e.heartbeat)
    age = (e.now - e.heartbeat).total_seconds()
    summary = f"{where} is running; last heartbeat {age:.0f}s ago"
    return WaitsFor.PHASE, summary, e.last_progress_time, {"heartbeat_age_seconds": round(age, 1)}


def _overdue(
    e: Evidence, summary: str, since: dt.datetime, pod_started_at: str | None = None
) -> _WorkerState:
    assert e.heartbeat_interval is not None
    every = e.heartbeat_interval.total_seconds()
    evidence: dict[str, Any] = {"heartbeat_every_seconds": every}
    if pod_started_at is not None:
        evidence["pod_started_at"] = pod_started_at
    else:
        assert e.heartbeat is not None
        evidence["heartbeat_age_seconds"] = round((e.now - e.heartbeat).total_seconds(), 1)
    return WaitsFor.HEARTBEAT, f"{summary} (expected every {every:g}s)", since, evidence


def _pod_waits(e: Evidence, wait: PodWait, recoveries: Recoveries) -> Diagnosis:
    waits_for = _POD_WAITS[wait.kind]
    if waits_for is WaitsFor.POD_START:
        summary = f"phase {e.phase} attempt {e.attempt}: waiting for its pod to start"
    elif waits_for is WaitsFor.POD_SCHEDULING:
        summary = f"pod cannot be scheduled: {wait.message or 'no node fits'}"
    else:
        summary = f"pod cannot start: {wait.detail}"
    return Diagnosis(
        waits_for,
        summary,
        since=wait.since,
        next_action=_after_stall("PodNotStarting", wait.deadline, e, recoveries)
        if wait.deadline
        else None,
        next_at=wait.deadline,
        evidence={
            "waiting_reason": wait.reason,
            "waiting_message": wait.message,
            "pods": [p.name for p in e.pods],
        },
    )


def held_by_database(status: CollectionFlowStatus) -> bool:
    """Whether the operator said, in the flow's status, that the database holds it: what a
    reader without the database's address learns of an outage."""
    reconciling = status.condition(ConditionType.RECONCILING)
    return (
        reconciling is not None
        and reconciling.reason == ConditionReason.WAITING
        and (status.message or "").startswith(DATABASE_HELD)
    )


def waiting_status(
    flow: FlowView, diagnosis: Diagnosis, now: dt.datetime
) -> CollectionFlowStatus | None:
    """The running flow's status saying what holds it (reason `Waiting` on `Reconciling`), or
    back to plain running once nothing does; None when the status says so already."""
    status = flow.status
    if status.state is not FlowState.RUNNING or status.phase is None:
        return None
    reconciling = status.condition(ConditionType.RECONCILING)
    waiting = reconciling is not None and reconciling.reason == ConditionReason.WAITING
    if diagnosis.abnormal:
        line = diagnosis.line()
        return None if waiting and status.message == line else held_status(flow, line, now)
    if not waiting:
        return None
    stalled_condition = status.condition(ConditionType.STALLED)
    stalled = stalled_condition is not None and stalled_condition.status == "True"
    reason = ConditionReason.RECOVERING if stalled else ConditionReason.PHASE_RUNNING
    message = running_message(status.phase, status.attempt)
    return moved(flow, status, FlowState.RUNNING, reason, message, now, stalled=stalled)


def held_status(flow: FlowView, message: str, now: dt.datetime) -> CollectionFlowStatus:
    """The flow's status, in its state, saying what holds it (reason `Waiting`): a pod that
    cannot start, the database, a Job a quota refused, ..."""
    status = flow.status
    stalled = status.condition(ConditionType.STALLED)
    return moved(
        flow,
        status,
        status.state,
        ConditionReason.WAITING,
        message,
        now,
        stalled=stalled is not None and stalled.status == "True",
    )
