"""The worker contract: how the operator tells a phase's container what to run, once.

The Job builder (`specs.jobs`) writes a `WorkerRequest` into the container's environment with
`to_environ`; the worker (`worker.context`) reads it back with the same names, and writes its
result to the same termination-message path. The heartbeat Lease the worker renews is built
here too, so the operator's watch (by label) and the worker's manifest cannot drift apart.
See "The worker contract" in docs/design.md.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Final

from collectionflow.api.names import heartbeat_labels

ENV_NAMESPACE: Final = "COLLECTIONFLOW_FLOW_NAMESPACE"
ENV_FLOW_NAME: Final = "COLLECTIONFLOW_FLOW_NAME"
ENV_FLOW_UID: Final = "COLLECTIONFLOW_FLOW_UID"
ENV_FLOW_TYPE: Final = "COLLECTIONFLOW_FLOW_TYPE"
ENV_PHASE: Final = "COLLECTIONFLOW_PHASE"
ENV_ATTEMPT: Final = "COLLECTIONFLOW_ATTEMPT"
ENV_JOB_NAME: Final = "COLLECTIONFLOW_JOB_NAME"
ENV_JOB_UID: Final = "COLLECTIONFLOW_JOB_UID"
ENV_PARAMETERS: Final = "COLLECTIONFLOW_PARAMETERS"
ENV_PREVIOUS_OUTPUTS: Final = "COLLECTIONFLOW_PREVIOUS_OUTPUTS"
ENV_INPUT: Final = "COLLECTIONFLOW_INPUT"
ENV_HEARTBEAT_LEASE: Final = "COLLECTIONFLOW_HEARTBEAT_LEASE"
ENV_HEARTBEAT_SECONDS: Final = "COLLECTIONFLOW_HEARTBEAT_SECONDS"
ENV_HEARTBEAT_FILE: Final = "COLLECTIONFLOW_HEARTBEAT_FILE"
"""In the operator's own process only (the in-process runner): the worker touches this file
instead of renewing a Lease, and the operator reads its time; the worker holds no credential."""
ENV_TERMINATION_MESSAGE_PATH: Final = "TERMINATION_MESSAGE_PATH"

TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
DEFAULT_HEARTBEAT_SECONDS: Final = 10.0

JOB_UID_LABEL: Final = "controller-uid"
"""The label the Job controller puts on its pods (every version; 1.27 added a prefixed twin);
the downward API hands it to the worker as `COLLECTIONFLOW_JOB_UID`, so the worker owns its
Lease by its Job without reading the Job."""


def compact_json(value: Any) -> str:
    """JSON as the environment carries it: no spaces, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def micro_time(moment: dt.datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds and a `Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class WorkerRequest:
    """One phase attempt, as its worker sees it."""

    namespace: str
    flow_name: str
    flow_uid: str
    flow_type: str
    phase: str
    attempt: int
    job_name: str
    heartbeat_seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)
    previous_outputs: dict[str, Any] = field(default_factory=dict)
    manual_input: dict[str, Any] | None = None

    def to_environ(self) -> dict[str, str]:
        """The environment variables that describe this attempt (the Lease is named after the
        Job)."""
        values = {
            ENV_NAMESPACE: self.namespace,
            ENV_FLOW_NAME: self.flow_name,
            ENV_FLOW_UID: self.flow_uid,
            ENV_FLOW_TYPE: self.flow_type,
            ENV_PHASE: self.phase,
            ENV_ATTEMPT: str(self.attempt),
            ENV_JOB_NAME: self.job_name,
            ENV_PARAMETERS: compact_json(self.parameters),
            ENV_PREVIOUS_OUTPUTS: compact_json(self.previous_outputs),
            ENV_HEARTBEAT_LEASE: self.job_name,
            ENV_HEARTBEAT_SECONDS: f"{self.heartbeat_seconds:g}",
        }
        if self.manual_input is not None:
            values[ENV_INPUT] = compact_json(self.manual_input)
        return values


def job_uid_env() -> dict[str, Any]:
    """The env var that gives the worker its Job's uid through the downward API."""
    return {
        "name": ENV_JOB_UID,
        "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}},
    }


def heartbeat_lease(
    namespace: str, name: str, flow_uid: str, holder: str, job_uid: str | None
) -> dict[str, Any]:
    """The Lease a phase's worker creates and renews; owned by its Job (when its uid is known),
    so it goes when the Job goes. It carries no times: the first renewal sets them."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": heartbeat_labels(flow_uid),
    }
    if job_uid:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": job_uid,
                "blockOwnerDeletion": False,
            }
        ]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": holder},
    }
