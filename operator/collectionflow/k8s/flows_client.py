"""The command line's door to the cluster: flows, their Events and their phase pods' logs.

Synchronous (a command does one thing and exits), through the user's kubeconfig and so the
user's RBAC; API errors surface as `FlowsClientError` with the apiserver's message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, KIND, PLURAL, VERSION
from collectionflow.api.names import LABEL_FLOW_UID, LABEL_PHASE, phase_label

MERGE_PATCH = "application/merge-patch+json"


class FlowsClientError(Exception):
    """The cluster refused or could not answer."""


class FlowNotFound(FlowsClientError):
    pass


def _error(error: ApiException) -> FlowsClientError:
    return FlowsClientError(f"{error.status} {error.reason}: {error.body or ''}".strip())


class FlowsClient:
    def __init__(self, context: str | None = None) -> None:
        try:
            config.load_kube_config(context=context)
            _, active = config.list_kube_config_contexts()
            self.default_namespace = str(active.get("context", {}).get("namespace") or "default")
        except config.ConfigException:
            config.load_incluster_config()
            self.default_namespace = "default"
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()
        self.batch = client.BatchV1Api()

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            flow: Any = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                raise FlowNotFound(
                    f'collectionflow "{name}" not found in namespace "{namespace}"'
                ) from None
            raise _error(error) from None
        return dict(flow)

    def list_flows(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """The flows of `namespace` (None: all namespaces) and the list's resourceVersion."""
        listing: Any
        try:
            if namespace is None:
                listing = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
            else:
                listing = self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL
                )
        except ApiException as error:
            raise _error(error) from None
        return list(listing.get("items") or []), str(listing["metadata"]["resourceVersion"])

    def watch(
        self, namespace: str | None, version: str, name: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Flows (or the one named) as they change after `version`, until interrupted."""
        stream = watch.Watch()
        only = {"field_selector": f"metadata.name={name}"} if name else {}
        if namespace is None:
            events = stream.stream(
                self.custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                resource_version=version,
                **only,
            )
        else:
            events = stream.stream(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                resource_version=version,
                **only,
            )
        for event in events:
            if event["type"] in ("ADDED", "MODIFIED"):
                yield event["object"]

    def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        try:
            patched: Any = self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, patch
            )
        except ApiException as error:
            raise _error(error) from None
        return dict(patched)

    def events(self, namespace: str, uid: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={KIND},involvedObject.uid={uid}"
        try:
            listing = self.core.list_namespaced_event(namespace, field_selector=selector)
        except ApiException as error:
            raise _error(error) from None
        plain: list[dict[str, Any]] = client.ApiClient().sanitize_for_serialization(listing.items)
        return plain

    def phase_pods(self, namespace: str, uid: str, phase: str | None) -> list[dict[str, Any]]:
        selector = f"{LABEL_FLOW_UID}={uid}"
        if phase:
            selector += f",{LABEL_PHASE}={phase_label(phase)}"
        try:
            pods = self.core.list_namespaced_pod(namespace, label_selector=selector)
        except ApiException as error:
            raise _error(error) from None
        plain: list[dict[str, Any]] = client.ApiClient().sanitize_for_serialization(pods.items)
        return plain

    def lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Lease as the API returns it; None when it is not there or may not be read."""
        try:
            found = client.CoordinationV1Api().read_namespaced_lease(name, namespace)
        except ApiException as error:
            if error.status in (403, 404):
                return None
            raise _error(error) from None
        plain: dict[str, Any] = client.ApiClient().sanitize_for_serialization(found)
        return plain

    def attempt(
        self, namespace: str, job_name: str
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
        """An attempt's Job, its pods and its heartbeat Lease, as the API returns them (None:
        not there)."""
        coordination = client.CoordinationV1Api()

        def read(call: Any, *args: Any) -> dict[str, Any] | None:
            try:
                found: dict[str, Any] = client.ApiClient().sanitize_for_serialization(call(*args))
            except ApiException as error:
                if error.status == 404:
                    return None
                raise _error(error) from None
            return found

        job = read(self.batch.read_namespaced_job, job_name, namespace)
        try:
            listing = self.core.list_namespaced_pod(
                namespace, label_selector=f"job-name={job_name}"
            )
        except ApiException as error:
            raise _error(error) from None
        pods: list[dict[str, Any]] = client.ApiClient().sanitize_for_serialization(listing.items)
        lease = read(coordination.read_namespaced_lease, job_name, namespace)
        return job, pods, lease

    def pod_log(self, namespace: str, pod: str) -> str:
        try:
            log: str = self.core.read_namespaced_pod_log(pod, namespace)
        except ApiException as error:
            raise _error(error) from None
        return log
