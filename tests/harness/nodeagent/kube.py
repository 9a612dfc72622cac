"""The node agent's door to the apiserver: a small JSON client, and writes a kill silences.

A JSON client on top of the kubernetes package's ApiClient (transport, TLS, auth). Every write
the agent makes goes through :class:`NodeApi`, whose gate :meth:`NodeApi.silence` closes when
the agent is killed: a lost node says nothing more.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration

from harness.nodeagent.model import JsonDict

logger = logging.getLogger("harness.nodeagent")

MERGE_PATCH: Final = "application/merge-patch+json"


class KubeApiError(Exception):
    """A non-2xx answer of the apiserver."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class AgentKilled(Exception):
    """Raised by a write attempted after the agent was killed: it must stay silent."""


class WriteGate:
    """Lets API writes run concurrently until closed; closing waits for those in flight."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._closed = False

    @contextlib.contextmanager
    def open(self) -> Iterator[None]:
        with self._condition:
            if self._closed:
                raise AgentKilled
            self._active += 1
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify_all()

    def close(self, timeout: float) -> None:
        with self._condition:
            self._closed = True
            self._condition.wait_for(lambda: self._active == 0, timeout)


class KubeClient:
    def __init__(self, kubeconfig: Path, request_timeout: float) -> None:
        configuration = Configuration()
        configuration.connection_pool_maxsize = 64  # one connection per busy pod thread
        kube_config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
        )
        self.configuration = configuration
        self.api = ApiClient(configuration)
        self.request_timeout = request_timeout
        self.server: str = str(configuration.host)
        self.insecure = not configuration.verify_ssl
        self.ca_data: bytes | None = None
        if configuration.ssl_ca_cert:
            self.ca_data = Path(str(configuration.ssl_ca_cert)).read_bytes()
        elif configuration.ca_cert_data:
            data = configuration.ca_cert_data
            self.ca_data = data.encode() if isinstance(data, str) else bytes(data)
        self._watches: set[Any] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.interrupt_watches()
        self.api.close()

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: object,
        content_type: str,
        timeout: float | tuple[float, float],
    ) -> Any:
        serialized = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api.call_api(*serialized, _request_timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str = "application/json",
    ) -> JsonDict:
        response = self._call(method, path, query, body, content_type, self.request_timeout)
        data: bytes = response.read()
        if not 200 <= response.status < 300:
            raise KubeApiError(int(response.status), _error_message(data))
        if not data:
            return {}
        result: JsonDict = json.loads(data)
        return result

    def get(self, path: str, query: Mapping[str, str] | None = None) -> JsonDict | None:
        """GET, None on 404."""
        try:
            return self.request("GET", path, query=query)
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def watch(
        self, path: str, query: Mapping[str, str], timeout_seconds: int
    ) -> Iterator[JsonDict]:
        """The events of a watch that the apiserver ends after ``timeout_seconds``."""
        query = {
            **query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        response = self._call(
            "GET",
            path,
            query,
            None,
            "application/json",
            (self.request_timeout, timeout_seconds + 15),
        )
        raw = response.response
        if response.status != 200:
            raise KubeApiError(int(response.status), _error_message(response.read()))
        with self._lock:
            self._watches.add(raw)
        try:
            buffer = b""
            for chunk in raw.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event: JsonDict = json.loads(line)
                        yield event
        finally:
            with self._lock:
                self._watches.discard(raw)
            raw.close()
            raw.release_conn()

    def interrupt_watches(self) -> None:
        with self._lock:
            watches = list(self._watches)
        for raw in watches:
            with contextlib.suppress(Exception):
                raw.shutdown()


def _error_message(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body)
    return str(body)


class ApiEnvSources:
    """Secrets and ConfigMaps for :func:`resolve_env`, read from the apiserver."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        secret = self._kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            return None
        return {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.get("data") or {}).items()
        }

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None:
        config_map = self._kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if config_map is None:
            return None
        return {key: str(value) for key, value in (config_map.get("data") or {}).items()}


class NodeApi:
    """Every write the agent makes, each behind the gate that :meth:`silence` closes."""

    def __init__(self, kube: KubeClient, node_name: str) -> None:
        self.kube = kube
        self.node_name = node_name
        self.env_sources = ApiEnvSources(kube)
        self._gate = WriteGate()

    def silence(self, timeout: float) -> None:
        """No write from now on; returns once the writes in flight ended (or ``timeout``)."""
        self._gate.close(timeout)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        with self._gate.open():
            yield

    def patch_pod_status(self, namespace: str, name: str, uid: str, status: JsonDict) -> None:
        with self._writing():
            self.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                body={"metadata": {"uid": uid}, "status": status},
                content_type=MERGE_PATCH,
            )

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Finalise a deletion, as the kubelet does once the processes are gone."""
        with self._writing():
            try:
                self.kube.request(
                    "DELETE",
                    f"/api/v1/namespaces/{namespace}/pods/{name}",
                    body={
                        "apiVersion": "v1",
                        "kind": "DeleteOptions",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": uid},
                    },
                )
            except KubeApiError as error:
                if error.status not in (404, 409):
                    raise
                return
        logger.info("pod %s/%s: deleted", namespace, name)

    def bind(self, namespace: str, name: str, body: JsonDict) -> None:
        with self._writing():
            try:
                self.kube.request(
                    "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", body=body
                )
            except KubeApiError as error:
                if error.status in (404, 409):
                    return
                raise
        logger.info("pod %s/%s: bound to node %s", namespace, name, self.node_name)

    def patch_node_status(self, status: JsonDict) -> None:
        with self._writing():
            self.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}/status",
                body={"status": status},
                content_type=MERGE_PATCH,
            )

    def register_node(self, labels: Mapping[str, str]) -> JsonDict:
        """Create the Node, or take over the one of an earlier agent; returns it."""
        with self._writing():
            try:
                node = self.kube.request(
                    "POST",
                    "/api/v1/nodes",
                    body={
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {"name": self.node_name, "labels": dict(labels)},
                    },
                )
                logger.info("node %s: registered", self.node_name)
            except KubeApiError as error:
                if error.status != 409:
                    raise
                node = self.kube.request(
                    "PATCH",
                    f"/api/v1/nodes/{self.node_name}",
                    body={"metadata": {"labels": dict(labels)}},
                    content_type=MERGE_PATCH,
                )
                logger.info("node %s: registered again", self.node_name)
        return node

    def renew_lease(self, spec: JsonDict, lease: JsonDict) -> None:
        """Renew the node's Lease with ``spec``; create ``lease`` when it is missing."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/{lease['metadata']['namespace']}/leases"
        with self._writing():
            try:
                self.kube.request(
                    "PATCH",
                    f"{path}/{self.node_name}",
                    body={"spec": spec},
                    content_type=MERGE_PATCH,
                )
            except KubeApiError as error:
                if error.status != 404:
                    raise
                self.kube.request("POST", path, body=lease)

    def request_token(self, namespace: str, account: str, body: JsonDict) -> JsonDict:
        with self._writing():
            return self.kube.request(
                "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", body=body
            )
