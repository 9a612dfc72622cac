"""Read a Job and its pods (as the API returns them) into a `JobObservation`.

Pure: it takes the dicts a gateway fetched. The result of a phase is in the termination
message of the container that ended the Job: the succeeded one for a complete Job, the last
to terminate for a failed one.
"""

from __future__ import annotations

from typing import Any

from collectionflow.domain.machine import JobObservation, JobState
from collectionflow.domain.results import InvalidPhaseResult, PhaseResult


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
