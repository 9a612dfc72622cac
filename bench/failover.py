"""Failover: how long flows stand still when the leader replica dies.

Two replicas with leader election (the Kubernetes default timings: lease 15 s, renew deadline
10 s, retry 2 s) share one PostgreSQL. N flows run seven phases of `sleep 2`. The leader is
SIGKILLed BENCH_FAILOVER_KILLS times (default 5), each time once the flows are moving; the
killed replica comes back as the new standby. For each kill:

- to first transition: from the kill to the first phase the new leader starts;
- to all moving: from the kill until every flow still in flight has started a phase.

Reported as median and max against the lease duration, which bounds what a crash can cost
(the standby must wait for the Lease to run out); a graceful stop (SIGTERM) releases the Lease
and costs about one retry period instead (the HA e2e tests show it).
Settings: BENCH_FAILOVER_FLOWS (default 10), BENCH_FAILOVER_KILLS (default 5).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.common import cluster, report_measures
from bench.throughput import PHASES, create_flows, new_namespace
from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.cluster import VENV_IMAGE
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.postgres import PostgresServer
from harness.waiting import wait_for

FLOWS = int(os.environ.get("BENCH_FAILOVER_FLOWS", "10"))
KILLS = int(os.environ.get("BENCH_FAILOVER_KILLS", "5"))
LEASE_SECONDS = 15
PHASE_SECONDS = 2


@dataclass(frozen=True)
class Result:
    flows: int
    kills: int
    lease_duration_seconds: int
    to_first_transition_seconds: list[float]
    to_all_moving_seconds: list[float]
    first_transition_median: float
    first_transition_max: float
    all_moving_median: float
    all_moving_max: float
    phases_rerun: int


def spec() -> dict[str, Any]:
    return {
        "clientAccountId": "bench",
        "parameters": {},
        "phases": [
            {"name": p, "command": ["sleep", str(PHASE_SECONDS)], "manual": False} for p in PHASES
        ],
    }


def started_phases(custom: client.CustomObjectsApi, namespace: str) -> dict[str, int]:
    """Per flow in flight, how many phase attempts it has started; finished flows left out."""
    listing: Any = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return {
        flow["metadata"]["name"]: len((flow.get("status") or {}).get("phaseHistory") or [])
        for flow in listing["items"]
        if (flow.get("status") or {}).get("state") != "Succeeded"
    }


def replica(kubeconfig: Path, namespace: str, url: str, log: Path, name: str) -> OperatorProcess:
    return OperatorProcess(
        kubeconfig,
        namespace,
        url,
        log,
        {
            "COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE,
            "COLLECTIONFLOW_LEADER__ENABLED": "true",
            "COLLECTIONFLOW_LEADER__LEASE_NAMESPACE": namespace,
            "COLLECTIONFLOW_LEADER__IDENTITY": name,
        },
    ).start()


def leader(replicas: list[OperatorProcess]) -> OperatorProcess | None:
    leading = [r for r in replicas if r.running and r.metric("collectionflow_leader") == 1.0]
    return leading[0] if len(leading) == 1 else None


def one_kill(
    replicas: list[OperatorProcess], custom: client.CustomObjectsApi, namespace: str
) -> tuple[float, float]:
    """Kill the leader with flows moving; seconds to the first new phase and to all moving."""
    current = wait_for(lambda: leader(replicas), "a leader", 120)
    current.kill()
    killed = time.monotonic()
    # Writes the leader sent just before it died may still land: count from after them.
    time.sleep(1.0)
    before = started_phases(custom, namespace)
    first = all_moving = None
    while all_moving is None:
        now = started_phases(custom, namespace)
        moved = {name for name, count in now.items() if count > before.get(name, 0)}
        finished = set(before) - set(now)
        if first is None and (moved or finished):
            first = time.monotonic() - killed
        if set(before) <= moved | finished:
            all_moving = time.monotonic() - killed
        assert time.monotonic() - killed < 120, "flows did not move again within 120 s"
        time.sleep(0.1)
    assert first is not None
    replicas.remove(current)
    replicas.append(replace(current, popen=None).start())  # back, as the new standby
    return first, all_moving


def measure(workdir: Path) -> Result:
    firsts: list[float] = []
    alls: list[float] = []
    with cluster(workdir) as target, PostgresServer() as postgres:
        api = target.api_client()
        install_crd(api)
        custom = client.CustomObjectsApi(api)
        namespace = new_namespace(api, "bench-failover")
        url = postgres.create_database(namespace.replace("-", "_"))
        replicas = [
            replica(target.kubeconfig, namespace, url, workdir / f"{name}.log", name)
            for name in ("a", "b")
        ]
        try:
            for kill in range(KILLS):
                create_flows(custom, namespace, FLOWS, spec, prefix=f"flow-{kill}")
                wait_for(
                    lambda: min(started_phases(custom, namespace).values(), default=0) >= 2,
                    "every new flow in its second phase",
                    180,
                )
                first, all_moving = one_kill(replicas, custom, namespace)
                firsts.append(round(first, 1))
                alls.append(round(all_moving, 1))
            wait_for(lambda: not started_phases(custom, namespace), "every flow Succeeded", 600)
            jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
            rerun = len([j for j in jobs if j.metadata and not str(j.metadata.name).endswith("-1")])
        finally:
            for each in replicas:
                each.stop()
        client.CoreV1Api(api).delete_namespace(namespace)
    return Result(
        flows=FLOWS,
        kills=KILLS,
        lease_duration_seconds=LEASE_SECONDS,
        to_first_transition_seconds=firsts,
        to_all_moving_seconds=alls,
        first_transition_median=round(statistics.median(firsts), 1),
        first_transition_max=max(firsts),
        all_moving_median=round(statistics.median(alls), 1),
        all_moving_max=max(alls),
        phases_rerun=rerun,
    )


def report(result: Result) -> None:
    report_measures(
        f"failover: {result.kills} leader kills, {result.flows} flows each",
        "failover",
        asdict(result),
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cf-bench-failover-") as workdir:
        result = measure(Path(workdir))
    report(result)
    bounded = result.all_moving_max <= LEASE_SECONDS + 2 * PHASE_SECONDS + 5
    return 0 if bounded and result.phases_rerun == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
