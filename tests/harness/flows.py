"""CollectionFlow objects in one namespace, and waiting for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION

REPO = Path(__file__).resolve().parents[2]


class Flows:
    """CollectionFlow objects in one namespace, and waiting for them."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.namespace = namespace

    def create(self, name: str, spec: dict[str, Any], **annotations: str) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CollectionFlow",
            "metadata": {"name": name, "annotations": annotations},
            "spec": spec,
        }
        created: Any = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return dict(created)

    def get(self, name: str) -> dict[str, Any]:
        flow: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return dict(flow)

    def get_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self.get(name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, patch
        )

    def annotate(self, name: str, **annotations: str) -> None:
        self.patch(name, {"metadata": {"annotations": annotations}})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def wait_for(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.get(name).get("status") or {}
            if predicate(status):
                return status
            time.sleep(0.25)
        raise AssertionError(f"flow {name}: {what} not reached in {timeout:.0f}s; status={status}")

    def wait_state(self, name: str, state: str, timeout: float = 120.0) -> dict[str, Any]:
        return self.wait_for(name, lambda s: s.get("state") == state, f"state {state}", timeout)

    def jobs(self, name: str) -> list[Any]:
        selector = f"{GROUP}/flow={name}"
        return list(self.batch.list_namespaced_job(self.namespace, label_selector=selector).items)

    def events(self, name: str) -> list[Any]:
        selector = f"involvedObject.name={name},involvedObject.kind=CollectionFlow"
        return list(self.core.list_namespaced_event(self.namespace, field_selector=selector).items)

    def event_reasons(self, name: str) -> list[str]:
        return [event.reason for event in self.events(name)]

    def wait_event(self, name: str, reason: str, timeout: float = 30.0) -> list[str]:
        """The flow's Event reasons once `reason` is among them (Events follow the status)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reasons = self.event_reasons(name)
            if reason in reasons:
                return reasons
            time.sleep(0.25)
        raise AssertionError(f"flow {name}: no {reason} Event in {timeout:.0f}s: {reasons}")
