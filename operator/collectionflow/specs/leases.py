"""The Leases the operator and its workers write: the leader's, and a phase's heartbeat."""

from __future__ import annotations

from typing import Any

from collectionflow.api.names import heartbeat_labels
from collectionflow.domain.leader import LeaseRecord


def lease_manifest(
    namespace: str, name: str, spec: dict[str, Any], record: LeaseRecord | None
) -> dict[str, Any]:
    """The Lease to write: created when there is none, else replaced at the version read, so
    that of two replicas writing at once only one succeeds."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if record is not None and record.resource_version:
        metadata["resourceVersion"] = record.resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
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
