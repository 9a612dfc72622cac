"""The ServiceAccount, Role and RoleBinding a flow's phase Jobs run as, per namespace.

Workers only create their heartbeat Lease and patch its renewTime, so that is all the Role
grants. The
operator creates these in each namespace that has a flow, before its first Job.
Given a ClusterRole with those rules (the Helm chart makes one), it binds that instead of
creating a Role, so it needs no more than the `bind` verb on that one ClusterRole.
"""

from __future__ import annotations

from typing import Any

from collectionflow.api.names import LABEL_MANAGED_BY, MANAGED_BY

WORKER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["create", "patch"],
    },
]


def build_worker_rbac(
    namespace: str, name: str, cluster_role: str | None = None, cluster_role_uid: str = ""
) -> list[dict[str, Any]]:
    """The objects to create. Bound to `cluster_role` (its uid given), each is owned by that
    ClusterRole, so the garbage collector removes them with it when the chart that made it is
    uninstalled: nothing the operator made stays behind, bound to a role that is gone."""

    def metadata() -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY},
        }
        if cluster_role and cluster_role_uid:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                    "uid": cluster_role_uid,
                }
            ]
        return meta

    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata()}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(),
        "rules": WORKER_RULES,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole" if cluster_role else "Role",
            "name": cluster_role or name,
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    return [account, binding] if cluster_role else [account, role, binding]
