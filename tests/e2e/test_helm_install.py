"""The chart installed for real into the test cluster with helm-python-sdk: two operator
replicas and the phase Jobs run from the built image, exactly one replica acts, a flow
succeeds, an upgrade rolls both replicas while a flow runs without a pause, an uninstall keeps
the CRD and the flows, and a namespaced install (one replica on SQLite) stays in its
namespaces."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.chart import CHART
from harness.cluster import OPERATOR_IMAGE, Cluster
from harness.controlplane import free_port
from harness.crd import install_crd
from harness.flows import Flows
from harness.images.model import split_reference
from harness.pods import wait_for_default_token
from harness.postgres import PostgresServer
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

RELEASE = "cf"
FULLNAME = "cf-collectionflow-operator"
CRD_NAME = "collectionflows.flows.collectionflow.io"
SAMPLE = {
    "parameters": {
        "assets": [
            {"name": "app-01", "platform": "aws", "os": "linux", "cpu": 8, "memoryGiB": 32},
        ],
        "requiredAttributes": ["os", "cpu", "memoryGiB"],
    }
}


def base_values(**extra: Any) -> dict[str, Any]:
    repository, tag = split_reference(OPERATOR_IMAGE)
    return {
        "image": {"repository": repository, "tag": tag},
        "healthPort": free_port(),
        "metrics": {"port": free_port()},
        "operator": {"heartbeatSeconds": 1, "resyncSeconds": 5, "allowSimulation": True},
        **extra,
    }


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, check=False)


def adopt_crd(api: client.ApiClient, namespace: str) -> None:
    """Let the release take over a CRD that other tests installed without Helm."""
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.patch_custom_resource_definition(
            CRD_NAME,
            {
                "metadata": {
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {
                        "meta.helm.sh/release-name": RELEASE,
                        "meta.helm.sh/release-namespace": namespace,
                    },
                }
            },
        )
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def make_namespace(api: client.ApiClient) -> Iterator[Callable[[str], str]]:
    core = client.CoreV1Api(api)
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        core.create_namespace({"metadata": {"name": name}})
        made.append(name)
        wait_for_default_token(core, name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name)


def operator_pods(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """The operator's running pods that are not being deleted."""
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    )
    return [
        api.sanitize_for_serialization(pod)
        for pod in pods.items
        if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp
    ]


def operator_pod(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    running = operator_pods(api, namespace)
    return running[0] if len(running) == 1 else {}


def replicas(
    api: client.ApiClient, namespace: str, count: int, not_uids: set[str]
) -> list[dict[str, Any]] | None:
    """Exactly `count` running operator pods, none of them one of `not_uids`; else None."""
    running = operator_pods(api, namespace)
    if len(running) != count or {p["metadata"]["uid"] for p in running} & not_uids:
        return None
    return running


def lease_holder(api: client.ApiClient, namespace: str) -> str:
    try:
        lease = client.CoordinationV1Api(api).read_namespaced_lease(f"{FULLNAME}-leader", namespace)
    except ApiException:
        return ""
    return str(lease.spec.holder_identity or "")


def flow_lines(cluster: Cluster, namespace: str, pod: str) -> int:
    """Lines an operator replica logged about flows (what it did to them)."""
    assert cluster.local is not None
    assert cluster.local.node_agent is not None
    log = cluster.local.node_agent.container_log(namespace, pod, "operator")
    return log.count(f"[{namespace}/")


def largest_gap(status: dict[str, Any]) -> float:
    """The longest wait between one phase finishing and the next starting, in seconds."""
    history = status["phaseHistory"]
    gaps = [
        (parse(after["startedAt"]) - parse(before["finishedAt"])).total_seconds()
        for before, after in itertools.pairwise(history)
    ]
    return max(gaps, default=0.0)


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def operator_log_on_failure(
    cluster: Cluster, api: client.ApiClient, namespace: str, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Print the in-cluster operator's log when the test fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    agent = cluster.local.node_agent if cluster.local else None
    if report is None or not report.failed or agent is None:
        return
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace)
    for pod in pods.items:
        if pod.metadata.name.startswith(FULLNAME):
            log = agent.container_log(namespace, pod.metadata.name, "operator")
            print(f"--- operator pod {pod.metadata.name} ---\n{log[-6000:]}")


def image_ids(api: client.ApiClient, namespace: str, selector: str) -> set[str]:
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
    return {status.image_id for pod in pods.items for status in pod.status.container_statuses or []}


def test_install_run_upgrade_and_uninstall(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    postgres_server: PostgresServer,
    flows: Flows,
    operator_log_on_failure: None,
) -> None:
    install_crd(api)
    adopt_crd(api, namespace)
    url = postgres_server.create_database(f"helm_{uuid.uuid4().hex[:8]}")
    client.CoreV1Api(api).create_namespaced_secret(
        namespace, {"metadata": {"name": "cf-db"}, "stringData": {"url": url}}
    )
    values = base_values(database={"existingSecret": "cf-db"})
    config = helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=namespace)

    started = time.monotonic()
    release = config.install(
        CHART, RELEASE, values, namespace=namespace, wait="watcher", timeout=120
    )
    assert (release["status"], release["revision"]) == ("deployed", 1)
    assert "kubectl get cflow" in release["notes"]
    pods = wait_for(
        lambda: replicas(api, namespace, 2, set()),
        "two operator replicas running (PostgreSQL: HA by default)",
        90,
    )
    pod = pods[0]
    assert pod["spec"]["serviceAccountName"] == FULLNAME
    image_id = pod["status"]["containerStatuses"][0]["imageID"]
    assert image_id.startswith(f"local://{OPERATOR_IMAGE}@sha256:"), image_id
    names = {p["metadata"]["name"] for p in pods}
    leader = wait_for(lambda: lease_holder(api, namespace), "a leader", 60)
    assert leader in names

    flows.create("first", SAMPLE)
    flows.wait_state("first", "Succeeded", timeout=60)
    install_to_succeeded = time.monotonic() - started
    assert image_ids(api, namespace, "flows.collectionflow.io/flow=first") == {image_id}
    print(f"helm install -> flow Succeeded: {install_to_succeeded:.1f}s")
    acted = {name: flow_lines(cluster, namespace, name) for name in names}
    print(f"flow log lines per replica: {acted}")
    assert acted[leader] > 0
    assert [count for name, count in acted.items() if name != leader] == [0], "one acts"

    tested = config.test(RELEASE, timeout=300, logs=True)  # raises when the hook pod fails
    assert "Succeeded" in tested["logs"], tested["logs"]

    slow = {
        **SAMPLE,
        "parameters": {
            **SAMPLE["parameters"],
            "simulate": {"platform_detection": {"sleepSeconds": 6}},
        },
    }
    flows.create("during-upgrade", slow)
    flows.wait_for("during-upgrade", lambda s: s.get("phase") == "platform_detection", "running")
    old_uids = {p["metadata"]["uid"] for p in pods}
    values["operator"]["stallTimeoutSeconds"] = 240
    upgraded = config.upgrade(
        CHART, RELEASE, values, namespace=namespace, wait="watcher", timeout=180
    )
    assert (upgraded["status"], upgraded["revision"]) == ("deployed", 2)
    new_pods = wait_for(
        lambda: replicas(api, namespace, 2, old_uids),
        "two new operator replicas (a rolling update)",
        120,
    )
    env = {e["name"]: e.get("value") for e in new_pods[0]["spec"]["containers"][0]["env"]}
    assert env["COLLECTIONFLOW_OPERATOR__STALL_TIMEOUT_SECONDS"] == "240"
    status = flows.wait_state("during-upgrade", "Succeeded", timeout=180)
    assert status["progressPercentage"] == 100
    attempts = [job.metadata.name for job in flows.jobs("during-upgrade")]
    assert len(attempts) == len(set(attempts)) == len(status["phaseHistory"])
    gap = largest_gap(status)
    print(f"largest wait between phases through the rolling update: {gap:.1f}s")
    assert gap < 15, "the rolling update handed over without waiting out the Lease"
    assert lease_holder(api, namespace) in {p["metadata"]["name"] for p in new_pods}

    config.uninstall(RELEASE, wait="watcher", timeout=120)
    apps = client.AppsV1Api(api)
    wait_for(
        lambda: not apps.list_namespaced_deployment(namespace).items, "the Deployment gone", 60
    )
    rbac = client.RbacAuthorizationV1Api(api)
    core = client.CoreV1Api(api)
    left = [
        f"{kind}/{item.metadata.name}"
        for kind, items in (
            ("ClusterRole", rbac.list_cluster_role().items),
            ("ClusterRoleBinding", rbac.list_cluster_role_binding().items),
            ("ServiceAccount", core.list_namespaced_service_account(namespace).items),
            ("Service", core.list_namespaced_service(namespace).items),
        )
        for item in items
        if str(item.metadata.name).startswith(FULLNAME)
    ]
    assert left == []

    def worker_rbac_left() -> list[str]:
        accounts = core.list_namespaced_service_account(namespace).items
        bindings = rbac.list_namespaced_role_binding(namespace).items
        return [
            f"{kind}/{item.metadata.name}"
            for kind, items in (("ServiceAccount", accounts), ("RoleBinding", bindings))
            for item in items
            if item.metadata.name == "collectionflow-worker"
        ]

    wait_for(
        lambda: not worker_rbac_left(),
        "the workers' ServiceAccount and RoleBinding the operator made to go with the chart",
        60,
    )
    assert client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD_NAME)
    assert flows.get("first")["status"]["state"] == "Succeeded"


def test_namespaced_install_stays_in_its_namespaces(
    cluster: Cluster,
    api: client.ApiClient,
    namespace: str,
    make_namespace: Callable[[str], str],
    operator_log_on_failure: None,
) -> None:
    install_crd(api)
    watched = make_namespace("team")
    unwatched = make_namespace("other")
    values = base_values(watchNamespaces=[watched], crds={"install": False})
    config = helm.Config(kubeconfig_path=str(cluster.kubeconfig), namespace=namespace)
    config.install(CHART, RELEASE, values, namespace=namespace, wait="watcher", timeout=120)
    try:
        wait_for(lambda: operator_pod(api, namespace), "the operator's pod running", 60)
        team, other = Flows(api, watched), Flows(api, unwatched)
        other.create("ignored", SAMPLE)
        team.create("watched", SAMPLE)

        team.wait_state("watched", "Succeeded", timeout=180)
        assert other.get("ignored").get("status") is None
        assert other.jobs("ignored") == []

        account = f"system:serviceaccount:{namespace}:{FULLNAME}"
        denied = {
            "secrets in the watched namespace": ("get", "secrets", "-n", watched),
            "jobs in another namespace": ("get", "jobs", "-n", unwatched),
            "flows in another namespace": ("get", "collectionflows", "-n", unwatched),
        }
        for what, args in denied.items():
            result = kubectl(cluster, *args, f"--as={account}")
            assert result.returncode != 0, what
            assert "Forbidden" in result.stderr, (what, result.stderr)
        allowed = kubectl(cluster, "get", "jobs", "-n", watched, f"--as={account}")
        assert allowed.returncode == 0, allowed.stderr
    finally:
        config.uninstall(RELEASE, wait="watcher", timeout=120)
