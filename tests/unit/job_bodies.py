"""Jobs, pods and Leases shaped as the Kubernetes API returns them, for the observe tests.

The bodies are camelCase dicts shaped like real API responses (conditions with probe and
transition times, container statuses with `state.waiting|running|terminated`), so a change in
what the observation reads is caught by the tests rather than in a cluster.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

JOB = "demo-gap-analysis-1"
CREATED = "2024-05-01T12:00:00Z"
CREATED_AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
SUCCEEDED_MESSAGE = (
    '{"state": "succeeded", "next_phase": "questionnaire_generation", '
    '"agent_decision": "gaps found", "outputs": {"gaps": 3}, "error": null}'
)
FAILED_MESSAGE = (
    '{"state": "failed", "next_phase": null, "agent_decision": "", '
    '"outputs": {}, "error": "source system unreachable"}'
)


# --- builders ------------------------------------------------------------------------------


def condition(kind: str, at: str, status: str = "True", **fields: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": at,
        "lastTransitionTime": at,
        **fields,
    }


def job_body(*conditions: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": JOB,
            "namespace": "team-a",
            "uid": "0b5d6c0e-7f0e-4d3a-9b53-6a1f0c1d2e3f",
            "creationTimestamp": CREATED,
        },
        "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1},
        "status": {"startTime": CREATED, **status, "conditions": list(conditions)},
    }


def complete_job(finished: str = "2024-05-01T12:03:00Z") -> dict[str, Any]:
    return job_body(
        condition(
            "SuccessCriteriaMet",
            finished,
            reason="CompletionsReached",
            message="Reached expected number of succeeded pods",
        ),
        condition(
            "Complete",
            finished,
            reason="CompletionsReached",
            message="Reached expected number of succeeded pods",
        ),
        completionTime=finished,
        succeeded=1,
        ready=0,
        terminating=0,
    )


def failed_job(finished: str = "2024-05-01T12:03:00Z") -> dict[str, Any]:
    return job_body(
        condition(
            "FailureTarget",
            finished,
            reason="BackoffLimitExceeded",
            message="Job has reached the specified backoff limit",
        ),
        condition(
            "Failed",
            finished,
            reason="BackoffLimitExceeded",
            message="Job has reached the specified backoff limit",
        ),
        failed=3,
        ready=0,
        terminating=0,
    )


def pod_body(
    name: str,
    state: dict[str, Any] | None,
    phase: str = "Running",
    conditions: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": list(conditions)}
    if state is not None:
        status["containerStatuses"] = [
            {
                "name": "worker",
                "image": "ghcr.io/example/collectionflow-operator:1.0.0",
                "imageID": "",
                "ready": "running" in state,
                "restartCount": 0,
                "started": "running" in state,
                "state": state,
                "lastState": {},
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "creationTimestamp": CREATED,
            "labels": {"job-name": JOB, "batch.kubernetes.io/job-name": JOB},
        },
        "status": status,
    }


def terminated(
    exit_code: int, finished: str, message: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": CREATED,
        "finishedAt": finished,
        "containerID": "containerd://0123456789abcdef",
    }
    if message is not None:
        state["message"] = message
    return {"terminated": state}


RUNNING = {"running": {"startedAt": "2024-05-01T12:00:05Z"}}
IMAGE_PULL_BACK_OFF = {
    "waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "ghcr.io/example/missing:1.0"',
    }
}
