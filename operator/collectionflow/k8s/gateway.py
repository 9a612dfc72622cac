"""The operator's one door to the Kubernetes API: flows, Jobs, pods, Leases, Events, RBAC.

It does I/O and nothing else: no decisions. Creates are idempotent (409 "already exists"
means the object is there: it is read back and adopted), reads of absent objects return
None, and the blocking `kubernetes` client runs in worker threads so the event loop that
kopf shares with us never waits on the network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, KIND, PLURAL, VERSION
from collectionflow.specs.rbac import build_worker_rbac

log = logging.getLogger(__name__)
T = TypeVar("T")
MERGE_PATCH = "application/merge-patch+json"


class Conflict(Exception):
    """The object changed since it was read; read it again and decide again."""


@dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str
    uid: str
    kind: str = KIND
    api_version: str = f"{GROUP}/{VERSION}"


def api_error_message(error: ApiException) -> str:
    """The status line of an API error and the apiserver's own message, which names the verb,
    the resource and the user (``jobs.batch is forbidden: User ... cannot create ...``)."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{error.status} {error.reason}" + (f": {message}" if message else "")


def load_api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the local kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class KubeGateway:
    def __init__(self, api_client: client.ApiClient, component: str = "collectionflow-operator"):
        self.api_client = api_client
        self.component = component
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.rbac = client.RbacAuthorizationV1Api(api_client)
        self._rbac_ready: set[tuple[str, str]] = set()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _plain(self, obj: Any) -> dict[str, Any]:
        plain: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return plain

    async def _read(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
        try:
            return self._plain(await self._call(fn, *args))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # Flows

    async def get_flow(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )

    async def replace_flow_status(self, flow: dict[str, Any], status: dict[str, Any]) -> None:
        """Write the whole status, guarded by the flow's resourceVersion (409: Conflict)."""
        meta = flow["metadata"]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": meta["name"], "resourceVersion": meta["resourceVersion"]},
            "spec": flow.get("spec", {}),
            "status": status,
        }
        try:
            await self._call(
                self.custom.replace_namespaced_custom_object_status,
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                body,
            )
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"flow {meta['namespace']}/{meta['name']} changed") from None
            raise

    async def remove_flow_annotations(self, namespace: str, name: str, keys: list[str]) -> None:
        patch = {"metadata": {"annotations": dict.fromkeys(keys)}}
        await self._call(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            _content_type=MERGE_PATCH,
        )

    async def list_flows(self, namespace: str | None = None) -> list[dict[str, Any]]:
        listing: Any
        if namespace:
            listing = await self._call(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
            )
        else:
            listing = await self._call(
                self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL
            )
        items: list[dict[str, Any]] = dict(listing).get("items", [])
        return items

    # Jobs, pods, leases

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(self.batch.read_namespaced_job, name, namespace)

    async def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the Job, or adopt the one a previous run already made under this name (409):
        one request in the usual case, no read before it."""
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        try:
            return self._plain(
                await self._call(self.batch.create_namespaced_job, namespace, manifest)
            )
        except ApiException as error:
            if error.status != 409:
                raise
        adopted = await self.get_job(namespace, name)
        if adopted is None:
            raise Conflict(f"job {namespace}/{name} existed and vanished")
        return adopted

    async def delete_job(self, namespace: str, name: str) -> bool:
        try:
            await self._call(
                self.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
            )
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def list_job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        pods = await self._call(
            self.core.list_namespaced_pod, namespace, label_selector=f"job-name={job_name}"
        )
        return [self._plain(pod) for pod in pods.items]

    async def create_lease(self, manifest: dict[str, Any]) -> None:
        namespace = manifest["metadata"]["namespace"]
        try:
            await self._call(self.coordination.create_namespaced_lease, namespace, manifest)
        except ApiException as error:
            if error.status != 409:
                raise

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(self.coordination.read_namespaced_lease, name, namespace)

    # RBAC for workers

    async def ensure_worker_rbac(
        self, namespace: str, name: str, cluster_role: str | None = None
    ) -> None:
        """The worker ServiceAccount and its RBAC in `namespace`, once per process."""
        if (namespace, name) in self._rbac_ready:
            return
        creators: dict[str, Callable[..., Any]] = {
            "ServiceAccount": self.core.create_namespaced_service_account,
            "Role": self.rbac.create_namespaced_role,
            "RoleBinding": self.rbac.create_namespaced_role_binding,
        }
        for manifest in build_worker_rbac(namespace, name, cluster_role):
            try:
                await self._call(creators[manifest["kind"]], namespace, manifest)
            except ApiException as error:
                if error.status != 409:
                    raise
        self._rbac_ready.add((namespace, name))

    # Events

    async def post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the object, as `kubectl describe` shows them."""
        now = dt.datetime.now(dt.UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{ref.name}.{uuid.uuid4().hex[:16]}",
                "namespace": ref.namespace,
            },
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": now.isoformat().replace("+00:00", "Z"),
            "lastTimestamp": now.isoformat().replace("+00:00", "Z"),
            "count": 1,
        }
        try:
            await self._call(self.core.create_namespaced_event, ref.namespace, body)
        except ApiException as error:
            log.warning(
                "could not post event %s on %s/%s: %s",
                reason,
                ref.namespace,
                ref.name,
                error.reason,
            )
