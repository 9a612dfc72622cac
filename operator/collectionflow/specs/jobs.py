"""Build the Job that runs one phase attempt, and the Lease its worker heart-beats on.

Pure functions from a `PhaseJobRequest` to manifests (plain dicts, as the API takes them).
The Job is owned by the flow, so deleting the flow deletes its Jobs; it runs restricted
(non-root, read-only root filesystem, no privilege escalation, no capabilities) and its
`backoffLimit` and `activeDeadlineSeconds` come from the phase's configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from collectionflow.api.models import GROUP, KIND, VERSION
from collectionflow.api.names import heartbeat_labels, job_name, phase_labels
from collectionflow.domain.plan import PhaseConfig

WORKER_COMMAND = ("collectionflow", "worker")
WORKER_UID = 65532
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class PhaseJobRequest:
    namespace: str
    flow_name: str
    flow_uid: str
    flow_type: str
    phase: PhaseConfig
    attempt: int
    image: str
    service_account: str
    heartbeat_seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)
    previous_outputs: dict[str, Any] = field(default_factory=dict)
    manual_input: dict[str, Any] | None = None
    image_pull_policy: str = "IfNotPresent"

    @property
    def job_name(self) -> str:
        return job_name(self.flow_name, self.phase.name, self.attempt)


def flow_owner_reference(flow_name: str, flow_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": flow_name,
        "uid": flow_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _worker_env(request: PhaseJobRequest) -> list[dict[str, Any]]:
    def compact(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    values = {
        "COLLECTIONFLOW_FLOW_NAMESPACE": request.namespace,
        "COLLECTIONFLOW_FLOW_NAME": request.flow_name,
        "COLLECTIONFLOW_FLOW_UID": request.flow_uid,
        "COLLECTIONFLOW_FLOW_TYPE": request.flow_type,
        "COLLECTIONFLOW_PHASE": request.phase.name,
        "COLLECTIONFLOW_ATTEMPT": str(request.attempt),
        "COLLECTIONFLOW_JOB_NAME": request.job_name,
        "COLLECTIONFLOW_PARAMETERS": compact(request.parameters),
        "COLLECTIONFLOW_PREVIOUS_OUTPUTS": compact(request.previous_outputs),
        "COLLECTIONFLOW_HEARTBEAT_LEASE": request.job_name,
        "COLLECTIONFLOW_HEARTBEAT_SECONDS": f"{request.heartbeat_seconds:g}",
    }
    if request.manual_input is not None:
        values["COLLECTIONFLOW_INPUT"] = compact(request.manual_input)
    env = [{"name": name, "value": value} for name, value in values.items()]
    env += [{"name": var.name, "value": var.value} for var in request.phase.env]
    return env


def build_phase_job(request: PhaseJobRequest) -> dict[str, Any]:
    """The Job manifest of one phase attempt."""
    phase = request.phase
    labels = phase_labels(request.flow_name, request.flow_uid, phase.name, request.attempt)
    container: dict[str, Any] = {
        "name": "phase",
        "image": phase.image or request.image,
        "imagePullPolicy": request.image_pull_policy,
        "command": list(phase.command or WORKER_COMMAND),
        "env": _worker_env(request),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if phase.args is not None:
        container["args"] = list(phase.args)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.job_name,
            "namespace": request.namespace,
            "labels": labels,
            "ownerReferences": [flow_owner_reference(request.flow_name, request.flow_uid)],
        },
        "spec": {
            "backoffLimit": phase.retries,
            "activeDeadlineSeconds": phase.timeout_seconds,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": request.service_account,
                    "automountServiceAccountToken": True,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": WORKER_UID,
                        "runAsGroup": WORKER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def build_heartbeat_lease(
    namespace: str, name: str, job_uid: str, flow_uid: str, holder: str, renew_time: str
) -> dict[str, Any]:
    """The Lease a phase's worker renews; owned by its Job, so it goes when the Job goes."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": heartbeat_labels(flow_uid),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": job_uid,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {"holderIdentity": holder, "renewTime": renew_time},
    }
