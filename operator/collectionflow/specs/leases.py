"""The Lease a phase's worker writes: its heartbeat."""

from __future__ import annotations

from typing import Any

from collectionflow.api.names import heartbeat_labels


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
