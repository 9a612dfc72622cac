"""Read a Job and its pods (as the API returns them) into a `JobObservation`.

Pure: it takes the dicts a gateway fetched. The result of a phase is in the termination
message of the container that ended the Job: the succeeded one for a complete Job, the last
to terminate for a failed one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectionflow.api.contract import ENV_HEARTBEAT_SECONDS
from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.results import InvalidPhaseResult, PhaseResult
from collectionflow.domain.stall import PodEvidence


def job_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def terminated_state(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The terminated state of the pod's first container, if it has terminated."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return None


def observe_job(
    name: str, job: dict[str, Any] | None, pods: list[dict[str, Any]]
) -> JobObservation:
    if job is None:
        return JobObservation(name=name, state=JobState.MISSING)
    complete = job_condition(job, "Complete")
    failed = job_condition(job, "Failed")
    if complete is None and failed is None:
        return JobObservation(name=name, state=JobState.ACTIVE)

    finished = [(pod, t) for pod in pods if (t := terminated_state(pod)) is not None]
    if complete is not None:
        finished = [(pod, t) for pod, t in finished if t.get("exitCode") == 0] or finished
    finished.sort(key=lambda item: str(item[1].get("finishedAt") or ""))
    terminated = finished[-1][1] if finished else {}
    message = (terminated.get("message") or "").strip() or None

    result: PhaseResult | None = None
    result_error: str | None = None
    if message is not None:
        try:
            result = PhaseResult.from_message(message)
        except InvalidPhaseResult as error:
            result_error = str(error)
    condition = complete or failed or {}
    return JobObservation(
        name=name,
        state=JobState.SUCCEEDED if complete is not None else JobState.FAILED,
        result=result,
        result_error=result_error,
        exit_code=terminated.get("exitCode"),
        reason=terminated.get("reason"),
        termination_message=None if result is not None else message,
        job_reason=condition.get("reason"),
        job_message=condition.get("message"),
    )


def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp from the API (seconds or microseconds, 'Z' suffix)."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def job_created_at(job: dict[str, Any] | None) -> dt.datetime | None:
    return parse_time((job or {}).get("metadata", {}).get("creationTimestamp"))


def job_finished_at(job: dict[str, Any] | None) -> dt.datetime | None:
    """When the Job completed or failed, as its conditions say."""
    if job is None:
        return None
    completion = parse_time(job.get("status", {}).get("completionTime"))
    if completion is not None:
        return completion
    for kind in ("Complete", "Failed"):
        condition = job_condition(job, kind)
        if condition is not None:
            return parse_time(condition.get("lastTransitionTime"))
    return None


def heartbeat_seconds_of(job: dict[str, Any] | None) -> float | None:
    """The heartbeat interval the Job's worker was given (None: not said, or not a number)."""
    template = ((job or {}).get("spec") or {}).get("template") or {}
    for container in (template.get("spec") or {}).get("containers") or []:
        for var in container.get("env") or []:
            if var.get("name") == ENV_HEARTBEAT_SECONDS:
                try:
                    seconds = float(var.get("value") or "")
                except ValueError:
                    return None
                return seconds if 0 < seconds < float("inf") else None
    return None


def lease_renewed_at(
    lease: dict[str, Any] | None, job: dict[str, Any] | None
) -> dt.datetime | None:
    """When the attempt's worker last renewed its heartbeat Lease; None unless the Lease is
    owned by the attempt's Job and held by one of that Job's pods (`<job name>-...`), so a
    Lease that any other writer made or took over proves nothing."""
    if lease is None or job is None:
        return None
    job_meta = job.get("metadata") or {}
    owners = {
        owner.get("uid") for owner in (lease.get("metadata") or {}).get("ownerReferences") or []
    }
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if job_meta.get("uid") not in owners or not isinstance(holder, str):
        return None
    if not holder.startswith(f"{job_meta.get('name')}-"):
        return None
    try:
        return parse_time(spec.get("renewTime"))
    except (TypeError, ValueError):
        return None


def pod_evidence(pod: dict[str, Any]) -> PodEvidence:
    status = pod.get("status", {})
    containers = status.get("containerStatuses") or []
    states = [
        (c.get("state") or {}).get("running") or (c.get("state") or {}).get("terminated")
        for c in containers
    ]
    started = any(states)
    started_at = min(
        (t for t in (parse_time(s.get("startedAt")) for s in states if s) if t is not None),
        default=None,
    )
    waiting = next(
        (
            (c.get("state") or {}).get("waiting")
            for c in containers
            if (c.get("state") or {}).get("waiting")
        ),
        None,
    )
    scheduling = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
        ),
        None,
    )
    return PodEvidence(
        name=pod.get("metadata", {}).get("name", ""),
        phase=status.get("phase", "Unknown"),
        created_at=parse_time(pod.get("metadata", {}).get("creationTimestamp")),
        started=bool(started),
        started_at=started_at,
        waiting_reason=(waiting or {}).get("reason"),
        waiting_message=(waiting or {}).get("message"),
        unschedulable=scheduling is not None,
        scheduling_message=(scheduling or {}).get("message"),
    )
