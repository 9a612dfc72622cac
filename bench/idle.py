"""The operator at rest: what N stored, finished flows cost it when nothing happens.

N flows are created and their status written as `Succeeded` (as an operator that finished
them would leave them). The apiserver's request rate is measured for a baseline window without
the operator. An operator then sees the flows for the first time (one list, and no write to a
flow at rest), and the time until the request rate is back near the baseline is reported.
Then the operator restarts, as it would with those flows stored, and once it has seen every
flow the same window is measured again. The operator's share is the difference of the two
request rates (from the apiserver's own `apiserver_request_total`), its CPU from /proc, and its
RSS. Last, SIGTERM and the time to exit.
Settings: BENCH_IDLE_FLOWS (default 10000), BENCH_IDLE_WINDOW seconds (default 120).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from kubernetes import client
from rich.console import Console
from rich.table import Table

from bench.common import RESULTS, cluster
from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.waiting import wait_for

FLOWS = int(os.environ.get("BENCH_IDLE_FLOWS", "10000"))
WINDOW = float(os.environ.get("BENCH_IDLE_WINDOW", "120"))
SETTLE_SECONDS = 20.0
TICKS = os.sysconf("SC_CLK_TCK")
LABEL = re.compile(r'(\w+)="([^"]*)"')
SUCCEEDED = {
    "state": "Succeeded",
    "phase": "synthesis",
    "progressPercentage": 100,
    "completedPhases": 7,
    "totalPhases": 7,
    "message": "7/7 phases done",
}


@dataclass(frozen=True)
class Result:
    flows: int
    window_seconds: float
    first_sight_seconds: float
    startup_seconds: float
    operator_cpu_percent: float
    operator_requests_per_second: float
    baseline_requests_per_second: float
    operator_rss_mb: float
    operator_peak_rss_mb: float
    sigterm_exit_seconds: float


def apiserver_requests(api: client.ApiClient) -> float:
    return sum(apiserver_requests_by_kind(api).values())


def apiserver_requests_by_kind(api: client.ApiClient) -> Counter[str]:
    """The apiserver's requests so far by verb and resource (``PATCH collectionflows/status``)."""
    response = api.call_api("GET", f"{api.configuration.host}/metrics")
    counts: Counter[str] = Counter()
    for line in bytes(response.read()).decode().splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(LABEL.findall(line))
            resource = labels.get("resource", "")
            if labels.get("subresource"):
                resource += "/" + labels["subresource"]
            counts[f"{labels.get('verb', '?')} {resource}"] += round(float(line.rpartition(" ")[2]))
    return counts


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_until_seen(operator: OperatorProcess, flows: int, timeout: float) -> None:
    """Until the operator's flow-state metric counts `flows` Succeeded flows."""
    wait_for(
        lambda: operator.metric('collectionflow_flows{state="Succeeded"}') == flows,
        f"the operator to see {flows} flows",
        timeout=timeout,
        interval=1.0,
    )


def store_finished_flows(api: client.ApiClient, namespace: str, count: int) -> None:
    custom = client.CustomObjectsApi(api)

    def one(index: int) -> None:
        name = f"done-{index:05d}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CollectionFlow",
            "metadata": {"name": name},
            "spec": {"clientAccountId": "bench", "parameters": {}},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": SUCCEEDED}
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))


def rate(api: client.ApiClient, seconds: float) -> float:
    before = apiserver_requests(api)
    time.sleep(seconds)
    return (apiserver_requests(api) - before - 1) / seconds


def measure(workdir: Path) -> Result:
    with cluster(workdir) as target:
        api = target.api_client()
        install_crd(api)
        namespace = f"bench-idle-{os.urandom(3).hex()}"
        client.CoreV1Api(api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
        )
        started = time.monotonic()
        store_finished_flows(api, namespace, FLOWS)
        print(f"stored {FLOWS} Succeeded flows in {time.monotonic() - started:.0f}s")
        baseline = rate(api, min(WINDOW, 60.0))
        database = f"sqlite+aiosqlite:///{workdir / 'idle.sqlite'}"
        first = OperatorProcess(target.kubeconfig, namespace, database, workdir / "first.log")
        begun = time.monotonic()
        first.start()
        try:
            wait_for(
                lambda: rate(api, 10.0) <= baseline + 2,
                "the first sight of every flow to be over",
                timeout=900,
                interval=0.0,
            )
        finally:
            first.stop()
        first_sight = time.monotonic() - begun
        operator = OperatorProcess(target.kubeconfig, namespace, database, workdir / "op.log")
        operator.start()
        assert operator.popen is not None
        pid = operator.popen.pid
        try:
            begun = time.monotonic()
            wait_until_seen(operator, FLOWS, timeout=600)
            startup = time.monotonic() - begun
            time.sleep(SETTLE_SECONDS)
            cpu_before = cpu_seconds(pid)
            during = rate(api, WINDOW)
            cpu = (cpu_seconds(pid) - cpu_before) / WINDOW * 100
            rss, peak = rss_mb(pid), rss_mb(pid, "VmHWM")
            assert operator.metric("collectionflow_reconcilers") == 0
            stop_begun = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            operator.popen.wait(120)
            exit_seconds = time.monotonic() - stop_begun
        finally:
            operator.kill()
            print(f"operator log: {operator.log_tail(15)}")
        return Result(
            flows=FLOWS,
            window_seconds=WINDOW,
            first_sight_seconds=first_sight,
            startup_seconds=startup,
            operator_cpu_percent=cpu,
            operator_requests_per_second=max(0.0, during - baseline),
            baseline_requests_per_second=baseline,
            operator_rss_mb=rss,
            operator_peak_rss_mb=peak,
            sigterm_exit_seconds=exit_seconds,
        )


def report(result: Result) -> None:
    table = Table(title=f"operator at rest with {result.flows} finished flows")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    rows = [
        ("first sight of every flow (once), s", f"{result.first_sight_seconds:.1f}", ""),
        ("restart until every flow seen, s", f"{result.startup_seconds:.1f}", ""),
        ("operator CPU, % of a core", f"{result.operator_cpu_percent:.2f}", "<= 2"),
        (
            "apiserver requests/s from the operator",
            f"{result.operator_requests_per_second:.2f}",
            "<= 2",
        ),
        ("apiserver requests/s without it", f"{result.baseline_requests_per_second:.2f}", ""),
        ("operator RSS, MB", f"{result.operator_rss_mb:.0f}", "<= 400"),
        ("operator peak RSS, MB", f"{result.operator_peak_rss_mb:.0f}", ""),
        ("SIGTERM to exit, s", f"{result.sigterm_exit_seconds:.1f}", "< 10"),
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "idle.json"
    out.write_text(json.dumps(asdict(result), indent=2) + "\n")
    print(f"wrote {out}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cf-bench-idle-") as workdir:
        result = measure(Path(workdir))
    report(result)
    ok = (
        result.operator_cpu_percent <= 2
        and result.operator_requests_per_second <= 2
        and result.operator_rss_mb <= 400
        and result.sigterm_exit_seconds < 10
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
