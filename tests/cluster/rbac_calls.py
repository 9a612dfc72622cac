"""The calls the RBAC probe makes as each role: for every verb a role grants, the operator's
(or the worker's) own call that needs it, made through the same code paths."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as sync_client
from kubernetes import config as sync_config
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.api.reasons import EventReason
from collectionflow.k8s.gateway import KubeGateway, ObjectRef
from collectionflow.worker.heartbeat import LeaseHeartbeat

# The chart's worker ClusterRole under a name of this test's own, so that it never stands in
# the way of a release of the chart in the same cluster.
WORKER_ROLE_NAME = f"rbac-probe-worker-{uuid.uuid4().hex[:8]}"


@dataclass
class Probe:
    """The objects a probe acts on, in one namespace, made by the admin."""

    kubeconfig: Path
    namespace: str
    admin: sync_client.ApiClient
    opened: list[client.ApiClient] = field(default_factory=list)

    async def gateway(self, user: str) -> KubeGateway:
        """The operator's gateway, as `user`."""
        configuration = client.Configuration()
        await config.load_kube_config(str(self.kubeconfig), client_configuration=configuration)
        api = client.ApiClient(configuration)
        api.set_default_header("Impersonate-User", user)
        self.opened.append(api)
        return KubeGateway(api)

    def flow(self) -> dict[str, Any]:
        custom = sync_client.CustomObjectsApi(self.admin)
        body: Any = custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, "probe"
        )
        return dict(body)

    def job(self) -> str:
        name = f"probe-{uuid.uuid4().hex[:8]}"
        sync_client.BatchV1Api(self.admin).create_namespaced_job(self.namespace, job(name))
        return name

    def lease(self) -> dict[str, Any]:
        body: Any = sync_client.CoordinationV1Api(self.admin).read_namespaced_lease(
            "probe", self.namespace
        )
        return dict(self.admin.sanitize_for_serialization(body))


def job(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "probe.invalid/none", "command": ["x"]}],
                }
            },
        },
    }


async def watch(call: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """One short watch request, as the operator's list-then-watch makes it."""
    response = await call(*args, watch=True, timeout_seconds=1, _preload_content=False)
    try:
        if response.status != 200:
            raise ApiException(status=response.status, reason=response.reason)
    finally:
        response.release()


def sync_as(kubeconfig: Path, user: str) -> sync_client.ApiClient:
    configuration = sync_client.Configuration()
    sync_config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    api = sync_client.ApiClient(configuration)
    api.set_default_header("Impersonate-User", user)
    return api


Call = Callable[[Probe, str], Awaitable[Any]]


async def _flow_get(p: Probe, user: str) -> Any:
    return await (await p.gateway(user)).get_flow(p.namespace, "probe")


async def _flow_list(p: Probe, user: str) -> Any:
    return await (await p.gateway(user)).flow_uids(p.namespace)


async def _flow_watch(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    await watch(gw.custom.list_namespaced_custom_object, GROUP, VERSION, p.namespace, PLURAL)


async def _flow_patch(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    return await gw.remove_flow_annotations(p.namespace, "probe", ["example.com/none"])


async def _status_patch(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    return await gw.patch_flow_status(p.flow(), {"message": f"probe {uuid.uuid4().hex}"})


async def _job_get(p: Probe, user: str) -> Any:
    return await (await p.gateway(user)).get_job(p.namespace, "probe")


async def _job_list(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    return await gw.batch.list_namespaced_job(p.namespace)


async def _job_watch(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    await watch(gw.batch.list_namespaced_job, p.namespace)


async def _job_create(p: Probe, user: str) -> Any:
    manifest = job(f"probe-{uuid.uuid4().hex[:8]}")
    manifest["metadata"]["namespace"] = p.namespace
    return await (await p.gateway(user)).create_job(manifest)


async def _job_delete(p: Probe, user: str) -> Any:
    return await (await p.gateway(user)).delete_job(p.namespace, p.job())


async def _pod_list(p: Probe, user: str) -> Any:
    return await (await p.gateway(user)).list_job_pods(p.namespace, "probe")


async def _pod_watch(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    await watch(gw.core.list_namespaced_pod, p.namespace)


async def _lease_get(p: Probe, user: str) -> Any:
    return await (await p.gateway(user)).get_lease(p.namespace, "probe")


async def _lease_list(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    return await gw.coordination.list_namespaced_lease(p.namespace)


async def _lease_watch(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    await watch(gw.coordination.list_namespaced_lease, p.namespace)


async def _event_create(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    flow = p.flow()["metadata"]
    body = {
        "metadata": {"name": f"probe.{uuid.uuid4().hex[:12]}", "namespace": p.namespace},
        "involvedObject": {
            "kind": "CollectionFlow",
            "name": "probe",
            "namespace": p.namespace,
            "uid": flow["uid"],
        },
        "reason": "Probe",
        "message": "probe",
        "type": "Normal",
    }
    await gw.core.create_namespaced_event(p.namespace, body)
    await gw.post_event(
        ObjectRef(p.namespace, "probe", flow["uid"]), "Normal", EventReason.CAUGHT_UP, "probe"
    )


async def _worker_rbac(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    await gw.ensure_worker_rbac(p.namespace, f"sa-{uuid.uuid4().hex[:8]}", WORKER_ROLE_NAME)


async def _leader_create(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    name = f"leader-{uuid.uuid4().hex[:8]}"
    manifest = {"metadata": {"name": name, "namespace": p.namespace}, "spec": {}}
    return await gw.write_lease(manifest)


async def _leader_update(p: Probe, user: str) -> Any:
    gw = await p.gateway(user)
    lease = p.lease()
    lease["spec"]["holderIdentity"] = f"probe-{uuid.uuid4().hex[:6]}"
    return await gw.write_lease(lease)


async def _worker_beat(p: Probe, user: str, name: str) -> None:
    heartbeat = LeaseHeartbeat(
        sync_as(p.kubeconfig, user), p.namespace, name, f"{name}-pod", 1.0, "flow-uid"
    )
    if not await asyncio.to_thread(heartbeat.renew):
        raise ApiException(status=403, reason="the heartbeat was not renewed")


async def _worker_create(p: Probe, user: str) -> Any:
    await _worker_beat(p, user, f"beat-{uuid.uuid4().hex[:8]}")


async def _worker_patch(p: Probe, user: str) -> Any:
    await _worker_beat(p, user, "probe")


CALLS: dict[str, dict[tuple[str, str, str], Call]] = {
    "operator": {
        (GROUP, "collectionflows", "get"): _flow_get,
        (GROUP, "collectionflows", "list"): _flow_list,
        (GROUP, "collectionflows", "watch"): _flow_watch,
        (GROUP, "collectionflows", "patch"): _flow_patch,
        (GROUP, "collectionflows/status", "patch"): _status_patch,
        ("batch", "jobs", "get"): _job_get,
        ("batch", "jobs", "list"): _job_list,
        ("batch", "jobs", "watch"): _job_watch,
        ("batch", "jobs", "create"): _job_create,
        ("batch", "jobs", "delete"): _job_delete,
        ("", "pods", "list"): _pod_list,
        ("", "pods", "watch"): _pod_watch,
        ("coordination.k8s.io", "leases", "get"): _lease_get,
        ("coordination.k8s.io", "leases", "list"): _lease_list,
        ("coordination.k8s.io", "leases", "watch"): _lease_watch,
        ("", "events", "create"): _event_create,
        ("", "serviceaccounts", "create"): _worker_rbac,
        ("rbac.authorization.k8s.io", "rolebindings", "create"): _worker_rbac,
        ("rbac.authorization.k8s.io", "clusterroles", "bind"): _worker_rbac,
        ("rbac.authorization.k8s.io", "clusterroles", "get"): _worker_rbac,
    },
    "leader": {
        ("coordination.k8s.io", "leases", "get"): _lease_get,
        ("coordination.k8s.io", "leases", "create"): _leader_create,
        ("coordination.k8s.io", "leases", "update"): _leader_update,
        ("", "events", "create"): _event_create,
    },
    "worker": {
        ("coordination.k8s.io", "leases", "create"): _worker_create,
        ("coordination.k8s.io", "leases", "patch"): _worker_patch,
    },
}
