"""Stall rules: is a flow stuck, and why? Judged on evidence against an injected clock.

Never kopf's `idle=`: the operator's own status writes reset it, so idle time is not time
without progress. The evidence is the flow's `lastProgressTime`, the phase's heartbeat Lease,
the real state of its Job and pod, and the database's child record. Each finding carries a
reason and the evidence behind it, for the Event and the journal.

Waiting for a person's input is never a stall; it only earns a reminder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from collectionflow.api.models import FlowState
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.records import ChildSnapshot, ChildStatus

# A finished Job is normally acted on within a second; only this much later is it "missed".
MISSED_COMPLETION_GRACE = dt.timedelta(seconds=15)
# Waiting reasons no retry of the same pod heals: declared after a short grace, not the
# pod-start timeout (Tekton's create-container-error timeout plays the same part).
NEVER_HEALS = frozenset(
    {"InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError"}
)
NEVER_HEALS_GRACE = dt.timedelta(seconds=30)
IMAGE_PULL = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)


STALL_REASONS = frozenset(
    {
        ConditionReason.NO_PROGRESS,
        ConditionReason.JOB_MISSING,
        ConditionReason.POD_NOT_STARTING,
        ConditionReason.MISSED_COMPLETION,
        ConditionReason.DATABASE_DRIFT,
        ConditionReason.RUNNER_LOST,
    }
)
# Recovered by a new attempt of the phase (the others by advancing or re-syncing).
RERUNS_PHASE = frozenset(
    {
        ConditionReason.NO_PROGRESS,
        ConditionReason.JOB_MISSING,
        ConditionReason.POD_NOT_STARTING,
        ConditionReason.RUNNER_LOST,
    }
)


@dataclass(frozen=True)
class PodEvidence:
    name: str
    phase: str
    created_at: dt.datetime | None
    started: bool
    waiting_reason: str | None = None
    waiting_message: str | None = None
    unschedulable: bool = False
    scheduling_message: str | None = None
    started_at: dt.datetime | None = None


@dataclass(frozen=True)
class Evidence:
    now: dt.datetime
    state: FlowState
    phase: str | None
    attempt: int
    current_job: str | None
    last_progress_time: dt.datetime | None
    stall_timeout: dt.timedelta
    pod_start_timeout: dt.timedelta
    heartbeat: dt.datetime | None = None
    job: JobObservation | None = None
    job_created_at: dt.datetime | None = None
    job_finished_at: dt.datetime | None = None
    pods: tuple[PodEvidence, ...] = ()
    database_child: ChildSnapshot | None = None
    expected_child: ChildSnapshot | None = None
    missed_completion_grace: dt.timedelta = MISSED_COMPLETION_GRACE
    in_process: bool = False
    heartbeat_interval: dt.timedelta | None = None
    expects_heartbeat: bool = False  # the phase runs the built-in worker, which beats


@dataclass(frozen=True)
class Finding:
    reason: ConditionReason
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


def pod_start_timeout(setting: float, stall_timeout: float, phase_deadline: float | None) -> float:
    """Seconds a phase's pod may take to start (or its worker to beat first): the operator's
    setting, or the flow's (or phase's) stall timeout when that is shorter, and always well
    inside the phase's deadline, so a pod that cannot start is declared before the Job times
    out."""
    bounds = [setting, stall_timeout]
    if phase_deadline is not None:
        bounds.append(phase_deadline * 0.8)
    return min(bounds)


def _age(now: dt.datetime, moment: dt.datetime | None) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


def find_stall(e: Evidence) -> Finding | None:
    """The reason `e`'s flow is stuck, or None when it is moving (or done, or waiting)."""
    if e.state is FlowState.RUNNING:
        finding = _running_stall(e)
        if finding is not None:
            return finding
    return _database_drift(e)


def _running_stall(e: Evidence) -> Finding | None:
    base: dict[str, Any] = {
        "phase": e.phase,
        "attempt": e.attempt,
        "job": e.current_job,
        "last_progress_age_seconds": _age(e.now, e.last_progress_time),
    }
    job = e.job
    if (job is None or job.state is JobState.MISSING) and e.in_process:
        return Finding(
            ConditionReason.RUNNER_LOST,
            f"phase {e.phase} attempt {e.attempt} ran in the operator's process, which is gone "
            "(the operator restarted or another replica leads)",
            base,
        )
    if job is None or job.state is JobState.MISSING:
        return Finding(
            ConditionReason.JOB_MISSING,
            f"phase {e.phase} attempt {e.attempt} is running but its Job {e.current_job} is gone",
            base,
        )
    if job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return missed_completion(
            e.state, e.phase, e.attempt, job, e.job_finished_at, e.now, e.missed_completion_grace
        )

    wait = pod_wait(e)
    if wait is not None:
        if wait.deadline is None or e.now <= wait.deadline:
            return None
        return Finding(
            ConditionReason.POD_NOT_STARTING,
            f"the pod of {job.name} has not started in {_age(e.now, wait.since)}s ({wait.detail})",
            base
            | {
                "pods": [
                    {
                        "name": p.name,
                        "phase": p.phase,
                        "waiting_reason": p.waiting_reason,
                        "waiting_message": p.waiting_message,
                    }
                    for p in e.pods
                ],
                "pod_start_timeout_seconds": (wait.deadline - wait.since).total_seconds()
                if wait.since
                else None,
            },
        )

    latest = max((m for m in (e.heartbeat, e.last_progress_time) if m is not None), default=None)
    if latest is not None and e.now - latest > e.stall_timeout:
        return Finding(
            ConditionReason.NO_PROGRESS,
            f"phase {e.phase} attempt {e.attempt} has not heart-beaten for "
            f"{_age(e.now, latest)}s (stall timeout {e.stall_timeout.total_seconds():g}s)",
            base
            | {
                "last_heartbeat_age_seconds": _age(e.now, e.heartbeat),
                "stall_timeout_seconds": e.stall_timeout.total_seconds(),
                "pods": [{"name": p.name, "phase": p.phase} for p in e.pods if p.started],
            },
        )
    return None


@dataclass(frozen=True)
class PodWait:
    """An attempt whose pod has not started and whose worker has not beaten: since when, what
    the pod says, and when it is declared `PodNotStarting`."""

    since: dt.datetime | None
    deadline: dt.datetime | None
    detail: str
    reason: str | None = None
    message: str | None = None
    unschedulable: bool = False

    @property
    def kind(self) -> str:
        """What it waits for: scheduling, image, config or start."""
        if self.unschedulable:
            return "scheduling"
        if self.reason in IMAGE_PULL:
            return "image"
        if self.reason in NEVER_HEALS:
            return "config"
        return "start"


def pod_wait(e: Evidence) -> PodWait | None:
    """The attempt's pod wait (None: a pod started, or the worker beat)."""
    if any(pod.started for pod in e.pods) or e.heartbeat is not None:
        return None
    since = min(
        (pod.created_at for pod in e.pods if pod.created_at is not None),
        default=e.job_created_at,
    )
    waiting = next((p for p in e.pods if p.waiting_reason), None)
    unschedulable = next((p for p in e.pods if p.unschedulable), None)
    timeout = e.pod_start_timeout
    if waiting is not None and waiting.waiting_reason in NEVER_HEALS:
        timeout = min(timeout, NEVER_HEALS_GRACE)
    if waiting is not None:
        detail = f"{waiting.waiting_reason}: {waiting.waiting_message or ''}".strip(": ")
    elif unschedulable is not None:
        detail = f"unschedulable: {unschedulable.scheduling_message or ''}".strip(": ")
    else:
        detail = "no pod" if not e.pods else "pending"
    return PodWait(
        since=since,
        deadline=since + timeout if since is not None else None,
        detail=detail,
        reason=waiting.waiting_reason if waiting else None,
        message=(waiting.waiting_message if waiting else None)
        or (unschedulable.scheduling_message if unschedulable else None),
        unschedulable=unschedulable is not None and waiting is None,
    )


HEARTBEAT_MISSES = 3
BEATS_PER_STALL_TIMEOUT = 5
SHORTEST_BEAT_SECONDS = 1.0


def heartbeat_every(stall_timeout: float, longest: float) -> float:
    """How often a phase's worker renews its heartbeat Lease: a fifth of the phase's stall
    timeout (one write a minute at the default 300 s), so that three missed beats
    (`HEARTBEAT_MISSES`) say a worker went silent well before the timeout stalls it; at most
    `longest` (the operator's heartbeatSeconds) and at least a second apart."""
    return max(SHORTEST_BEAT_SECONDS, min(longest, stall_timeout / BEATS_PER_STALL_TIMEOUT))


def beat_overdue(
    last_beat: dt.datetime | None, interval: dt.timedelta | None, now: dt.datetime
) -> bool:
    """A worker that has beaten, but not for `HEARTBEAT_MISSES` of its intervals."""
    if last_beat is None or interval is None:
        return False
    return now - last_beat > interval * HEARTBEAT_MISSES


def first_beat_overdue(e: Evidence) -> dt.datetime | None:
    """When the pod of a phase whose worker beats (`expects_heartbeat`) started, if its worker
    has not beaten for `HEARTBEAT_MISSES` intervals since (None: it beat, or need not)."""
    if e.heartbeat is not None or not e.expects_heartbeat or e.heartbeat_interval is None:
        return None
    if e.job is None or e.job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return None
    started = min((p.started_at for p in e.pods if p.started_at is not None), default=None)
    if started is None or e.now - started <= e.heartbeat_interval * HEARTBEAT_MISSES:
        return None
    return started


def heartbeat_lapsed(e: Evidence) -> bool:
    """The worker stopped beating while its Job runs: a hung worker, said long before its
    stall is declared."""
    if e.job is None or e.job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return False
    return beat_overdue(e.heartbeat, e.heartbeat_interval, e.now)


def missed_completion(
    state: FlowState,
    phase: str | None,
    attempt: int,
    job: JobObservation | None,
    finished_at: dt.datetime | None,
    now: dt.datetime,
    grace: dt.timedelta,
) -> Finding | None:
    """A Running flow whose Job finished longer than `grace` ago: nobody acted on it in time."""
    if (
        state is not FlowState.RUNNING
        or job is None
        or job.state not in (JobState.SUCCEEDED, JobState.FAILED)
        or finished_at is None
        or now - finished_at < grace
    ):
        return None
    age = _age(now, finished_at)
    return Finding(
        ConditionReason.MISSED_COMPLETION,
        f"Job {job.name} finished ({job.state.value}) {age}s ago but the flow did not advance",
        {
            "phase": phase,
            "attempt": attempt,
            "job": job.name,
            "job_state": job.state.value,
            "job_finished_age_seconds": age,
        },
    )


def caught_up_message(finding: Finding) -> str:
    """What a missed completion that was no stall says (its Job ended while the operator was
    not running, or the database was out): from the finding's evidence, not its prose."""
    evidence = finding.evidence
    return (
        f"Job {evidence.get('job')} finished ({evidence.get('job_state')}) "
        f"{evidence.get('job_finished_age_seconds')}s ago, while the operator was not running "
        "or the database was out; advanced without rerunning it"
    )


def _database_drift(e: Evidence) -> Finding | None:
    have, want = e.database_child, e.expected_child
    if want is None or have is None or have.status == ChildStatus.CANCELLED:
        return None
    fields = ("current_phase", "next_phase", "status", "progress_percentage")
    differing = {
        name: {"database": getattr(have, name), "flow": getattr(want, name)}
        for name in fields
        if getattr(have, name) != getattr(want, name)
    }
    if not differing:
        return None
    return Finding(
        ConditionReason.DATABASE_DRIFT,
        "the database's child record disagrees with the flow: " + ", ".join(sorted(differing)),
        {"phase": e.phase, "attempt": e.attempt, "differences": differing},
    )


def input_reminder_due(
    state: FlowState,
    input_requested_at: dt.datetime | None,
    last_reminder: dt.datetime | None,
    now: dt.datetime,
    reminder_after: dt.timedelta,
) -> bool:
    """A flow waiting for input longer than `reminder_after` (again) deserves a reminder."""
    due = input_reminder_at(state, input_requested_at, last_reminder, reminder_after)
    return due is not None and now >= due


def input_reminder_at(
    state: FlowState,
    input_requested_at: dt.datetime | None,
    last_reminder: dt.datetime | None,
    reminder_after: dt.timedelta,
) -> dt.datetime | None:
    """When a flow waiting for input is (again) due a reminder; None when it does not wait."""
    if state is not FlowState.WAITING_FOR_INPUT or input_requested_at is None:
        return None
    return max(input_requested_at, last_reminder or input_requested_at) + reminder_after
