"""The Job- and pod-shaped bodies of a phase attempt run in the operator's own process: what
the watch cache holds for it, so the stall rules and the diagnosis judge it as any Job."""

from __future__ import annotations

import datetime as dt
from typing import Any


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
