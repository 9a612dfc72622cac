"""End-to-end fixtures: the CRD installed, the operator started per test, flow helpers, and the
command line as a user runs it (`cflow`, on the test module's `db_url`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.cluster import Cluster
from harness.crd import install_crd
from harness.flows import Flows
from harness.operator_process import OperatorProcess


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes `db_url` runs on the databases its module's `DATABASES` names
    (SQLite when it names none)."""
    if "db_url" in metafunc.fixturenames:
        databases = getattr(metafunc.module, "DATABASES", ("sqlite",))
        metafunc.parametrize("db_url", databases, indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The operator's database: SQLite in the test's directory, or a database of its own on
    the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    url: str = server.create_database(f"e2e_{os.urandom(4).hex()}")
    return url


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> None:
    install_crd(cluster.api_client())


@pytest.fixture
def start_operator(
    cluster: Cluster,
    crd: None,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(
        db_url: str, log_name: str = "operator.log", kubeconfig: Path | None = None, **env: str
    ) -> OperatorProcess:
        process = OperatorProcess(
            kubeconfig or cluster.kubeconfig, namespace, db_url, tmp_path / log_name, env
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in {p.log_path: p for p in started}.values():
            print(f"--- operator log ({process.log_path}) ---\n{process.log_tail()}")


@pytest.fixture
def cflow(cluster: Cluster, db_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `collectionflow ARGS` (or another program) as a user would, 80 columns wide."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "COLLECTIONFLOW_DB__URL": db_url,
        "COLUMNS": "80",
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    }

    def run(
        *args: str, program: str = "collectionflow", **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """`extra`: more environment, such as the operator's settings `why` should go by."""
        return subprocess.run(
            [program, *args],
            env=env | extra,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    return run


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def flows(api: client.ApiClient, namespace: str, crd: None) -> Flows:
    """The test namespace's flows; the CRD is installed first, whichever test runs alone."""
    return Flows(api, namespace)
