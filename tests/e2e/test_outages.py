"""Outages lose nothing: the database going away, and the apiserver restarting, mid-flow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from collectionflow.db.models import CollectionFlow, PhaseRun
from harness.cluster import Cluster
from harness.flows import REPO, Flows
from harness.operator_process import OperatorProcess
from harness.postgres import PostgresServer

pytestmark = pytest.mark.e2e


def spec(**simulate: dict[str, Any]) -> dict[str, Any]:
    path = REPO / "crds" / "samples" / "collectionflow-complete-data.yaml"
    result: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
    result["parameters"]["simulate"] = simulate
    return result


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, so stopping it disturbs no other test."""
    with PostgresServer() as server:
        yield server


def phase_runs(url: str, uid: str) -> list[tuple[str, int, str]]:
    async def query() -> list[tuple[str, int, str]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(PhaseRun.phase, PhaseRun.attempt, PhaseRun.state)
                    .join(CollectionFlow, PhaseRun.flow_id == CollectionFlow.id)
                    .where(CollectionFlow.k8s_uid == uid)
                    .order_by(PhaseRun.id)
                )
                return [(p, a, s) for p, a, s in rows]
        finally:
            await engine.dispose()

    return asyncio.run(query())


def test_database_outage_holds_the_flow_and_it_catches_up(
    flows: Flows, start_operator: Callable[..., OperatorProcess], own_postgres: PostgresServer
) -> None:
    url = own_postgres.create_database("outage")
    start_operator(url)
    uid = flows.create("dbdown", spec(platform_detection={"sleepSeconds": 4}))["metadata"]["uid"]
    flows.wait_for("dbdown", lambda s: s.get("phase") == "platform_detection", "second phase")

    own_postgres.halt()
    flows.wait_event("dbdown", "DatabaseUnavailable", timeout=60)
    warning = next(e for e in flows.events("dbdown") if e.reason == "DatabaseUnavailable")
    assert warning.type == "Warning"
    held = flows.wait_for(
        "dbdown",
        lambda s: "the database is unavailable" in (s.get("message") or ""),
        "the status saying the database holds the flow",
        30,
    )
    assert held["phase"] == "platform_detection", "no transition without the database"
    assert held["state"] == "Running"

    own_postgres.start()
    back = time.monotonic()
    status = flows.wait_state("dbdown", "Succeeded", timeout=120)
    print(f"database back to flow Succeeded: {time.monotonic() - back:.1f}s")
    assert [h["name"] for h in status["phaseHistory"]][:2] == [
        "initialization",
        "platform_detection",
    ]
    reasons = flows.wait_event("dbdown", "DatabaseRecovered")
    assert "FlowStalled" not in reasons, "the outage was reported once, as DatabaseUnavailable"
    runs = phase_runs(url, uid)
    assert [(p, a, s) for p, a, s in runs if p == "platform_detection"] == [
        ("platform_detection", 1, "succeeded")
    ], "the transition made during the outage was written once it returned"
    assert len(runs) == len(status["phaseHistory"])


def test_apiserver_restart_mid_flow_is_survived(
    cluster: Cluster, flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Any
) -> None:
    if cluster.local is None:
        pytest.skip("restarts only the local control plane's apiserver")
    operator = start_operator(f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}")
    flows.create("apirestart", spec(platform_detection={"sleepSeconds": 4}))
    flows.wait_for("apirestart", lambda s: s.get("phase") == "platform_detection", "second phase")
    cluster.local.control_plane.restart_apiserver()
    status = flows.wait_state("apirestart", "Succeeded", timeout=150)
    assert status["progressPercentage"] == 100
    assert operator.popen is not None
    assert operator.popen.poll() is None, "the operator kept running"
    names = [job.metadata.name for job in flows.jobs("apirestart")]
    assert len(names) == len(set(names)) == 6
