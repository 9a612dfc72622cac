"""Flows that wait: what N flows waiting for input and M flows in an hour-long phase cost the
operator when nothing happens.

The N flows are stored with the status an operator leaves on a flow that reached its manual
phase (made by the state machine itself, at the time of the run); the M flows run a first
phase of `sleep 3600`, as Jobs on the cluster; B more run the built-in worker slowed to an
hour, so that its heartbeat Lease is renewed as in production (default stall timeout and
heartbeat settings). The operator starts, sees every flow once (its database rows, a status
patch) and settles; then, over a window of W seconds, the apiserver's request rate, the
operator's CPU (/proc) and RSS, and every renewal of the B workers' Leases (a watch) are
measured. The operator's share of the requests is that rate less the rate over a window of
the same length with the operator paused (SIGSTOP), taken right after.

Each size runs on a cluster of its own. Settings: BENCH_ACTIVE_SIZES ("2000+100,10000+500"),
BENCH_ACTIVE_WINDOW seconds (120).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from bench.common import RESULTS, cluster, report_measures
from bench.idle import apiserver_requests_by_kind, cpu_seconds, rss_mb
from bench.throughput import new_namespace
from collectionflow.api.models import (
    GROUP,
    PLURAL,
    VERSION,
    CollectionFlowSpec,
    CollectionFlowStatus,
    FlowState,
)
from collectionflow.api.names import LABEL_MANAGED_BY, MANAGED_BY
from collectionflow.domain.decision import FlowView, JobObservation, JobState
from collectionflow.domain.machine import decide
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from harness.cluster import VENV_IMAGE
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.waiting import wait_for

SIZES = [
    tuple(int(n) for n in size.split("+"))
    for size in os.environ.get("BENCH_ACTIVE_SIZES", "2000+100,10000+500").split(",")
]
WINDOW = float(os.environ.get("BENCH_ACTIVE_WINDOW", "120"))
BEATING = 5
SETTLE_SECONDS = 20.0
TEMPLATE_NAME = "wait-template"
FIRST_PHASE = "initialization"
STORE_THREADS = 16
LONG_PHASE = {"name": FIRST_PHASE, "timeoutSeconds": 7200}  # outlasts the hour


def waiting_status() -> str:
    """The status (JSON, named for TEMPLATE_NAME) of a flow that reached its manual phase now,
    as the state machine leaves it."""
    now = dt.datetime.now(dt.UTC)
    flow = FlowView(
        namespace="bench",
        name=TEMPLATE_NAME,
        uid="00000000-0000-4000-8000-000000000000",
        generation=1,
        spec=CollectionFlowSpec.model_validate({"clientAccountId": "bench"}),
        status=CollectionFlowStatus(),
    )
    decision = decide(flow, None, now)
    while decision.status is not None:
        flow = dataclasses.replace(flow, status=decision.status)
        if flow.status.state is not FlowState.RUNNING:
            break
        assert flow.status.current_job is not None
        done = PhaseResult(state=PhaseOutcome.SUCCEEDED, next_phase=None)
        job = JobObservation(flow.status.current_job, JobState.SUCCEEDED, result=done, exit_code=0)
        decision = decide(flow, job, now)
    assert flow.status.state is FlowState.WAITING_FOR_INPUT, flow.status
    return json.dumps(flow.status.to_api())


def store_waiting_flows(api: client.ApiClient, namespace: str, count: int) -> None:
    custom = client.CustomObjectsApi(api)
    template = waiting_status()

    def one(index: int) -> None:
        name = f"wait-{index:05d}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CollectionFlow",
            "metadata": {"name": name},
            "spec": {"clientAccountId": "bench"},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        status = json.loads(template.replace(TEMPLATE_NAME, name))
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}
        )

    with ThreadPoolExecutor(STORE_THREADS) as pool:
        list(pool.map(one, range(count)))


def create_long_flows(api: client.ApiClient, namespace: str, count: int, beating: int) -> None:
    """`count` flows whose first phase is `sleep 3600` (a Job of its own command, which need
    not beat), and `beating` whose built-in worker works an hour, heart-beating."""
    custom = client.CustomObjectsApi(api)

    def one(index: int) -> None:
        if index < count:
            name = f"long-{index:04d}"
            spec: dict[str, Any] = {
                "clientAccountId": "bench",
                "phases": [LONG_PHASE | {"command": ["sleep", "3600"]}],
            }
        else:
            name = f"beat-{index - count:02d}"
            spec = {
                "clientAccountId": "bench",
                "parameters": {"simulate": {FIRST_PHASE: {"sleepSeconds": 3600}}},
                "phases": [LONG_PHASE],
            }
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CollectionFlow",
            "metadata": {"name": name},
            "spec": spec,
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    with ThreadPoolExecutor(STORE_THREADS) as pool:
        list(pool.map(one, range(count + beating)))


class LeaseRenewals:
    """Counts the writes to the heartbeat Leases of the beating workers, from a watch."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.writes: Counter[str] = Counter()
        self.counting = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        leases = client.CoordinationV1Api(self.api)
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
        while not self.stop.is_set():
            stream = watch.Watch().stream(
                leases.list_namespaced_lease,
                self.namespace,
                label_selector=selector,
                timeout_seconds=10,
            )
            for event in stream:
                name = event["object"].metadata.name
                if self.counting.is_set() and event["type"] == "MODIFIED" and "beat-" in name:
                    self.writes[name] += 1


@dataclass(frozen=True)
class Result:
    waiting: int
    long_phases: int
    window_seconds: float
    settle_seconds: float
    operator_requests_per_second: float
    running_requests_per_second: float
    paused_requests_per_second: float
    operator_cpu_percent: float
    operator_rss_mb: float
    operator_peak_rss_mb: float
    heartbeat_writes_per_phase_per_minute: float
    reconciles_in_window: float
    operator_requests_by_kind: dict[str, float]


def rate(api: client.ApiClient, seconds: float) -> Counter[str]:
    """The apiserver's requests per second over the next `seconds`, by verb and resource
    (less this bench's own read of the metrics)."""
    before = apiserver_requests_by_kind(api)
    time.sleep(seconds)
    after = apiserver_requests_by_kind(api)
    after["GET "] -= 1
    return Counter({kind: n / seconds for kind, n in (after - before).items()})


def metric(operator: OperatorProcess, sample: str) -> float:
    value = operator.metric(sample)
    return -1.0 if value is None else value


def settled(operator: OperatorProcess, waiting: int, running: int) -> bool:
    """Every flow seen, and every waiting one done with (its reconciler gone): only the
    running flows keep one."""
    states = (
        metric(operator, 'collectionflow_flows{state="WaitingForInput"}'),
        metric(operator, 'collectionflow_flows{state="Running"}'),
        metric(operator, "collectionflow_reconcilers"),
    )
    return states == (waiting, running, running)


def reconciles(operator: OperatorProcess) -> float:
    return sum(
        max(0.0, metric(operator, f'collectionflow_reconciles_total{{trigger="{trigger}"}}'))
        for trigger in ("start", "event", "step", "resync", "conflict", "leader")
    )


def measure(workdir: Path, waiting: int, long_phases: int) -> Result:
    with cluster(workdir) as target:
        api = target.api_client()
        api.configuration.connection_pool_maxsize = STORE_THREADS
        install_crd(api)
        namespace = new_namespace(api, "bench-active")
        started = time.monotonic()
        store_waiting_flows(api, namespace, waiting)
        print(f"stored {waiting} waiting flows in {time.monotonic() - started:.0f}s", flush=True)
        database = f"sqlite+aiosqlite:///{workdir / 'active.sqlite'}"
        operator = OperatorProcess(
            target.kubeconfig,
            namespace,
            database,
            workdir / "operator.log",
            {
                "COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE,
                "COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS": "60",
                "COLLECTIONFLOW_OPERATOR__RESYNC_SECONDS": "60",
            },
        ).start()
        assert operator.popen is not None
        pid = operator.popen.pid
        renewals = LeaseRenewals(api, namespace)
        renewals.thread.start()
        try:
            begun = time.monotonic()
            create_long_flows(api, namespace, long_phases, BEATING)
            wait_for(
                lambda: settled(operator, waiting, long_phases + BEATING),
                "every flow seen and started",
                timeout=1800,
                interval=2.0,
            )
            last = reconciles(operator)
            while True:  # until the operator is done with what it saw first
                time.sleep(10)
                now = reconciles(operator)
                if now == last:
                    break
                last = now
            settle = time.monotonic() - begun
            print(f"settled in {settle:.0f}s", flush=True)
            time.sleep(SETTLE_SECONDS)
            cpu_before, reconciles_before = cpu_seconds(pid), reconciles(operator)
            renewals.counting.set()
            counting_since = time.monotonic()
            during = rate(api, WINDOW)
            counted_minutes = (time.monotonic() - counting_since) / 60
            renewals.counting.clear()
            cpu = (cpu_seconds(pid) - cpu_before) / WINDOW * 100
            in_window = reconciles(operator) - reconciles_before
            rss, peak = rss_mb(pid), rss_mb(pid, "VmHWM")
            os.kill(pid, signal.SIGSTOP)
            try:
                paused = rate(api, WINDOW)
            finally:
                os.kill(pid, signal.SIGCONT)
        finally:
            renewals.stop.set()
            operator.stop()
            RESULTS.mkdir(parents=True, exist_ok=True)
            log = workdir / "operator.log"
            if log.exists():
                (RESULTS / f"active-operator-{waiting}.log").write_bytes(log.read_bytes())
        writes = sum(renewals.writes.values()) / BEATING / counted_minutes
        return Result(
            waiting=waiting,
            long_phases=long_phases,
            window_seconds=WINDOW,
            settle_seconds=round(settle, 1),
            operator_requests_per_second=round(max(0.0, during.total() - paused.total()), 2),
            running_requests_per_second=round(during.total(), 2),
            paused_requests_per_second=round(paused.total(), 2),
            operator_cpu_percent=round(cpu, 2),
            operator_rss_mb=round(rss, 1),
            operator_peak_rss_mb=round(peak, 1),
            heartbeat_writes_per_phase_per_minute=round(writes, 2),
            reconciles_in_window=in_window,
            operator_requests_by_kind={
                kind: round(during[kind] - paused[kind], 2)
                for kind in sorted(set(during) | set(paused))
                if abs(during[kind] - paused[kind]) >= 0.05
            },
        )


def main() -> int:
    results = []
    for waiting, long_phases in SIZES:
        with tempfile.TemporaryDirectory(prefix="cf-bench-active-") as workdir:
            result = measure(Path(workdir), waiting, long_phases)
        results.append(result)
        report_measures(
            f"{waiting} flows waiting for input + {long_phases} in an hour-long phase",
            f"active-{waiting}",
            asdict(result)
            | {
                "targets": "requests/s <= 2, CPU <= 2 % of a core, RSS <= 400 MB "
                "(at 10000 + 500); heartbeat writes <= 1 a minute per phase"
            },
        )
    ok = all(
        r.heartbeat_writes_per_phase_per_minute <= 1
        and r.operator_requests_per_second <= 2
        and r.operator_cpu_percent <= 2
        and r.operator_rss_mb <= 400
        for r in results
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
