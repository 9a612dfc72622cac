"""The first sync of a big cluster: an operator starting with N stored flows (finished, as an
operator that ran them leaves them) lists them in pages, and a flow created while it does is
not kept waiting behind them.

Measured: the time until the operator has seen every stored flow (its flow-state metric), the
time from the operator's start and from the new flow's creation to the new flow's first
status write (its first reconcile), and the operator's peak RSS.
Settings: BENCH_FIRST_SYNC_FLOWS (default 50000).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.common import cluster, report_measures
from bench.idle import rss_mb, store_finished_flows, wait_until_seen
from bench.throughput import new_namespace
from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.cluster import VENV_IMAGE
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.waiting import wait_for

FLOWS = int(os.environ.get("BENCH_FIRST_SYNC_FLOWS", "50000"))
NEW_FLOW = "new-during-sync"


@dataclass(frozen=True)
class Result:
    stored_flows: int
    every_flow_seen_seconds: float
    new_flow_first_status_after_start_seconds: float
    new_flow_first_status_after_create_seconds: float
    operator_peak_rss_mb: float


def first_status(custom: client.CustomObjectsApi, namespace: str) -> bool:
    flow: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NEW_FLOW)
    return bool((flow.get("status") or {}).get("state"))


def measure(workdir: Path) -> Result:
    with cluster(workdir) as target:
        api = target.api_client()
        api.configuration.connection_pool_maxsize = 16
        install_crd(api)
        namespace = new_namespace(api, "bench-sync")
        started = time.monotonic()
        store_finished_flows(api, namespace, FLOWS)
        print(f"stored {FLOWS} flows in {time.monotonic() - started:.0f}s", flush=True)
        custom = client.CustomObjectsApi(api)
        operator = OperatorProcess(
            target.kubeconfig,
            namespace,
            f"sqlite+aiosqlite:///{workdir / 'sync.sqlite'}",
            workdir / "operator.log",
            {"COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE},
        ).start()
        assert operator.popen is not None
        try:
            begun = time.monotonic()
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "CollectionFlow",
                "metadata": {"name": NEW_FLOW},
                "spec": {"clientAccountId": "bench", "suspend": True},
            }
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
            created = time.monotonic()
            wait_for(lambda: first_status(custom, namespace), "the new flow's status", 900, 0.2)
            new_seen = time.monotonic()
            wait_until_seen(operator, FLOWS, timeout=1800)
            every = time.monotonic() - begun
            peak = rss_mb(operator.popen.pid, "VmHWM")
        finally:
            operator.stop()
            print(f"operator log: {operator.log_tail(10)}")
        return Result(
            stored_flows=FLOWS,
            every_flow_seen_seconds=round(every, 1),
            new_flow_first_status_after_start_seconds=round(new_seen - begun, 1),
            new_flow_first_status_after_create_seconds=round(new_seen - created, 1),
            operator_peak_rss_mb=round(peak, 1),
        )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cf-bench-sync-") as workdir:
        result = measure(Path(workdir))
    report_measures(
        f"first sync of {result.stored_flows} stored flows", "first_sync", asdict(result)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
