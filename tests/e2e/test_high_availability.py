"""Two operator replicas with leader election on one PostgreSQL: exactly one acts, a standby
takes over after the leader is SIGKILLed or stops, and a partitioned leader stops acting before
anyone else starts."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectionflow.domain.registry import flow_definition
from harness.cluster import VENV_IMAGE, Cluster
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.postgres import PostgresServer
from harness.proxy import PartitionProxy
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

PHASES = [phase.name for phase in flow_definition("collection").phases]
LEASE = {"duration": 6, "deadline": 4, "retry": 1}
LEADER = "collectionflow_leader"


def slow_spec(seconds: float) -> dict[str, Any]:
    """Seven phases of `sleep`: a flow that is in flight for a while."""
    return {
        "clientAccountId": "ha",
        "parameters": {},
        "phases": [
            {"name": p, "command": ["sleep", str(seconds)], "manual": False} for p in PHASES
        ],
    }


@pytest.fixture
def replica(
    start_operator: Callable[..., OperatorProcess],
    postgres_server: PostgresServer,
    namespace: str,
) -> Callable[..., OperatorProcess]:
    """Starts replicas of one HA install: leader election on a Lease in the test namespace."""
    db_url = postgres_server.create_database(f"ha_{os.urandom(4).hex()}")

    def start(identity: str, kubeconfig: Path | None = None) -> OperatorProcess:
        return start_operator(
            db_url,
            log_name=f"operator-{identity}.log",
            kubeconfig=kubeconfig,
            COLLECTIONFLOW_OPERATOR__IMAGE=VENV_IMAGE,
            COLLECTIONFLOW_LEADER__ENABLED="true",
            COLLECTIONFLOW_LEADER__LEASE_NAMESPACE=namespace,
            COLLECTIONFLOW_LEADER__IDENTITY=identity,
            COLLECTIONFLOW_LEADER__LEASE_DURATION_SECONDS=str(LEASE["duration"]),
            COLLECTIONFLOW_LEADER__RENEW_DEADLINE_SECONDS=str(LEASE["deadline"]),
            COLLECTIONFLOW_LEADER__RETRY_PERIOD_SECONDS=str(LEASE["retry"]),
        )

    return start


def leader_of(*replicas: OperatorProcess) -> OperatorProcess | None:
    """The one replica that says it leads; None while none or more than one does."""
    leading = [r for r in replicas if r.running and r.metric(LEADER) == 1.0]
    return leading[0] if len(leading) == 1 else None


def flow_lines(process: OperatorProcess, namespace: str) -> int:
    """Lines a replica logged about flows (what it did to them)."""
    text = process.log_path.read_text(errors="replace")
    return len(re.findall(rf"\[{re.escape(namespace)}/", text))


def one_job_per_phase(flows: Flows, names: list[str]) -> None:
    for name in names:
        jobs = [job.metadata.name for job in flows.jobs(name)]
        assert len(jobs) == len(set(jobs)) == len(PHASES), (name, jobs)
        assert all(job.endswith("-1") for job in jobs), f"a phase of {name} ran twice: {jobs}"


def stall_events(flows: Flows) -> list[str]:
    events = flows.core.list_namespaced_event(flows.namespace, field_selector="reason=FlowStalled")
    return [str(event.message) for event in events.items]


def test_one_replica_acts_and_the_standby_takes_over_a_sigkilled_leader(
    flows: Flows, namespace: str, replica: Callable[..., OperatorProcess]
) -> None:
    first, second = replica("first"), replica("second")
    leader = wait_for(lambda: leader_of(first, second), "one leader", 60)
    standby = second if leader is first else first
    names = [f"ha-{index:02d}" for index in range(20)]
    for name in names:
        flows.create(name, slow_spec(3))

    def in_flight_past_two_phases() -> bool:
        statuses = [flows.get(n).get("status") or {} for n in names]
        return all(
            s.get("state") == "Running" and PHASES.index(s.get("phase") or PHASES[0]) >= 2
            for s in statuses
        )

    wait_for(in_flight_past_two_phases, "every flow running, past its second phase", 120)
    assert flow_lines(leader, namespace) > 0
    assert flow_lines(standby, namespace) == 0, "the standby must not act"
    assert standby.metric(LEADER) == 0.0

    leader.kill()
    killed_at = time.monotonic()
    wait_for(lambda: standby.metric(LEADER) == 1.0, "the standby to lead", 30)
    takeover = time.monotonic() - killed_at
    print(f"takeover after SIGKILL: {takeover:.1f}s (lease duration {LEASE['duration']}s)")
    assert takeover <= LEASE["duration"] + 4

    for name in names:
        flows.wait_state(name, "Succeeded", timeout=180)
    one_job_per_phase(flows, names)
    assert stall_events(flows) == [], "a failover is not a stall"
    assert standby.metric("collectionflow_leader_transitions_total") == 1.0


def test_a_leader_that_stops_hands_over_at_once(
    flows: Flows, replica: Callable[..., OperatorProcess]
) -> None:
    first = replica("first")
    wait_for(lambda: leader_of(first), "the first replica to lead", 60)
    second = replica("second")
    wait_for(lambda: second.metric(LEADER) == 0.0, "the second replica to stand by", 60)
    flows.create("handover", slow_spec(1.0))
    flows.wait_for("handover", lambda s: s.get("phase") == PHASES[1], "second phase")

    stopping = time.monotonic()
    first.stop()
    wait_for(lambda: second.metric(LEADER) == 1.0, "the second replica to lead", 30)
    handover = time.monotonic() - stopping
    print(f"handover after SIGTERM: {handover:.1f}s (lease duration {LEASE['duration']}s)")
    assert handover < LEASE["duration"], "a released Lease is taken without waiting it out"
    flows.wait_state("handover", "Succeeded", timeout=120)
    one_job_per_phase(flows, ["handover"])


def test_a_partitioned_leader_stops_acting_before_the_standby_starts(
    cluster: Cluster,
    flows: Flows,
    namespace: str,
    replica: Callable[..., OperatorProcess],
    tmp_path: Path,
) -> None:
    with PartitionProxy(cluster.api_client().configuration.host) as proxy:
        behind = proxy.kubeconfig(cluster.kubeconfig, tmp_path / "partitioned.kubeconfig")
        leader = replica("partitioned", kubeconfig=behind)
        wait_for(lambda: leader_of(leader), "the proxied replica to lead", 60)
        standby = replica("standby")
        wait_for(lambda: standby.metric(LEADER) == 0.0, "the standby", 60)
        flows.create("partition", slow_spec(1.0))
        flows.wait_for("partition", lambda s: s.get("phase") == PHASES[1], "second phase")

        proxy.cut()
        cut_at = time.monotonic()
        leader_stopped = standby_started = None
        deadline = cut_at + 60
        while standby_started is None and time.monotonic() < deadline:
            now = time.monotonic() - cut_at
            if leader_stopped is None and leader.metric(LEADER) == 0.0:
                leader_stopped = now
            if standby.metric(LEADER) == 1.0:
                standby_started = now
            time.sleep(0.05)
        print(
            f"partition: the leader stopped after {leader_stopped}s, the standby led after "
            f"{standby_started}s (deadline {LEASE['deadline']}s, duration {LEASE['duration']}s)"
        )
        assert leader_stopped is not None
        assert standby_started is not None
        assert leader_stopped < standby_started, "two leaders at once"
        assert leader_stopped <= LEASE["deadline"] + 0.5

        status = flows.wait_state("partition", "Succeeded", timeout=120)
        one_job_per_phase(flows, ["partition"])
        assert status["progressPercentage"] == 100
        assert leader.metric(LEADER) == 0.0, "cut off, it never leads again"
