"""Least privilege, rule by rule: every verb the chart grants the operator (and the workers) is
needed by a call the operator (or a worker) makes, shown against the real API server with RBAC.

For each verb of each rendered rule, a user bound to the chart's rules minus that verb is
refused (403) the call that needs it, and is allowed it once the verb is back. A verb without a
call here fails the test: a rule nobody can name a reason for does not belong in the chart.
The calls go through the operator's own gateway (`KubeGateway`) and the worker's own heartbeat
(`LeaseHeartbeat`), impersonating the probe user.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as sync_client
from kubernetes.client.exceptions import ApiException as SyncApiException
from kubernetes_asyncio.client.exceptions import ApiException

from cluster.rbac_calls import CALLS, WORKER_ROLE_NAME, Call, Probe, job
from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.chart import Manifest, find, render
from harness.cluster import Cluster
from harness.crd import install_crd
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster


OBJECTS = render({})
CHART_WORKER_ROLE = "cf-collectionflow-operator-worker"


def _renamed(role: Manifest) -> Manifest:
    rules = [
        {**rule, "resourceNames": [WORKER_ROLE_NAME]}
        if rule.get("resourceNames") == [CHART_WORKER_ROLE]
        else rule
        for rule in role["rules"]
    ]
    return {**role, "rules": rules}


OPERATOR = _renamed(find(OBJECTS, "ClusterRole", "cf-collectionflow-operator")[0])
WORKER = find(OBJECTS, "ClusterRole", CHART_WORKER_ROLE)[0]
WORKER = {**WORKER, "metadata": {**WORKER["metadata"], "name": WORKER_ROLE_NAME}}
LEADER = find(OBJECTS, "Role", "cf-collectionflow-operator-leader")[0]


ROLES: dict[str, Manifest] = {"operator": OPERATOR, "leader": LEADER, "worker": WORKER}


def granted(role: Manifest) -> list[tuple[str, str, str]]:
    return [
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def without(role: Manifest, missing: tuple[str, str, str] | None) -> list[dict[str, Any]]:
    """The role's rules with one verb of one resource taken out."""
    kept = []
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs = [v for v in rule["verbs"] if (group, resource, v) != missing]
                if verbs:
                    kept.append(
                        {**rule, "apiGroups": [group], "resources": [resource], "verbs": verbs}
                    )
    return kept


CASES = [(role, permission) for role, manifest in ROLES.items() for permission in granted(manifest)]


def test_every_granted_verb_has_a_call_that_needs_it() -> None:
    unexplained = [(role, p) for role, p in CASES if p not in CALLS[role]]
    assert unexplained == []
    assert set(granted(OPERATOR)) == set(CALLS["operator"])
    leases = {verb for _, resource, verb in granted(OPERATOR) if resource == "leases"}
    assert leases == {"get", "list", "watch"}, "the operator writes Leases only as the leader"


@pytest.fixture(scope="module")
def probe(cluster: Cluster, crd: None) -> Iterator[Probe]:
    admin = cluster.api_client()
    core = sync_client.CoreV1Api(admin)
    namespace = f"rbac-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    custom = sync_client.CustomObjectsApi(admin)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CollectionFlow",
            "metadata": {"name": "probe"},
            "spec": {"suspend": True},
        },
    )
    sync_client.BatchV1Api(admin).create_namespaced_job(namespace, job("probe"))
    sync_client.CoordinationV1Api(admin).create_namespaced_lease(
        namespace, {"metadata": {"name": "probe"}, "spec": {"holderIdentity": "probe-pod"}}
    )
    rbac = sync_client.RbacAuthorizationV1Api(admin)
    rbac.create_cluster_role(WORKER)
    try:
        yield Probe(cluster.kubeconfig, namespace, admin)
    finally:
        core.delete_namespace(namespace)
        names = [probe_user(role, permission) for role, permission in CASES]
        for delete, name in [
            *((rbac.delete_cluster_role, n) for n in [*names, WORKER_ROLE_NAME]),
            *((rbac.delete_cluster_role_binding, n) for n in names),
        ]:
            with contextlib.suppress(SyncApiException):
                delete(name)


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    install_crd(cluster.api_client())


def bind(admin: sync_client.ApiClient, namespace: str, user: str, rules: list[Any]) -> None:
    """`user` gets exactly `rules`, cluster-wide (a ClusterRole and its binding)."""
    rbac = sync_client.RbacAuthorizationV1Api(admin)
    role = {"metadata": {"name": user}, "rules": rules}
    try:
        rbac.create_cluster_role(role)
    except SyncApiException as error:
        if error.status != 409:
            raise
        rbac.replace_cluster_role(user, role)
    try:
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": user},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": user,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            }
        )
    except SyncApiException as error:
        if error.status != 409:
            raise


def probe_user(role: str, permission: tuple[str, str, str]) -> str:
    return f"probe-{role}-{'-'.join(permission[1:]).replace('/', '-')}"


def outcome(call: Call, probe: Probe, user: str) -> int:
    """200 when the call went through, else the API's status (403: forbidden)."""

    async def run() -> None:
        try:
            await call(probe, user)
        finally:
            for api in probe.opened:
                await api.close()
            probe.opened.clear()

    try:
        asyncio.run(run())
    except ApiException as error:
        return int(error.status or 0)
    return 200


@pytest.mark.parametrize(
    ("role", "permission"), CASES, ids=[f"{r}:{'/'.join(p[1:])}" for r, p in CASES]
)
def test_each_verb_is_needed_by_its_call(
    probe: Probe, role: str, permission: tuple[str, str, str]
) -> None:
    call = CALLS[role][permission]
    user = probe_user(role, permission)
    bind(probe.admin, probe.namespace, user, without(ROLES[role], permission))
    wait_for(lambda: outcome(call, probe, user) == 403, f"{permission} refused without it", 15)
    bind(probe.admin, probe.namespace, user, without(ROLES[role], None))
    wait_for(lambda: outcome(call, probe, user) == 200, f"{permission} allowed with it", 15)
