"""Job throughput of the local control plane: 200 Jobs until every one has its pod.

kube-controller-manager's client defaults (20 QPS, burst 30) throttle the job controller, which
would make it, not the operator, the bottleneck of our benchmarks. The harness raises them;
this benchmark runs the same load against a control plane with the defaults and one with the
harness's settings, in one run, and reports the ratio.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from harness.cluster import VENV_IMAGE  # noqa: E402
from harness.controlplane import (  # noqa: E402
    CONTROLLER_BURST,
    CONTROLLER_QPS,
    LocalControlPlane,
    provision_binaries,
)

JOBS = 200
RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class Run:
    qps: int
    burst: int
    jobs: int
    create_seconds: float
    all_pods_seconds: float


def job(name: str) -> Any:
    return {
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": VENV_IMAGE}],
                }
            }
        },
    }


def measure(qps: int, burst: int, workdir: Path) -> Run:
    plane = LocalControlPlane(workdir, provision_binaries(), qps, burst)
    with plane:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        api.configuration.connection_pool_maxsize = 8
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        started = time.monotonic()
        for index in range(JOBS):
            batch.create_namespaced_job("default", job(f"load-{index}"))
        created = time.monotonic() - started
        while True:
            pods: Any = core.list_namespaced_pod("default", label_selector="job-name")
            if len({p.metadata.labels["job-name"] for p in pods.items}) >= JOBS:
                break
            if time.monotonic() - started > 300:
                raise RuntimeError(f"qps {qps}: not all pods after 300s")
            time.sleep(0.2)
        return Run(qps, burst, JOBS, round(created, 2), round(time.monotonic() - started, 2))


def main() -> int:
    runs = []
    with tempfile.TemporaryDirectory(prefix="cf-bench-jobs-") as workdir:
        for qps, burst in ((20, 30), (CONTROLLER_QPS, CONTROLLER_BURST)):
            runs.append(measure(qps, burst, Path(workdir) / f"qps-{qps}"))
    table = Table(title=f"{JOBS} Jobs until every one has a pod")
    for column in ("controller QPS/burst", "create s", "all pods s"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(
            f"{run.qps}/{run.burst}", f"{run.create_seconds:.1f}", f"{run.all_pods_seconds:.1f}"
        )
    Console().print(table)
    speedup = runs[0].all_pods_seconds / runs[1].all_pods_seconds
    print(f"speed-up of the harness settings over the defaults: {speedup:.1f}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "job_pods.json"
    out.write_text(json.dumps({"runs": [asdict(r) for r in runs], "speedup": speedup}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
