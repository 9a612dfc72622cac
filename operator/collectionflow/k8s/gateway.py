"""The operator's one door to the Kubernetes API: flows, Jobs, pods, Leases, Events, RBAC.

It does I/O and nothing else: no decisions. Creates are idempotent (409 "already exists"
means the object is there: it is read back and adopted), and reads of absent objects return
None. The client is `kubernetes_asyncio` on the event loop kopf shares with us, so no request
waits for a thread; responses are parsed as plain JSON, never into the client's model classes,
which cost more CPU than the request itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.limits import decode_wire
from collectionflow.api.models import GROUP, KIND, PLURAL, VERSION
from collectionflow.api.reasons import EventReason
from collectionflow.specs.events import event_manifest
from collectionflow.specs.rbac import build_worker_rbac

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
WATCH_BUFFER_BYTES = 2**21  # kubernetes_asyncio's: a watch event can carry a large object


class Conflict(Exception):
    """The object changed since it was read; read it again and decide again."""


class ApiUnreachable(Exception):
    """The apiserver did not answer (connection refused or reset, timeout)."""


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


async def load_api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the local kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config()
    api_client = client.ApiClient()
    read_environment_once(api_client)
    return api_client


def read_environment_once(api_client: client.ApiClient) -> None:
    """kubernetes_asyncio opens its aiohttp session with `trust_env=True`, and aiohttp then
    reads ~/.netrc and the proxy variables on every request, each in a thread. The proxy is
    resolved here once instead (the environment of a process does not change; kubectl ignores
    .netrc), and the session is replaced by one that does not look again."""
    rest = api_client.rest_client
    if rest.proxy is None:
        rest.proxy = env_proxy(api_client.configuration.host)
    session: aiohttp.ClientSession = rest.pool_manager
    connector = session.connector
    session.detach()
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=WATCH_BUFFER_BYTES
    )


def env_proxy(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) sets for `url`."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class KubeGateway:
    def __init__(
        self,
        api_client: client.ApiClient,
        component: str = "collectionflow-operator",
        on_request: Callable[[], None] = lambda: None,
    ):
        self.api_client = api_client
        self.on_request = on_request
        self.component = component
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.rbac = client.RbacAuthorizationV1Api(api_client)
        self._rbac_ready: set[tuple[str, str]] = set()

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        """One request; the response body as plain JSON (ApiException for non-2xx)."""
        self.on_request()
        try:
            response = await fn(*args, _preload_content=False, **kwargs)
            try:
                data = await response.read()
            finally:
                response.release()
        except (TimeoutError, aiohttp.ClientConnectionError) as unreachable:
            raise ApiUnreachable(f"apiserver unreachable: {unreachable!r}") from unreachable
        if not 200 <= response.status <= 299:
            failed = ApiException(status=response.status, reason=response.reason)
            failed.body = data.decode(errors="replace")
            failed.headers = response.headers
            raise failed
        return decode_wire(data) if data else {}

    async def _read(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._call(fn, *args)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    # Flows

    async def get_flow(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(
            self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )

    async def flow_uids(self, namespace: str | None, page: int = 500) -> set[str]:
        """The uids of every flow in `namespace` (in every namespace when None), listed a
        `page` at a time."""
        uids: set[str] = set()
        token = None
        while True:
            options: dict[str, Any] = {"limit": page}
            if token:
                options["_continue"] = token
            if namespace is None:
                listed = await self._call(
                    self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, **options
                )
            else:
                listed = await self._call(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    **options,
                )
            uids.update(item["metadata"]["uid"] for item in listed.get("items") or [])
            token = (listed.get("metadata") or {}).get("continue")
            if not token:
                return uids

    async def patch_flow_status(
        self, flow: dict[str, Any], patch: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status, on condition that the flow is still at the resourceVersion
        it was read at (409: Conflict). Returns the flow as written."""
        meta = flow["metadata"]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": patch}
        try:
            written: dict[str, Any] = await self._call(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                body,
                _content_type=MERGE_PATCH,
            )
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"flow {meta['namespace']}/{meta['name']} changed") from None
            raise
        return written

    async def remove_flow_annotations(
        self, namespace: str, name: str, keys: list[str]
    ) -> dict[str, Any]:
        return await self._patch_flow(
            namespace, name, {"metadata": {"annotations": dict.fromkeys(keys)}}
        )

    async def set_flow_finalizers(
        self, namespace: str, name: str, finalizers: list[str], resource_version: str
    ) -> None:
        """Replace the flow's finalizers, if it is still at `resource_version` (409 if not)."""
        await self._patch_flow(
            namespace,
            name,
            {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}},
        )

    async def _patch_flow(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the flow (not its status)."""
        written: dict[str, Any] = await self._call(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            _content_type=MERGE_PATCH,
        )
        return written

    # Jobs, pods, leases

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(self.batch.read_namespaced_job, name, namespace)

    async def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the Job, or adopt the one a previous run already made under this name (409):
        one request in the usual case, no read before it."""
        namespace = manifest["metadata"]["namespace"]
        name = manifest["metadata"]["name"]
        try:
            created: dict[str, Any] = await self._call(
                self.batch.create_namespaced_job, namespace, manifest
            )
        except ApiException as error:
            if error.status != 409:
                raise
        else:
            return created
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
        items: list[dict[str, Any]] = pods.get("items") or []
        return items

    async def list_pods_of_jobs(
        self, namespace: str, job_names: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The pods of these Jobs in one request, served by the apiserver's watch cache
        (resourceVersion 0: maybe a moment old, and without a read of every pod of the
        namespace from etcd, which a label selector does not narrow). The names must be
        label values (`domain.pod_starts.batches`)."""
        pods = await self._call(
            self.core.list_namespaced_pod,
            namespace,
            label_selector=f"job-name in ({','.join(job_names)})",
            resource_version="0",
        )
        items: list[dict[str, Any]] = pods.get("items") or []
        return items

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._read(self.coordination.read_namespaced_lease, name, namespace)

    async def write_lease(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it when the manifest carries the resourceVersion it
        was read at; Conflict when someone else wrote it first."""
        meta = manifest["metadata"]
        try:
            if meta.get("resourceVersion"):
                written: dict[str, Any] = await self._call(
                    self.coordination.replace_namespaced_lease,
                    meta["name"],
                    meta["namespace"],
                    manifest,
                )
            else:
                written = await self._call(
                    self.coordination.create_namespaced_lease, meta["namespace"], manifest
                )
        except ApiException as error:
            if error.status == 409:
                raise Conflict(f"lease {meta['namespace']}/{meta['name']} changed") from None
            raise
        return written

    # RBAC for workers

    async def ensure_worker_rbac(
        self, namespace: str, name: str, cluster_role: str | None = None
    ) -> None:
        """The worker ServiceAccount and its RBAC in `namespace`, once per process."""
        if (namespace, name) in self._rbac_ready:
            return
        creators: dict[str, Callable[..., Awaitable[Any]]] = {
            "ServiceAccount": self.core.create_namespaced_service_account,
            "Role": self.rbac.create_namespaced_role,
            "RoleBinding": self.rbac.create_namespaced_role_binding,
        }
        owner = ""
        if cluster_role:
            role = await self._call(self.rbac.read_cluster_role, cluster_role)
            owner = role["metadata"]["uid"]
        for manifest in build_worker_rbac(namespace, name, cluster_role, owner):
            try:
                await self._call(creators[manifest["kind"]], namespace, manifest)
            except ApiException as error:
                if error.status != 409:
                    raise
        self._rbac_ready.add((namespace, name))

    # Events

    async def post_event(
        self, ref: ObjectRef, type_: str, reason: EventReason, message: str
    ) -> None:
        """A core/v1 Event on the object, as `kubectl describe` shows them."""
        body = event_manifest(
            ref.namespace,
            ref.name,
            ref.uid,
            ref.kind,
            ref.api_version,
            type_,
            reason,
            message,
            self.component,
            dt.datetime.now(dt.UTC),
        )
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
