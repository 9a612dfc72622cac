"""The worker's heartbeat against a real API server: renewals, pausing, creating the Lease."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.worker.context import PhaseContext
from collectionflow.worker.heartbeat import LeaseHeartbeat, micro_time, start_heartbeat

pytestmark = pytest.mark.cluster

T = TypeVar("T")
INTERVAL = 0.2
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class Leases:
    """Leases of one namespace, read back as the API server sends them (raw JSON)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.coordination = client.CoordinationV1Api(api)
        self.namespace = namespace

    def create(self, name: str, holder: str, renew_time: dt.datetime) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "renewTime": micro_time(renew_time)},
        }
        self.coordination.create_namespaced_lease(self.namespace, body)

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            response = self.coordination.read_namespaced_lease(
                name, self.namespace, _preload_content=False
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        lease: dict[str, Any] = json.loads(response.data)
        return lease

    def renew_time(self, name: str) -> str:
        lease = self.get(name)
        assert lease is not None, f"lease {name} is gone"
        renew_time: str = lease["spec"]["renewTime"]
        return renew_time


def suspended_job(batch: client.BatchV1Api, namespace: str, name: str) -> dict[str, Any]:
    """A Job that never starts a pod: only its name and uid matter here."""
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "phase", "image": "collectionflow-operator:test"}],
                }
            },
        },
    }
    job = batch.create_namespaced_job(namespace, manifest)
    return {"name": job.metadata.name, "uid": job.metadata.uid}


def test_renews_an_existing_lease_until_paused(api: client.ApiClient, namespace: str) -> None:
    leases = Leases(api, namespace)
    start = dt.datetime(2020, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    leases.create("flow-gap-analysis-1", "operator", start)
    initial = leases.renew_time("flow-gap-analysis-1")

    heartbeat = LeaseHeartbeat(api, namespace, "flow-gap-analysis-1", "worker-pod", INTERVAL)
    heartbeat.start()
    try:
        first = wait_for(
            lambda: (t := leases.renew_time("flow-gap-analysis-1")) != initial and t,
            "the first renewal",
        )
        second = wait_for(
            lambda: (t := leases.renew_time("flow-gap-analysis-1")) > first and t,
            "a second renewal",
        )
        lease = leases.get("flow-gap-analysis-1")
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "worker-pod"
        assert MICRO_TIME.match(second), second

        heartbeat.pause()
        paused = leases.renew_time("flow-gap-analysis-1")
        time.sleep(INTERVAL * 6)
        assert leases.renew_time("flow-gap-analysis-1") == paused
    finally:
        heartbeat.stop()


def test_creates_a_missing_lease_owned_by_its_job(
    api: client.ApiClient, namespace: str, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    batch = client.BatchV1Api(api)
    job = suspended_job(batch, namespace, "flow-synthesis-2")
    leases = Leases(api, namespace)
    ctx = PhaseContext(
        namespace=namespace,
        flow_name="flow",
        flow_uid="6f1c2a9e-0000-4000-8000-000000000001",
        flow_type="collection",
        phase="synthesis",
        attempt=2,
        parameters={},
        previous_outputs={},
        input=None,
        heartbeat_lease="flow-synthesis-2",
        heartbeat_seconds=INTERVAL,
    )
    environ = {"COLLECTIONFLOW_JOB_NAME": "flow-synthesis-2", "HOSTNAME": "flow-synthesis-2-x"}

    heartbeat = start_heartbeat(ctx, environ)
    try:
        lease = wait_for(lambda: leases.get("flow-synthesis-2"), "the lease")
        first = wait_for(
            lambda: leases.renew_time("flow-synthesis-2"), "the renewal of the new lease"
        )
        wait_for(lambda: leases.renew_time("flow-synthesis-2") > first, "a second renewal")
    finally:
        heartbeat.stop()
    lease = leases.get("flow-synthesis-2")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "flow-synthesis-2-x"
    [owner] = lease["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", job["name"], job["uid"])

    batch.delete_namespaced_job(job["name"], namespace, propagation_policy="Background")
    wait_for(lambda: leases.get("flow-synthesis-2") is None, "the lease collected with its Job", 30)


def test_creates_the_lease_without_an_owner_when_the_job_is_missing(
    api: client.ApiClient, namespace: str
) -> None:
    leases = Leases(api, namespace)
    heartbeat = LeaseHeartbeat(api, namespace, "orphan", "worker-pod", INTERVAL, "no-such-job")
    assert heartbeat.renew()
    lease = leases.get("orphan")
    assert lease is not None
    assert "ownerReferences" not in lease["metadata"]
    assert MICRO_TIME.match(lease["spec"]["renewTime"])


def test_renewal_failures_are_not_fatal(api: client.ApiClient) -> None:
    heartbeat = LeaseHeartbeat(api, "no-such-namespace-x", "lease", "worker-pod", INTERVAL)
    assert not heartbeat.renew()
    heartbeat.start()
    time.sleep(INTERVAL * 3)
    heartbeat.stop()


def test_the_worker_heart_beats_while_its_phase_runs(
    api: client.ApiClient, namespace: str, cluster: Any, tmp_path: Any
) -> None:
    leases = Leases(api, namespace)
    before = micro_time(dt.datetime.now(dt.UTC))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COLLECTIONFLOW_")},
        "KUBECONFIG": str(cluster.kubeconfig),
        "HOSTNAME": "inventory-initialization-1-abcde",
        "TERMINATION_MESSAGE_PATH": str(tmp_path / "termination-log"),
        "COLLECTIONFLOW_FLOW_NAMESPACE": namespace,
        "COLLECTIONFLOW_FLOW_NAME": "inventory",
        "COLLECTIONFLOW_FLOW_UID": "6f1c2a9e-0000-4000-8000-000000000001",
        "COLLECTIONFLOW_FLOW_TYPE": "collection",
        "COLLECTIONFLOW_PHASE": "initialization",
        "COLLECTIONFLOW_ATTEMPT": "1",
        "COLLECTIONFLOW_JOB_NAME": "inventory-initialization-1",
        "COLLECTIONFLOW_HEARTBEAT_LEASE": "inventory-initialization-1",
        "COLLECTIONFLOW_HEARTBEAT_SECONDS": str(INTERVAL),
        "COLLECTIONFLOW_PARAMETERS": json.dumps(
            {
                "assets": [{"name": "web-01"}],
                "simulate": {"initialization": {"sleepSeconds": 1}},
            }
        ),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "collectionflow", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lease = leases.get("inventory-initialization-1")
    assert lease is not None, completed.stderr
    assert lease["spec"]["holderIdentity"] == "inventory-initialization-1-abcde"
    assert lease["spec"]["renewTime"] > before
    assert "lease renewal failed" not in completed.stderr
