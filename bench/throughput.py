"""Throughput: N flows at once through the operator, against a bare Job chain on the same cluster.

Each flow runs the seven phases of the `collection` flow type, every phase `command: ["true"]`
(the manual phase made automatic), so the time is the cost of moving from phase to phase. The
baseline is the least a controller can do for the same work: a chain controller in this process
that watches Jobs and creates the next Job of a chain when one completes, seven per chain, each
the very Job the operator would create for that phase (`build_phase_job`). Both run in the same
run, on the same cluster, one after the other.

Each side starts once the other's namespace is deleted. One observer per run watches every Job
and pod; a transition gap is the time from a Job seen Complete to the next Job of its chain
(or flow) seen created. Reported per size: total time, the ratio, gap p50/p99 of both, Job run
p50 and the job controller's part of it (Job seen to its pod seen; pod seen Succeeded to Job
seen Complete), the operator's CPU seconds per transition (/proc), apiserver requests per
transition (the apiserver's `apiserver_request_total`, whole cluster, for both runs and by
kind: the difference is what the operator adds) and the operator's own client requests
(`collectionflow_api_requests`), and its peak RSS. The operator's log goes to bench/results/.
Settings: BENCH_THROUGHPUT_SIZES (default "50,200,500"); BENCH_OPERATOR_TREE, another commit's
checkout (`git worktree add /tmp/old <commit>`): its operator and its CRD run under this bench
and harness, so that two commits are compared on the same load.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.common import RESULTS, cluster
from bench.idle import apiserver_requests_by_kind, cpu_seconds, rss_mb
from bench.machine import busy_share, cpu_sample, cpu_since
from bench.observer import Observer, observe
from bench.throughput_report import Run, per_transition, report
from collectionflow.api.contract import WorkerRequest
from collectionflow.api.models import GROUP, PLURAL, VERSION, CollectionFlowSpec
from collectionflow.domain.plan import FlowPlan, plan_for
from collectionflow.domain.registry import flow_definition
from collectionflow.settings import OperatorSettings
from collectionflow.specs.jobs import PhaseJobRequest, build_phase_job
from collectionflow.specs.rbac import build_worker_rbac
from harness.cluster import VENV_IMAGE
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.waiting import wait_for

SIZES = tuple(int(n) for n in os.environ.get("BENCH_THROUGHPUT_SIZES", "50,200,500").split(","))
OTHER_TREE = os.environ.get("BENCH_OPERATOR_TREE")
PHASES = [phase.name for phase in flow_definition("collection").phases]
STEPS = len(PHASES)
CHAIN_LABEL = "bench.collectionflow.io/chain"
STEP_LABEL = "bench.collectionflow.io/step"
FLOW_UID_LABEL = f"{GROUP}/flow-uid"
PHASE_LABEL = f"{GROUP}/phase"
TIMEOUT = 1800.0
TRIGGERS = ("start", "event", "step", "resync", "conflict", "leader")
CHAIN_WORKERS = 4
WORKER_SERVICE_ACCOUNT = OperatorSettings().worker_service_account


@functools.cache
def flow_plan() -> FlowPlan:
    return plan_for(CollectionFlowSpec.model_validate(flow_spec()))


def chain_job(namespace: str, chain: str, step: int) -> dict[str, Any]:
    """The Job the operator would create for this phase (same pod, same volumes, same
    ServiceAccount), under the chain's name and labels and without an owner."""
    job = build_phase_job(
        PhaseJobRequest(
            worker=WorkerRequest(
                namespace=namespace,
                flow_name=chain,
                flow_uid=chain,
                flow_type="collection",
                phase=PHASES[step],
                attempt=1,
                heartbeat_seconds=10,
            ),
            phase=flow_plan().phase(PHASES[step]),
            image=VENV_IMAGE,
            service_account=WORKER_SERVICE_ACCOUNT,
            image_pull_policy="IfNotPresent",
        )
    )
    labels = {CHAIN_LABEL: chain, STEP_LABEL: str(step)}
    job["metadata"] = {"name": f"{chain}-s{step}", "namespace": namespace, "labels": labels}
    job["spec"]["template"]["metadata"]["labels"] = labels
    return job


def run_chains(api: client.ApiClient, namespace: str, chains: int, observer: Observer) -> float:
    """The bare chain controller: create step 0 of every chain, then the next step as soon as
    the watch shows one complete (a few threads create, so no POST holds up the watch).
    Returns the seconds until the last step of every chain completed."""
    batch = client.BatchV1Api(api)
    started = time.monotonic()
    with ThreadPoolExecutor(CHAIN_WORKERS) as pool:
        for index in range(chains):
            pool.submit(create_step, batch, namespace, f"c{index}", 0)
        for _ in range(chains * STEPS):
            chain, step = observer.completions.get(timeout=TIMEOUT)
            if step + 1 < STEPS:
                pool.submit(create_step, batch, namespace, chain, step + 1)
    return time.monotonic() - started


def create_step(batch: client.BatchV1Api, namespace: str, chain: str, step: int) -> None:
    batch.create_namespaced_job(namespace, chain_job(namespace, chain, step))  # type: ignore[arg-type]


def flow_spec() -> dict[str, Any]:
    phases: list[dict[str, Any]] = [{"name": p, "command": ["true"]} for p in PHASES]
    for phase in phases:
        phase["manual"] = False
    return {"clientAccountId": "bench", "parameters": {}, "phases": phases}


def create_flows(
    custom: client.CustomObjectsApi,
    namespace: str,
    count: int,
    spec: Callable[[], dict[str, Any]] = flow_spec,
    prefix: str = "flow",
) -> None:
    """`count` flows of `spec()`, named <prefix>-0000 on."""
    for index in range(count):
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CollectionFlow",
            "metadata": {"name": f"{prefix}-{index:04d}"},
            "spec": spec(),
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def new_namespace(api: client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{os.urandom(3).hex()}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def delete_namespace(api: client.ApiClient, namespace: str) -> None:
    """Delete the namespace and wait until it is gone: the namespace and garbage collectors'
    work of deleting one side's Jobs and pods must not land on the other side's run."""
    core = client.CoreV1Api(api)
    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except client.ApiException as error:
            return bool(error.status == 404)
        return False

    wait_for(gone, f"namespace {namespace} to be deleted", timeout=TIMEOUT, interval=1.0)


def create_worker_account(api: client.ApiClient, namespace: str) -> None:
    """The phase pods' ServiceAccount and Role, as the operator makes them in its namespaces."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    creators: dict[str, Callable[..., Any]] = {
        "ServiceAccount": core.create_namespaced_service_account,
        "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding,
    }
    for manifest in build_worker_rbac(namespace, WORKER_SERVICE_ACCOUNT):
        creators[manifest["kind"]](namespace, manifest)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: how long, how quickly it moved, what it cost the apiserver."""

    seconds: float
    gaps: list[float]
    job_runs: list[float]
    controller_stages: tuple[list[float], list[float]]
    apiserver_requests: Counter[str]
    cpu: dict[str, float]


@dataclass(frozen=True)
class OperatorCosts:
    cpu_seconds: float
    client_requests: float
    reconciles: dict[str, float]  # by trigger
    peak_rss_mb: float


def measure_chain(api: client.ApiClient, size: int, pids: dict[str, int]) -> Side:
    namespace = new_namespace(api, "bench-chain")
    create_worker_account(api, namespace)

    def key(job: dict[str, Any]) -> tuple[str, int] | None:
        labels = job["metadata"].get("labels") or {}
        return (labels[CHAIN_LABEL], int(labels[STEP_LABEL])) if CHAIN_LABEL in labels else None

    observer = Observer(namespace, key)
    thread = observe(api, observer)
    before, cpu_before = apiserver_requests_by_kind(api), cpu_sample(pids)
    try:
        seconds = run_chains(api, namespace, size, observer)
        cpu = cpu_since(cpu_before, pids)
    finally:
        observer.stop.set()
        thread.join(10)
    requests = apiserver_requests_by_kind(api) - before
    delete_namespace(api, namespace)
    stages = observer.controller_stages()
    return Side(seconds, observer.gaps(), observer.job_runs(), stages, requests, cpu)


def measure_operator(
    api: client.ApiClient, kubeconfig: Path, workdir: Path, size: int, pids: dict[str, int]
) -> tuple[Side, OperatorCosts]:
    namespace = new_namespace(api, "bench-flows")
    order = {name.replace("_", "-"): index for index, name in enumerate(PHASES)}

    def key(job: dict[str, Any]) -> tuple[str, int] | None:
        labels = job["metadata"].get("labels") or {}
        if FLOW_UID_LABEL not in labels:
            return None
        return (labels[FLOW_UID_LABEL], order[labels[PHASE_LABEL]])

    operator = OperatorProcess(
        kubeconfig,
        namespace,
        f"sqlite+aiosqlite:///{workdir / (namespace + '.sqlite')}",
        workdir / f"{namespace}.log",
        {
            "COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE,
            "COLLECTIONFLOW_OPERATOR__RESYNC_SECONDS": "60",
            "COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS": "10",
            **({"PYTHONPATH": str(Path(OTHER_TREE) / "operator")} if OTHER_TREE else {}),
        },
    ).start()
    assert operator.popen is not None
    pid = operator.popen.pid
    custom = client.CustomObjectsApi(api)
    observer = Observer(namespace, key)

    def operator_metric(sample: str) -> float:
        value = operator.metric(sample)
        return -1.0 if value is None else value

    reconciles = "collectionflow_reconciles_total"
    own_requests = "collectionflow_api_requests_total"
    try:
        wait_for(lambda: operator_metric("collectionflow_reconcilers") >= 0, "operator metrics")
        thread = observe(api, observer)
        pids = pids | {"operator": pid}
        machine_before = cpu_sample(pids)
        cpu_before, requests_before = cpu_seconds(pid), apiserver_requests_by_kind(api)
        client_before = operator_metric(own_requests)
        started = time.monotonic()
        create_flows(custom, namespace, size)
        last_phases = 0
        while last_phases < size:  # from the watch; the operator is asked only at the end
            last_phases += observer.completions.get(timeout=TIMEOUT)[1] == STEPS - 1
        wait_for(
            lambda: operator_metric('collectionflow_flows{state="Succeeded"}') >= size,
            f"{size} flows to succeed",
            timeout=TIMEOUT,
            interval=0.2,
        )
        seconds = time.monotonic() - started
        cpu = cpu_since(machine_before, pids)
        costs = OperatorCosts(
            cpu_seconds=cpu_seconds(pid) - cpu_before,
            client_requests=operator_metric(own_requests) - client_before,
            reconciles={
                trigger: max(0.0, operator_metric(f'{reconciles}{{trigger="{trigger}"}}'))
                for trigger in TRIGGERS
            },
            peak_rss_mb=rss_mb(pid, "VmHWM"),
        )
        requests = apiserver_requests_by_kind(api) - requests_before
        observer.stop.set()
        thread.join(10)
    finally:
        operator.stop()
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(workdir / f"{namespace}.log", RESULTS / f"throughput-operator-{size}.log")
    delete_namespace(api, namespace)
    stages = observer.controller_stages()
    return Side(seconds, observer.gaps(), observer.job_runs(), stages, requests, cpu), costs


def measure(workdir: Path) -> list[Run]:
    runs = []
    with cluster(workdir) as target:
        api = target.api_client()
        api.configuration.connection_pool_maxsize = 8
        install_crd(
            api, *([Path(OTHER_TREE) / "crds" / "collectionflow.yaml"] if OTHER_TREE else [])
        )
        pids = target.local.control_plane.pids() if target.local is not None else {}
        for size in SIZES:
            chain = measure_chain(api, size, pids)
            flows, costs = measure_operator(api, target.kubeconfig, workdir, size, pids)
            transitions = size * STEPS
            run = Run(
                flows=size,
                chain_seconds=round(chain.seconds, 2),
                operator_seconds=round(flows.seconds, 2),
                chain_gap_p50=round(percentile(chain.gaps, 0.5), 3),
                chain_gap_p99=round(percentile(chain.gaps, 0.99), 3),
                operator_gap_p50=round(percentile(flows.gaps, 0.5), 3),
                operator_gap_p99=round(percentile(flows.gaps, 0.99), 3),
                chain_job_run_p50=round(percentile(chain.job_runs, 0.5), 2),
                operator_job_run_p50=round(percentile(flows.job_runs, 0.5), 2),
                job_controller_p50={
                    "pod created": [
                        round(percentile(side.controller_stages[0], 0.5), 2)
                        for side in (chain, flows)
                    ],
                    "Job completed": [
                        round(percentile(side.controller_stages[1], 0.5), 2)
                        for side in (chain, flows)
                    ],
                },
                transitions=transitions,
                operator_cpu_per_transition_ms=round(costs.cpu_seconds / transitions * 1000, 1),
                chain_apiserver_requests_per_transition=round(
                    chain.apiserver_requests.total() / transitions, 2
                ),
                operator_apiserver_requests_per_transition=round(
                    flows.apiserver_requests.total() / transitions, 2
                ),
                operator_client_requests_per_transition=round(
                    costs.client_requests / transitions, 2
                ),
                operator_reconciles_per_transition=round(
                    sum(costs.reconciles.values()) / transitions, 2
                ),
                operator_reconciles_by_trigger={
                    trigger: round(count / transitions, 2)
                    for trigger, count in costs.reconciles.items()
                },
                operator_peak_rss_mb=round(costs.peak_rss_mb, 1),
                requests_by_kind=per_transition(
                    chain.apiserver_requests, flows.apiserver_requests, transitions
                ),
                cpu_ms_by_process=per_transition(chain.cpu, flows.cpu, transitions / 1000),
                machine_busy_percent=[
                    round(busy_share(side.cpu, side.seconds), 1) for side in (chain, flows)
                ],
            )
            print(json.dumps(asdict(run) | {"ratio": round(run.ratio, 3)}), flush=True)
            runs.append(run)
    return runs


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cf-bench-throughput-") as workdir:
        runs = measure(Path(workdir))
    report(runs, STEPS)
    print(f"took {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
