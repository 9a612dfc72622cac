"""The docs, followed as a reader follows them: each page's `sh` blocks run in order, in one
shell, against the local cluster (harness.docblocks says which blocks run). The reader's
kubeconfig has the test's namespace as its current one; `helm` is helm-python-sdk behind
Helm's command line (harness.helm_cli); `REGISTRY` is a name no registry answers, which the
node agent maps to the image built here, as a node that pulled it would run it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.api.names import LABEL_FLOW, LABEL_PHASE, phase_label
from harness.cluster import OPERATOR_IMAGE, Cluster
from harness.docblocks import REPO, page_blocks, script
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.postgres import SUPERUSER, PostgresServer

pytestmark = pytest.mark.e2e

REGISTRY = "registry.example.test/team"
INSTALL_NAMESPACE = "collectionflow-system"
CRD_NAME = "collectionflows.flows.collectionflow.io"
Reader = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def reader(cluster: Cluster, namespace: str, tmp_path: Path) -> Reader:
    """Runs a page's `sh` blocks as a reader in a shell at the repository's root would."""
    config: dict[str, Any] = yaml.safe_load(cluster.kubeconfig.read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m harness.helm_cli "$@"\n')
    helm.chmod(0o755)
    path = [str(Path(sys.executable).parent), str(bin_dir), os.environ.get("PATH", "")]
    base = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": os.pathsep.join(path),
        "PYTHONPATH": str(REPO / "tests"),
        "REGISTRY": REGISTRY,
        "COLUMNS": "100",
    }

    def run(page: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-c", script(page_blocks(page))],
            cwd=REPO,
            env=base | env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"{page}: the block last announced failed (exit {result.returncode})\n"
            f"--- stderr ---\n{result.stderr[-6000:]}\n--- stdout ---\n{result.stdout[-4000:]}"
        )
        return result

    return run


@pytest.fixture
def operator(start_operator: Callable[..., OperatorProcess], db_url: str) -> str:
    """An operator for the test's namespace, as `docs/install.md` leaves one; its database."""
    start_operator(db_url)
    return db_url


def test_readme_quickstart(
    reader: Reader, operator: str, flows: Flows, api: client.ApiClient
) -> None:
    """`make demo` runs its flows to Succeeded in its own namespace and ends (no terminal);
    the quickstart's flow waits for input, gets it from `collectionflow input`, succeeds."""
    try:
        ran = reader("README.md", timeout=900, COLLECTIONFLOW_DB__URL=operator)
        assert "all flows Succeeded" in ran.stdout
        demo = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "flows.collectionflow.io", "v1alpha1", "collectionflow-demo", "collectionflows"
        )
        assert {f["status"]["state"] for f in demo["items"]} == {"Succeeded"}
        assert "assessment-acme   manual_collection" in ran.stdout  # kubectl get cflow
        assert "WaitingForInput" in ran.stdout  # collectionflow why
        status = flows.get("assessment-acme")["status"]
        assert status["state"] == "Succeeded"
        assert status["progressPercentage"] == 100
    finally:
        _delete_namespace(api, "collectionflow-demo")


def test_usage_walkthrough(reader: Reader, operator: str, flows: Flows) -> None:
    ran = reader("docs/usage.md", COLLECTIONFLOW_DB__URL=operator)
    assert flows.get("assessment-acme")["status"]["state"] == "Succeeded"
    assert flows.get("assessment-globex")["status"]["state"] == "Succeeded"
    reasons = flows.event_reasons("assessment-globex")
    assert {"FlowSuspended", "FlowResumed", "FlowSucceeded"} <= set(reasons), reasons
    assert '"agent_decision"' in ran.stdout  # collectionflow logs: the phase's result


def test_custom_phase_image(
    reader: Reader, operator: str, flows: Flows, api: client.ApiClient, namespace: str
) -> None:
    """The plug-in is built into an image from ours and runs as the flow's
    automated_collection; the other phases run from the operator's image."""
    ran = reader("docs/custom-phases.md", COLLECTIONFLOW_DB__URL=operator)
    assert flows.get("cmdb-demo")["status"]["state"] == "Succeeded"
    assert "2 assets from the CMDB export of cmdb-demo" in ran.stdout
    images = {
        job.metadata.labels[LABEL_PHASE]: job.spec.template.spec.containers[0].image
        for job in flows.jobs("cmdb-demo")
    }
    collecting = phase_label("automated_collection")
    assert images[collecting] == f"{REGISTRY}/collectionflow-cmdb:1"
    assert images[phase_label("synthesis")] == OPERATOR_IMAGE
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"{LABEL_PHASE}={collecting}"
    )
    [image_id] = {p.status.container_statuses[0].image_id for p in pods.items}
    assert image_id.startswith(f"local://{REGISTRY}/collectionflow-cmdb:1@sha256:"), image_id


@pytest.fixture
def tls_postgres() -> Iterator[PostgresServer]:
    with PostgresServer(tls=True) as server:
        yield server


def test_install_guide(
    reader: Reader,
    flows: Flows,
    api: client.ApiClient,
    tls_postgres: PostgresServer,
) -> None:
    """docs/install.md from the image to the uninstall: PostgreSQL over TLS, the chart from
    the image under a registry's name, `helm test`, a flow, the CLI on the database, an
    upgrade and a rollback, and an uninstall that keeps the CRD and the flows."""
    _hand_crd_to_release(api)
    try:
        ran = reader(
            "docs/install.md",
            timeout=1200,
            PGHOST=tls_postgres.host,
            PGPORT=str(tls_postgres.port),
            PGUSER=SUPERUSER,
            DB_PASSWORD=secrets.token_hex(12),
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "harness.helm_cli", "uninstall", "cf", "-n", INSTALL_NAMESPACE],
            env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
            capture_output=True,
            check=False,
        )
        _delete_namespace(api, INSTALL_NAMESPACE)
    assert "STATUS: deployed\nREVISION: 1" in ran.stdout
    assert "has been upgraded" in ran.stdout
    assert "Rollback was a success" in ran.stdout
    assert 'release "cf" uninstalled' in ran.stdout
    assert "assessment-globex" in ran.stdout  # collectionflow get -A, db flows, kubectl get
    assert flows.get("assessment-globex")["status"]["state"] == "Succeeded"
    assert client.ApiextensionsV1Api(api).read_custom_resource_definition(CRD_NAME)
    pods = client.CoreV1Api(api).list_namespaced_pod(
        flows.namespace, label_selector=f"{LABEL_FLOW}=assessment-globex"
    )
    assert {p.spec.containers[0].image for p in pods.items} == {
        f"{REGISTRY}/collectionflow-operator:0.1.0"
    }


def _hand_crd_to_release(api: client.ApiClient) -> None:
    """The session's other tests installed the CRD without Helm; a new cluster has none. Mark
    it as the release's, as `helm install` would have made it."""
    try:
        client.ApiextensionsV1Api(api).patch_custom_resource_definition(
            CRD_NAME,
            {
                "metadata": {
                    "labels": {"app.kubernetes.io/managed-by": "Helm"},
                    "annotations": {
                        "meta.helm.sh/release-name": "cf",
                        "meta.helm.sh/release-namespace": INSTALL_NAMESPACE,
                    },
                }
            },
        )
    except ApiException as error:
        if error.status != 404:
            raise


def _delete_namespace(api: client.ApiClient, name: str) -> None:
    """Deleted, not awaited, as the `namespace` fixture does."""
    core = client.CoreV1Api(api)
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise
