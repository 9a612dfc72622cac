"""Driving the operator in tests: the CRD, the operator as a process, and flow objects.

The operator runs as `python -m collectionflow run` exactly as a user runs it, so a test can
SIGKILL it in the middle of a phase and start another one, as a crash and a restart would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.controlplane import free_port

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "collectionflow.yaml"


def install_crd(api_client: client.ApiClient) -> None:
    """Install (or update) the CRD from crds/ and wait until it is served."""
    ext = client.ApiextensionsV1Api(api_client)
    manifest = yaml.safe_load(CRD_PATH.read_text())
    name = manifest["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(manifest)
    except ApiException as error:
        if error.status != 409:
            raise
        current = ext.read_custom_resource_definition(name)
        manifest["metadata"]["resourceVersion"] = api_client.sanitize_for_serialization(current)[
            "metadata"
        ]["resourceVersion"]
        ext.replace_custom_resource_definition(name, manifest)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = api_client.sanitize_for_serialization(ext.read_custom_resource_definition(name))
        conditions = crd.get("status", {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not Established within 30s")


def scrape_metric(url: str, sample: str) -> float | None:
    """One sample (name with its labels, as exposed) of the metrics at `url`; None when the
    endpoint does not answer or lacks the sample."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == sample:
            return float(value)
    return None


@dataclass
class OperatorProcess:
    """`collectionflow run` for one namespace, with its log kept for failure reports."""

    kubeconfig: Path
    namespace: str
    db_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    metrics_port: int = field(default_factory=free_port)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def metric(self, sample: str) -> float | None:
        """One sample of this operator's metrics (name with labels, as exposed); None while
        it serves none."""
        return scrape_metric(self.metrics_url, sample)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "COLLECTIONFLOW_DB__URL": self.db_url,
            "COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS": "1",
            "COLLECTIONFLOW_OPERATOR__RESYNC_SECONDS": "5",
            "COLLECTIONFLOW_OPERATOR__ALLOW_SIMULATION": "true",
            "COLLECTIONFLOW_OPERATOR__METRICS_PORT": str(self.metrics_port),
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "collectionflow",
                    "run",
                    "--namespace",
                    self.namespace,
                    "--liveness-port",
                    "0",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crashed or evicted pod."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


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
