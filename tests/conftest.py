"""Session fixtures shared by every test directory: the cluster, namespaces, PostgreSQL.

With `KUBECONFIG` set, the tests use that cluster (kind, for instance) and start nothing.
Otherwise they start the local control plane and the node agent once per session, and only
when a selected test asks for them.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster import Cluster, LocalCluster
from harness.pods import wait_for_default_token
from harness.postgres import PostgresServer
from harness.suite import KINDS, unmarked


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI timeout, `kill`) runs the fixtures' teardown, so no process is left behind."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test without one of the suite's markers would never run under `make test` (which
    selects by marker): refuse the whole run instead of skipping it silently."""
    if missing := unmarked((i.nodeid, {m.name for m in i.iter_markers()}) for i in items):
        raise pytest.UsageError(
            f"tests without a marker of {', '.join(KINDS)} (make test would never run them): "
            + ", ".join(missing)
        )


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield Cluster(Path(existing), None)
        return
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as local:
        yield Cluster(local.kubeconfig, local)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL for the session (Debian's postgresql, temporary data dir)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    api_client = cluster.api_client()
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def namespace(
    cluster: Cluster, api: client.ApiClient, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace per test, ready for pods, deleted (not awaited) afterwards."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for_default_token(core, name, token=cluster.local is not None)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
