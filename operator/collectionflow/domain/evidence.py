"""The stall rules' and the diagnosis' evidence about one flow, from the bodies the API (or the
watch cache) holds: its status, its current Job, that Job's pods and its heartbeat Lease.

Pure, so the operator (from its cache) and `collectionflow why` (from the API) see the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from collectionflow.api.models import FlowState, Runner
from collectionflow.domain.decision import FlowView
from collectionflow.domain.observe import (
    job_created_at,
    job_finished_at,
    lease_renewed_at,
    observe_job,
    pod_evidence,
)
from collectionflow.domain.plan import FlowPlan
from collectionflow.domain.stall import Evidence, heartbeat_every, pod_start_timeout


@dataclass(frozen=True)
class Timeouts:
    """The operator's settings the stall rules go by (a flow's spec may shorten them)."""

    stall_timeout_seconds: float
    pod_start_timeout_seconds: float
    missed_completion_grace_seconds: float
    heartbeat_seconds: float | None = None  # the longest interval between beats


def phase_stall_timeout(plan: FlowPlan, phase: str | None, timeouts: Timeouts) -> float:
    """The stall timeout of `phase`: the phase's own, else the flow's, else the operator's."""
    return plan.stall_timeout(phase) or timeouts.stall_timeout_seconds


def evidence_for(
    view: FlowView,
    plan: FlowPlan,
    now: dt.datetime,
    timeouts: Timeouts,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    lease: dict[str, Any] | None,
    completion_excused: bool = False,
) -> Evidence:
    """What is known of `view`'s current attempt. `completion_excused`: the Job's end is
    explained by something already known (a restart, an outage), not a missed completion."""
    status = view.status
    stall_timeout = phase_stall_timeout(plan, status.phase, timeouts)
    evidence = Evidence(
        now=now,
        state=status.state,
        phase=status.phase,
        attempt=status.attempt,
        current_job=status.current_job,
        last_progress_time=status.last_progress_time,
        stall_timeout=dt.timedelta(seconds=stall_timeout),
        pod_start_timeout=dt.timedelta(
            seconds=pod_start_timeout(
                timeouts.pod_start_timeout_seconds,
                stall_timeout,
                plan.phase(status.phase).timeout_seconds if status.phase else None,
            )
        ),
        missed_completion_grace=dt.timedelta(seconds=timeouts.missed_completion_grace_seconds),
        heartbeat_interval=dt.timedelta(
            seconds=heartbeat_every(stall_timeout, timeouts.heartbeat_seconds)
        )
        if timeouts.heartbeat_seconds
        else None,
        expects_heartbeat=status.phase is not None and plan.phase(status.phase).command is None,
        in_process=bool(status.phase_history)
        and status.phase_history[-1].runner is Runner.IN_PROCESS,
    )
    if status.state is not FlowState.RUNNING or not status.current_job:
        return evidence
    finished_at = job_finished_at(job)
    return dataclasses.replace(
        evidence,
        job=observe_job(status.current_job, job, pods),
        job_created_at=job_created_at(job),
        job_finished_at=None if completion_excused else finished_at,
        heartbeat=lease_renewed_at(lease, job),
        pods=tuple(pod_evidence(pod) for pod in pods),
    )
