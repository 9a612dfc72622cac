"""Build the Job that runs one phase attempt.

A pure function from a `PhaseJobRequest` to a manifest (a plain dict, as the API takes it).
The Job is owned by the flow, so deleting the flow deletes its Jobs; it runs restricted
(non-root, read-only root filesystem, no privilege escalation, no capabilities); its
`backoffLimit` and `activeDeadlineSeconds` come from the phase's configuration, and its
container's environment is the worker contract (`api.contract`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from collectionflow.api.contract import TERMINATION_MESSAGE_PATH, WorkerRequest, job_uid_env
from collectionflow.api.models import GROUP, KIND, VERSION
from collectionflow.api.names import job_name, phase_labels
from collectionflow.domain.plan import PhaseConfig

WORKER_COMMAND = ("collectionflow", "worker")
WORKER_UID = 65532


@dataclass(frozen=True)
class PhaseJobRequest:
    """One phase attempt's Job: what its worker is asked (`worker`, the contract's one list of
    fields), the phase's settings, and how the pod runs."""

    worker: WorkerRequest
    phase: PhaseConfig
    image: str
    service_account: str
    image_pull_policy: str
    ttl_seconds_after_finished: int | None = None
    node_selector: dict[str, str] | None = None

    @property
    def job_name(self) -> str:
        return job_name(self.worker.flow_name, self.worker.phase, self.worker.attempt)

    @property
    def worker_request(self) -> WorkerRequest:
        """What the worker reads back from the Job's environment: the Job names the attempt
        and its heartbeat Lease."""
        return replace(self.worker, job_name=self.job_name)


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
    env: list[dict[str, Any]] = [
        {"name": name, "value": value}
        for name, value in request.worker_request.to_environ().items()
    ]
    env.append(job_uid_env())
    env += [
        var.to_api() if var.value_from else {"name": var.name, "value": var.value}
        for var in request.phase.env
    ]
    return env


def build_phase_job(request: PhaseJobRequest) -> dict[str, Any]:
    """The Job manifest of one phase attempt."""
    phase = request.phase
    worker = request.worker
    labels = phase_labels(worker.flow_name, worker.flow_uid, phase.name, worker.attempt)
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
    spec: dict[str, Any] = {
        "backoffLimit": phase.retries,
        "activeDeadlineSeconds": phase.timeout_seconds,
    }
    if request.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = request.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.job_name,
            "namespace": worker.namespace,
            "labels": labels,
            "ownerReferences": [flow_owner_reference(worker.flow_name, worker.flow_uid)],
        },
        "spec": {
            **spec,
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
                    **(
                        {"nodeSelector": dict(request.node_selector)}
                        if request.node_selector
                        else {}
                    ),
                },
            },
        },
    }
