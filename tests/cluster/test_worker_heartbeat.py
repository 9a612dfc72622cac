"""The worker's heartbeat against a real API server: renewals, pausing, creating the Lease."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.api.contract import WorkerRequest
from collectionflow.api.kube import micro_time
from collectionflow.api.models import CollectionFlowSpec
from collectionflow.domain.plan import plan_for
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.specs.jobs import PhaseJobRequest, build_phase_job
from collectionflow.specs.rbac import build_worker_rbac
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.heartbeat import LeaseHeartbeat, start_heartbeat
from harness.cluster import VENV_IMAGE
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster

INTERVAL = 0.2
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Leases:
    """Leases of one namespace, read back as the API server sends them (raw JSON)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.coordination = client.CoordinationV1Api(api)
        # Reads as plain JSON: the typed models would turn renewTime into a datetime.
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace

    def create(self, name: str, holder: str, renew_time: dt.datetime) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "renewTime": micro_time(renew_time)},
        }
        self.coordination.create_namespaced_lease(
            self.namespace, client.V1Lease.model_validate(body)
        )

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            lease = self.custom.get_namespaced_custom_object(
                "coordination.k8s.io", "v1", self.namespace, "leases", name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        assert isinstance(lease, dict)
        return lease

    def renew_time(self, name: str) -> str:
        """The lease's renewTime as sent; "" while the lease or its renewTime is missing."""
        lease = self.get(name) or {}
        renew_time: str = lease.get("spec", {}).get("renewTime", "")
        return renew_time

    def wait_renewed(self, name: str, after: str) -> str:
        """The lease's renewTime once it is later than `after` (MicroTimes sort as text)."""

        def renewed() -> str | None:
            current = self.renew_time(name)
            return current if current > after else None

        return wait_for(renewed, f"a renewal of lease {name} after {after!r}")


def idle_job(batch: client.BatchV1Api, namespace: str, name: str) -> str:
    """A Job whose only use is its name and uid; returns the uid.

    Suspended where the API server knows `suspend` (1.21+); the local 1.20 control plane
    drops the field, so its pod gets a command that exits at once.
    """
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "phase",
                            "image": VENV_IMAGE,
                            "command": [sys.executable, "-c", "pass"],
                        }
                    ],
                }
            },
        },
    }
    job = batch.create_namespaced_job(namespace, client.V1Job.model_validate(manifest))
    assert job.metadata is not None
    assert job.metadata.uid
    return job.metadata.uid


def test_renews_an_existing_lease_until_paused(api: client.ApiClient, namespace: str) -> None:
    leases = Leases(api, namespace)
    start = dt.datetime(2020, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
    leases.create("flow-gap-analysis-1", "operator", start)
    initial = leases.renew_time("flow-gap-analysis-1")

    heartbeat = LeaseHeartbeat(api, namespace, "flow-gap-analysis-1", "worker-pod", INTERVAL)
    heartbeat.start()
    try:
        first = leases.wait_renewed("flow-gap-analysis-1", initial)
        second = leases.wait_renewed("flow-gap-analysis-1", first)
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
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    batch = client.BatchV1Api(api)
    job_uid = idle_job(batch, namespace, "flow-synthesis-2")
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
        manual_input=None,
        heartbeat_lease="flow-synthesis-2",
        heartbeat_seconds=INTERVAL,
        job_name="flow-synthesis-2",
        job_uid=job_uid,
    )
    environ = {"KUBECONFIG": str(cluster.kubeconfig), "HOSTNAME": "flow-synthesis-2-x"}

    heartbeat = start_heartbeat(ctx, environ)
    try:
        first = leases.wait_renewed("flow-synthesis-2", "")
        leases.wait_renewed("flow-synthesis-2", first)
    finally:
        heartbeat.stop()
    lease = leases.get("flow-synthesis-2")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == "flow-synthesis-2-x"
    [owner] = lease["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", "flow-synthesis-2", job_uid)

    batch.delete_namespaced_job("flow-synthesis-2", namespace, propagation_policy="Background")
    wait_for(lambda: leases.get("flow-synthesis-2") is None, "the lease collected with its Job", 30)


def test_creates_the_lease_without_an_owner_when_its_job_uid_is_unknown(
    api: client.ApiClient, namespace: str
) -> None:
    leases = Leases(api, namespace)
    heartbeat = LeaseHeartbeat(api, namespace, "orphan", "worker-pod", INTERVAL, "flow-uid")
    assert heartbeat.renew()
    lease = leases.get("orphan")
    assert lease is not None
    assert "ownerReferences" not in lease["metadata"]
    assert MICRO_TIME.match(lease["spec"]["renewTime"])


def test_renewal_failures_are_not_fatal(
    api: client.ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Renewals that fail (here: the namespace is not there yet) are logged and retried; once
    the API accepts them the Lease is made and renewed, by the same running heartbeat."""
    core = client.CoreV1Api(api)
    namespace = f"t-later-{os.urandom(3).hex()}"
    heartbeat = LeaseHeartbeat(api, namespace, "lease", "worker-pod", INTERVAL)
    assert not heartbeat.renew()
    heartbeat.start()
    try:
        wait_for(
            lambda: caplog.text.count("heartbeat: lease creation failed") >= 3,
            "three failed renewals",
            10,
        )
        core.create_namespace({"metadata": {"name": namespace}})
        renewed = wait_for(lambda: Leases(api, namespace).get("lease"), "the Lease, made", 10)
        assert renewed["spec"]["holderIdentity"] == "worker-pod"
    finally:
        heartbeat.stop()
        core.delete_namespace(namespace)


def worker_environment(
    namespace: str, kubeconfig: str, termination: str, parameters: dict[str, Any]
) -> dict[str, str]:
    """The environment the operator gives a worker of phase initialization, attempt 1."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("COLLECTIONFLOW_")},
        "KUBECONFIG": kubeconfig,
        "HOSTNAME": "inventory-initialization-1-abcde",
        "TERMINATION_MESSAGE_PATH": termination,
        "COLLECTIONFLOW_FLOW_NAMESPACE": namespace,
        "COLLECTIONFLOW_FLOW_NAME": "inventory",
        "COLLECTIONFLOW_FLOW_UID": "6f1c2a9e-0000-4000-8000-000000000001",
        "COLLECTIONFLOW_FLOW_TYPE": "collection",
        "COLLECTIONFLOW_PHASE": "initialization",
        "COLLECTIONFLOW_ATTEMPT": "1",
        "COLLECTIONFLOW_JOB_NAME": "inventory-initialization-1",
        "COLLECTIONFLOW_HEARTBEAT_LEASE": "inventory-initialization-1",
        "COLLECTIONFLOW_HEARTBEAT_SECONDS": str(INTERVAL),
        "COLLECTIONFLOW_PARAMETERS": json.dumps(parameters),
    }


def test_a_hung_worker_stops_heart_beating_but_keeps_running(
    api: client.ApiClient, namespace: str, cluster: Any, tmp_path: Path
) -> None:
    leases = Leases(api, namespace)
    parameters = {
        "assets": [{"name": "web-01"}],
        "simulate": {"initialization": {"sleepSeconds": 1.5, "hangSeconds": 2}},
    }
    env = worker_environment(
        namespace, str(cluster.kubeconfig), str(tmp_path / "termination-log"), parameters
    )
    seen: set[str] = set()
    with subprocess.Popen(
        [sys.executable, "-m", "collectionflow", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as worker:
        while worker.poll() is None:
            seen.add(leases.renew_time("inventory-initialization-1"))
            time.sleep(0.05)
        stdout, stderr = worker.communicate()
    ended = dt.datetime.now(dt.UTC)
    assert worker.returncode == 0, stderr
    assert json.loads(stdout)["state"] == "succeeded"
    renewals = sorted(seen - {""})
    assert len(renewals) >= 3, f"too few renewals while working: {renewals}"
    last = dt.datetime.fromisoformat(renewals[-1])
    assert ended - last >= dt.timedelta(seconds=1.5), "renewed while hanging"
    assert "hanging for 2s without heart-beating" in stderr


def test_the_worker_heart_beats_while_its_phase_runs(
    api: client.ApiClient, namespace: str, cluster: Any, tmp_path: Path
) -> None:
    leases = Leases(api, namespace)
    before = micro_time(dt.datetime.now(dt.UTC))
    parameters = {
        "assets": [{"name": "web-01"}],
        "simulate": {"initialization": {"sleepSeconds": 1}},
    }
    env = worker_environment(
        namespace, str(cluster.kubeconfig), str(tmp_path / "termination-log"), parameters
    )
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


def create_worker_rbac(api: client.ApiClient, namespace: str, name: str) -> None:
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    for manifest in build_worker_rbac(namespace, name):
        kind = manifest["kind"]
        if kind == "ServiceAccount":
            core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount.model_validate(manifest)
            )
        elif kind == "Role":
            rbac.create_namespaced_role(namespace, client.V1Role.model_validate(manifest))
        else:
            rbac.create_namespaced_role_binding(
                namespace, client.V1RoleBinding.model_validate(manifest)
            )


def finished_pod(api: client.ApiClient, namespace: str, job_name: str) -> dict[str, Any] | None:
    """The Job's pod once its container has terminated, as the API server sends it."""
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"job-name={job_name}"
    )
    for pod in pods.items:
        plain: dict[str, Any] = api.sanitize_for_serialization(pod)
        for status in plain.get("status", {}).get("containerStatuses") or []:
            if (status.get("state") or {}).get("terminated"):
                return plain
    return None


def test_a_phase_job_heart_beats_as_its_service_account(
    api: client.ApiClient, namespace: str
) -> None:
    """The Job the operator builds, run by the node: RBAC, the Lease the worker creates owned
    by its Job (uid from the downward API), the termination message, and the Job's TTL
    deleting it, its pod and its Lease once it finished."""
    create_worker_rbac(api, namespace, "collectionflow-worker")
    parameters = {
        "assets": [{"name": "web-01"}],
        "simulate": {"initialization": {"sleepSeconds": 1.5}},
    }
    request = PhaseJobRequest(
        worker=WorkerRequest(
            namespace=namespace,
            flow_name="inventory",
            flow_uid="6f1c2a9e-0000-4000-8000-000000000001",
            flow_type="collection",
            phase="initialization",
            attempt=1,
            heartbeat_seconds=INTERVAL,
            parameters=parameters,
        ),
        phase=plan_for(CollectionFlowSpec.model_validate({})).phase("initialization"),
        image=VENV_IMAGE,
        service_account="collectionflow-worker",
        image_pull_policy="IfNotPresent",
        ttl_seconds_after_finished=8,
    )
    manifest = build_phase_job(request)
    # No CollectionFlow owns this Job here; an owner that does not exist would have the
    # garbage collector delete it.
    del manifest["metadata"]["ownerReferences"]
    batch = client.BatchV1Api(api)
    before = micro_time(dt.datetime.now(dt.UTC))
    job = batch.create_namespaced_job(namespace, client.V1Job.model_validate(manifest))
    assert job.metadata is not None
    assert job.metadata.uid
    leases = Leases(api, namespace)

    pod = wait_for(
        lambda: finished_pod(api, namespace, request.job_name), "the phase's pod to finish", 90
    )
    [container] = pod["status"]["containerStatuses"]
    terminated = container["state"]["terminated"]
    assert terminated["exitCode"] == 0, terminated
    result = PhaseResult.from_message(terminated["message"])
    assert result.state is PhaseOutcome.SUCCEEDED
    assert result.next_phase == "platform_detection"

    lease = leases.get(request.job_name)
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == pod["metadata"]["name"]
    assert lease["spec"]["renewTime"] > before
    [owner] = lease["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Job", job.metadata.uid)
    assert lease["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "collectionflow-operator"

    wait_for(lambda: leases.get(request.job_name) is None, "the TTL to remove Job and Lease", 60)
    assert finished_pod(api, namespace, request.job_name) is None
