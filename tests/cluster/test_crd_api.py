"""The CRD as the API server serves it: `kubectl explain` descriptions and list-map keys."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.cluster import Cluster
from harness.crd import install_crd
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("field", "says"),
    [
        (
            "collectionflow.spec.stallTimeoutSeconds",
            ["Seconds without a heartbeat", "604800", "300"],
        ),
        ("collectionflow.spec.phases", ["at most one per phase"]),
        ("collectionflow.spec.phases.retries", ["backoffLimit", "0 to 20"]),
        ("collectionflow.status.progressPercentage", ["0 to 100"]),
        ("collectionflow.status.conditions", ["kubectl wait"]),
    ],
)
def test_kubectl_explain_says_what_a_field_does(
    cluster: Cluster, api: client.ApiClient, field: str, says: list[str]
) -> None:
    install_crd(api)

    # The apiserver publishes a new CRD's OpenAPI (what kubectl explain reads) a little after
    # the CRD is served.
    def explain() -> subprocess.CompletedProcess[str] | None:
        done = kubectl(cluster, "explain", field)
        return done if done.returncode == 0 else None

    explained = wait_for(explain, f"kubectl explain {field}", 60, interval=1.0)
    assert "<empty>" not in explained.stdout
    for words in says:
        assert words in explained.stdout, (words, explained.stdout)


def test_two_overrides_of_one_phase_are_refused(
    cluster: Cluster, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    install_crd(api)
    manifest = tmp_path / "twice.yaml"
    manifest.write_text(
        f"apiVersion: {GROUP}/{VERSION}\nkind: CollectionFlow\nmetadata: {{name: twice}}\n"
        "spec:\n  phases:\n  - {name: initialization, retries: 1}\n"
        "  - {name: initialization, retries: 3}\n"
    )
    applied = kubectl(cluster, "apply", "-n", namespace, "-f", str(manifest))
    assert applied.returncode != 0
    assert "Duplicate value" in applied.stderr, applied.stderr
    with pytest.raises(ApiException) as missing:
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "twice"
        )
    assert missing.value.status == 404
