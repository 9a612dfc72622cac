"""What one request of each kind the operator adds costs the apiserver and etcd, in CPU ms.

The throughput bench shows the apiserver spending about twice the CPU per transition while the
operator runs, for a quarter more requests. This measures the kinds the operator adds one at a
time, on an otherwise idle cluster: BENCH_REQUESTS (default 500) requests of one kind from 4
threads, with a watch of flows open (as the operator keeps one), and kube-apiserver's and
etcd's CPU from /proc over them. For scale, the same for a merge patch of a ConfigMap, a
built-in object of about the same size as a flow.

Kinds: a flow's status merge patch carrying its resourceVersion (a status as a running flow's
after four phases), an Event on a flow, a GET of a flow, and the ConfigMap patch.
Writes bench/results/request_costs.json. Needs a local cluster (the process ids).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from rich.console import Console
from rich.table import Table

from bench.common import RESULTS, cluster
from bench.idle import cpu_seconds
from collectionflow.api.models import (
    GROUP,
    PLURAL,
    VERSION,
    CollectionFlowStatus,
    Condition,
    ConditionType,
    FlowState,
    PhaseHistoryEntry,
    PhaseRunState,
)
from collectionflow.domain.registry import COLLECTION
from harness.crd import install_crd

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "500"))
THREADS = 4


def running_status(step: int) -> dict[str, Any]:
    """A status like a running flow's after four phases (`step` varies it per write)."""
    now = dt.datetime.now(dt.UTC)
    names = COLLECTION.phase_names
    history = [
        PhaseHistoryEntry(
            name=name,
            state=PhaseRunState.SUCCEEDED,
            attempt=1,
            job_name=f"flow-{name}-1",
            started_at=now,
            finished_at=now,
            message=f"phase {name} attempt 1 succeeded",
        )
        for name in names[:4]
    ]
    status = CollectionFlowStatus(
        state=FlowState.RUNNING,
        phase=names[4],
        next_phase=names[5],
        progress_percentage=57,
        progress="4/7",
        attempt=1,
        current_job=f"flow-{names[4]}-1",
        started_at=now,
        last_progress_time=now,
        message=f"running phase {names[4]} ({step})",
        observed_generation=1,
        phase_history=history,
        conditions=[
            Condition(
                type=kind,
                status="True" if kind is ConditionType.RECONCILING else "False",
                reason="PhaseRunning",
                message=f"running phase {names[4]}",
                last_transition_time=now,
                observed_generation=1,
            )
            for kind in ConditionType
        ],
    )
    dumped: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def measure_kind(
    pids: dict[str, int], send: Callable[[int], None]
) -> tuple[dict[str, float], float]:
    """CPU ms per request of each process, and requests per second, over REQUESTS sends."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(send, range(REQUESTS)))
    seconds = time.monotonic() - started
    return (
        {
            name: round((cpu_seconds(pid) - before[name]) / REQUESTS * 1000, 2)
            for name, pid in pids.items()
        },
        round(REQUESTS / seconds, 1),
    )


def measure(workdir: Path) -> dict[str, dict[str, float]]:
    with cluster(workdir) as target:
        if target.local is None:
            raise SystemExit("request_costs needs a local cluster: unset KUBECONFIG")
        all_pids = target.local.control_plane.pids()
        pids = {name: all_pids[name] for name in ("kube-apiserver", "etcd")}
        api = target.api_client()
        api.configuration.connection_pool_maxsize = THREADS * 2
        install_crd(api)
        namespace = f"bench-costs-{os.urandom(3).hex()}"
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        stop = threading.Event()
        threading.Thread(target=_watch_flows, args=(api, namespace, stop), daemon=True).start()
        flows = [f"flow-{index}" for index in range(THREADS)]
        versions: dict[str, str] = {}
        uids: dict[str, str] = {}
        for name in flows:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "CollectionFlow",
                "metadata": {"name": name},
                "spec": {"clientAccountId": "bench", "parameters": {}},
            }
            created: Any = custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, body
            )
            versions[name] = created["metadata"]["resourceVersion"]
            uids[name] = created["metadata"]["uid"]
            core.create_namespaced_config_map(
                namespace,
                client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name=name),
                    data={"status": json.dumps(running_status(0))},
                ),
            )
        locks = {name: threading.Lock() for name in flows}

        def patch_status(step: int) -> None:
            name = flows[step % THREADS]
            with locks[name]:  # one writer per flow, each at the version it wrote last
                patch = {
                    "metadata": {"resourceVersion": versions[name]},
                    "status": running_status(step),
                }
                written: Any = custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, PLURAL, name, patch
                )
                versions[name] = written["metadata"]["resourceVersion"]

        def post_event(step: int) -> None:
            name = flows[step % THREADS]
            now = dt.datetime.now(dt.UTC)
            core.create_namespaced_event(
                namespace,
                client.CoreV1Event(
                    metadata=client.V1ObjectMeta(generate_name=f"{name}."),
                    involved_object=client.V1ObjectReference(
                        api_version=f"{GROUP}/{VERSION}",
                        kind="CollectionFlow",
                        name=name,
                        namespace=namespace,
                        uid=uids[name],
                    ),
                    reason="PhaseStarted",
                    message=f"running phase platform_detection (attempt {step})",
                    type="Normal",
                    first_timestamp=now,
                    last_timestamp=now,
                    count=1,
                    source=client.V1EventSource(component="collectionflow-operator"),
                ),
            )

        def get_flow(step: int) -> None:
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, flows[step % THREADS]
            )

        def patch_config_map(step: int) -> None:
            core.patch_namespaced_config_map(
                flows[step % THREADS],
                namespace,
                {"data": {"status": json.dumps(running_status(step))}},
            )

        results = {}
        for kind, send in (
            ("PATCH collectionflows/status", patch_status),
            ("POST events", post_event),
            ("GET collectionflows", get_flow),
            ("PATCH configmaps (for scale)", patch_config_map),
        ):
            cpu, rate = measure_kind(pids, send)
            results[kind] = {**cpu, "requests/s": rate}
        stop.set()
        return results


def _watch_flows(api: client.ApiClient, namespace: str, stop: threading.Event) -> None:
    custom = client.CustomObjectsApi(api)
    while not stop.is_set():
        try:
            for _ in watch.Watch().stream(
                custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                timeout_seconds=30,
            ):
                if stop.is_set():
                    return
        except Exception:  # the cluster is going away, or the watch broke: watch again
            time.sleep(0.5)


def report(results: dict[str, dict[str, float]]) -> None:
    table = Table(title=f"apiserver and etcd CPU per request ({REQUESTS} of each, 4 threads)")
    for column in ("request", "kube-apiserver ms", "etcd ms", "requests/s"):
        table.add_column(column, justify="right")
    for kind, row in results.items():
        table.add_row(
            kind, f"{row['kube-apiserver']:.2f}", f"{row['etcd']:.2f}", f"{row['requests/s']:.0f}"
        )
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "request_costs.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cf-bench-costs-") as workdir:
        report(measure(Path(workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
