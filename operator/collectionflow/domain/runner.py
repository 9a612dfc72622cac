"""Where a phase attempt runs: a Job, or, when Jobs are refused for good, the operator itself.

The operator's setting decides (Job by default); a flow can only ask for `Job`, and a phase
that is not the operator's built-in worker is always a Job. `Auto` tries a Job. A refusal
that will not go away by itself moves the attempt in-process:
403 (RBAC or a policy), 422 (an admission webhook rejecting the pod spec), or a quota that is
still exceeded after a grace period (a quota may free up as other Jobs finish). `Job` never
falls back: the flow fails with the API's reason. Pure: the handlers call the API and act.

An in-process attempt is reported with Job-shaped bodies (a Job with a Complete or Failed
condition, one pod whose container terminated with the result as its termination message),
so the state machine and the stall rules read it exactly as they read a Job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from collectionflow.api.models import Runner


class Verdict(StrEnum):
    FALL_BACK = "fall back"  # run the attempt in the operator
    WAIT = "wait"  # retry the Job later (a quota within its grace, or a passing error)
    REFUSED = "refused"  # runner Job: the flow fails with the API's reason


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str

    @property
    def quota(self) -> bool:
        return self.status == 403 and "exceeded quota" in self.message

    @property
    def lasting(self) -> bool:
        return self.status in (403, 422)


def runner_for(spec_runner: Runner | None, setting: Runner, built_in: bool) -> Runner:
    """Where an attempt runs: the operator's setting, unless the flow asks for Job; a phase
    that is not the built-in worker (its own image, command or arguments) is always a Job
    that never falls back."""
    if spec_runner is Runner.JOB or not built_in:
        return Runner.JOB
    return setting


def verdict(
    runner: Runner,
    refusal: Refusal,
    refused_since: dt.datetime,
    now: dt.datetime,
    quota_grace: dt.timedelta,
) -> Verdict:
    """What to do when creating the attempt's Job was refused."""
    if not refusal.lasting:
        return Verdict.WAIT
    if refusal.quota and now - refused_since < quota_grace:
        return Verdict.WAIT
    return Verdict.REFUSED if runner is Runner.JOB else Verdict.FALL_BACK


def in_process_uid(namespace: str, name: str) -> str:
    """The uid of an in-process attempt's Job-shaped body (and the owner of its heartbeat)."""
    return f"inprocess-{namespace}-{name}"


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def running_bodies(
    namespace: str, name: str, started: dt.datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Job and pod of an in-process attempt that runs."""
    job = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": in_process_uid(namespace, name),
            "creationTimestamp": _time(started),
        },
        "status": {"startTime": _time(started), "active": 1},
    }
    pod = {
        "metadata": {"name": f"{name}-inprocess", "creationTimestamp": _time(started)},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "phase", "state": {"running": {"startedAt": _time(started)}}}
            ],
        },
    }
    return job, [pod]


def finished_bodies(
    namespace: str,
    name: str,
    started: dt.datetime,
    finished: dt.datetime,
    exit_code: int,
    message: str | None,
    reason: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Job and pod of an in-process attempt that ended with `exit_code`."""
    job, [pod] = running_bodies(namespace, name, started)
    kind = "Complete" if exit_code == 0 else "Failed"
    job["status"] = {
        "startTime": _time(started),
        "completionTime": _time(finished) if exit_code == 0 else None,
        "conditions": [
            {
                "type": kind,
                "status": "True",
                "lastTransitionTime": _time(finished),
                "reason": reason or ("" if exit_code == 0 else "BackoffLimitExceeded"),
                "message": "" if exit_code == 0 else f"the in-process run exited {exit_code}",
            }
        ],
    }
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else (reason or "Error"),
        "startedAt": _time(started),
        "finishedAt": _time(finished),
    }
    if message:
        terminated["message"] = message
    pod["status"] = {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [{"name": "phase", "state": {"terminated": terminated}}],
    }
    return job, [pod]
