"""What the watch cache keeps of each body: only the fields the decisions use (so 10,000
stored flows cost little memory), and how two copies of one object compare. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from collectionflow.api.names import (
    ANNOTATION_INPUT,
    ANNOTATION_INPUT_COMPLETE,
    ANNOTATION_RETRY,
    LABEL_FLOW_UID,
)

Body = Mapping[str, Any]
FLOW_ANNOTATIONS = (ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE, ANNOTATION_RETRY)
JOB_NAME_LABEL = "job-name"


def _version(value: str | None) -> int | None:
    """A resourceVersion as a number when it is one (etcd's revisions are), else None."""
    return int(value) if value and value.isdigit() else None


def is_older(version: str | None, than: str | None) -> bool:
    """Whether `version` is known to precede `than`; unknown orders count as not older."""
    a, b = _version(version), _version(than)
    return a is not None and b is not None and a < b


def object_key(body: Body) -> tuple[str, str]:
    """(namespace, name) of an object."""
    meta = body.get("metadata") or {}
    return (meta.get("namespace", ""), meta.get("name", ""))


def slim_flow(body: Body) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
            "resourceVersion": meta.get("resourceVersion"),
            "deletionTimestamp": meta.get("deletionTimestamp"),
            "annotations": {k: annotations[k] for k in FLOW_ANNOTATIONS if k in annotations},
        },
        "spec": dict(body.get("spec") or {}),
        "status": dict(body.get("status") or {}),
    }


def flow_fingerprint(flow: Body) -> tuple[Any, ...]:
    meta = flow["metadata"]
    return (
        meta.get("generation"),
        tuple(sorted(meta.get("annotations", {}).items())),
        meta.get("deletionTimestamp"),
        repr(flow.get("status")),
    )


def slim_job(body: Body) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    keep = ("type", "status", "reason", "message", "lastTransitionTime")
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {LABEL_FLOW_UID: (meta.get("labels") or {}).get(LABEL_FLOW_UID)},
        },
        "status": {
            "completionTime": status.get("completionTime"),
            "conditions": [{k: c.get(k) for k in keep} for c in status.get("conditions") or []],
        },
    }


def finished(job: Body) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in job["status"]["conditions"]
    )


def older_job(job: Body, than: Body) -> bool:
    """The same Job (by uid) at an earlier resourceVersion."""
    meta, other = job["metadata"], than["metadata"]
    return meta["uid"] == other["uid"] and is_older(
        meta.get("resourceVersion"), other.get("resourceVersion")
    )


def job_fingerprint(job: Body | None) -> tuple[Any, ...]:
    if job is None:
        return ()
    return tuple((c["type"], c["status"]) for c in job["status"]["conditions"])


def slim_pod(body: Body) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}

    def container(c: Body) -> dict[str, Any]:
        state = c.get("state") or {}
        kept: dict[str, Any] = {}
        if state.get("waiting"):
            kept["waiting"] = {k: state["waiting"].get(k) for k in ("reason", "message")}
        if state.get("running"):
            kept["running"] = {"startedAt": state["running"].get("startedAt")}
        if state.get("terminated"):
            terminated = state["terminated"]
            kept["terminated"] = {
                k: terminated.get(k) for k in ("exitCode", "reason", "message", "finishedAt")
            }
        return {"state": kept}

    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {
                key: (meta.get("labels") or {}).get(key) for key in (JOB_NAME_LABEL, LABEL_FLOW_UID)
            },
        },
        "status": {
            "phase": status.get("phase"),
            "conditions": [
                {"type": c.get("type"), "reason": c.get("reason"), "message": c.get("message")}
                for c in status.get("conditions") or []
                if c.get("type") == "PodScheduled"
            ],
            "containerStatuses": [container(c) for c in status.get("containerStatuses") or []],
        },
    }


def started_pod(pod: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A slim pod that left Pending without being deleted: running since `now`, as far as
    the operator knows."""
    since = now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    running = {"state": {"running": {"startedAt": since}}}
    count = max(1, len(pod["status"]["containerStatuses"]))
    return {
        **pod,
        "status": {**pod["status"], "phase": "Running", "containerStatuses": [running] * count},
    }


def holds(pod: Body) -> tuple[Any, ...]:
    """What keeps a pod from starting, as far as a flow's status says it."""
    status = pod["status"]
    waiting = tuple(
        (c["state"]["waiting"].get("reason"), c["state"]["waiting"].get("message"))
        for c in status["containerStatuses"]
        if c["state"].get("waiting")
    )
    scheduling = tuple(
        (c.get("reason"), c.get("message"))
        for c in status["conditions"]
        if c.get("reason") == "Unschedulable"
    )
    return waiting + scheduling


def slim_lease(body: Body) -> dict[str, Any]:
    """What the heartbeat rules read of a Lease: who owns it, who holds it, when it was
    renewed (`domain.observe.lease_renewed_at` trusts it only when they fit its Job)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    return {
        "metadata": {
            "ownerReferences": [
                {"uid": owner.get("uid")} for owner in meta.get("ownerReferences") or []
            ][:4]
        },
        "spec": {"holderIdentity": spec.get("holderIdentity"), "renewTime": spec.get("renewTime")},
    }
