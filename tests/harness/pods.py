"""Pods of a test namespace, read back as the apiserver sends them (cluster tests)."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.waiting import wait_for


def pod_manifest(
    name: str, containers: list[dict[str, Any]], restart_policy: str = "Never", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 5,
            "containers": containers,
            **spec,
        },
    }


class Pods:
    """Pods of one namespace, read back as camelCase dicts like the apiserver sends them."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        created = self.core.create_namespaced_pod(self.namespace, manifest)
        result: dict[str, Any] = self.api.sanitize_for_serialization(created)
        return result

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            pod = self.core.read_namespaced_pod(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        result: dict[str, Any] = self.api.sanitize_for_serialization(pod)
        return result

    def status(self, name: str) -> dict[str, Any]:
        pod = self.get(name)
        assert pod is not None, f"pod {name} is gone"
        status: dict[str, Any] = pod.get("status") or {}
        return status

    def container(self, name: str, container: str = "main") -> dict[str, Any]:
        for status in self.status(name).get("containerStatuses") or []:
            if status["name"] == container:
                result: dict[str, Any] = status
                return result
        return {}

    def wait_phase(self, name: str, phase: str, timeout: float = 30.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status(name)
            return status if status.get("phase") == phase else None

        return wait_for(reached, f"pod {name} phase {phase}", timeout)

    def wait_running(self, name: str, container: str = "main") -> dict[str, Any]:
        return wait_for(
            lambda: (c := self.container(name, container)).get("state", {}).get("running") and c,
            f"container {container} of pod {name} running",
        )

    def delete(self, name: str, grace: int | None = None) -> None:
        self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=grace)


def wait_for_default_token(
    core: client.CoreV1Api, namespace: str, token: bool = True, timeout: float = 30.0
) -> None:
    """The ServiceAccount admission plugin rejects pods until the `default` ServiceAccount of a
    new namespace exists, and on 1.20 (``token``) until the token controller gave it a token."""

    def default_token() -> bool:
        try:
            account = core.read_namespaced_service_account("default", namespace)
            return bool(account.secrets) or not token
        except ApiException as error:
            if error.status == 404:
                return False
            raise

    wait_for(default_token, f"the default ServiceAccount token in {namespace}", timeout)


def namespace_pods(api: client.ApiClient, namespace: str) -> Pods:
    """Pods of the test's namespace, once pods can be created there."""
    wait_for_default_token(client.CoreV1Api(api), namespace)
    return Pods(api, namespace)
