"""The local control plane behaves like a cluster: garbage collection, restarts.

RBAC is shown end to end by the node agent's tests: a pod's process is denied, then allowed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster import VENV_IMAGE, Cluster

pytestmark = pytest.mark.cluster


def _wait_gone(read: Any, *args: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read(*args)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        time.sleep(0.3)
    return False


def test_deleting_an_owner_deletes_its_jobs_through_the_garbage_collector(
    api: client.ApiClient, namespace: str
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    owner: Any = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}}
    )
    job = {
        "metadata": {
            "name": "owned",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner.metadata.uid,
                }
            ],
        },
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "c",
                            "image": VENV_IMAGE,
                            "command": ["sleep", "30"],
                        }
                    ],
                }
            }
        },
    }
    batch.create_namespaced_job(namespace, job)
    core.delete_namespaced_config_map("owner", namespace)
    assert _wait_gone(batch.read_namespaced_job, "owned", namespace), "GC left the Job behind"


def test_apiserver_restart_keeps_the_cluster_state(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    if cluster.local is None:
        pytest.skip("restarts only the local control plane's apiserver")
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "kept"}, "data": {"a": "1"}})
    cluster.local.control_plane.restart_apiserver()
    kept: Any = core.read_namespaced_config_map("kept", namespace)
    assert kept.data == {"a": "1"}
