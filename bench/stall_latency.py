"""Stall detection latency: from a worker's last heartbeat to the operator's FlowStalled.

For each stall-check interval (one operator each) and stall timeout (one flow each), a phase
hangs: it stops renewing its heartbeat Lease but keeps running. Latency is measured from the
Lease's last `renewTime` (the moment of the stall) to the `stall_detected` journal row that the
operator writes together with the FlowStalled Event, and reported against the bound
`stallTimeoutSeconds + interval`. The ratio latency / bound is what to compare between runs:
it is measured within one run, so machine speed cancels out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import REPO, RESULTS, cluster
from collectionflow.db.models import FailureJournal
from harness.crd import install_crd
from harness.flows import Flows
from harness.operator_process import OperatorProcess

INTERVALS = (2.0, 5.0)
STALL_TIMEOUTS = (10, 20)


@dataclass(frozen=True)
class Sample:
    interval_seconds: float
    stall_timeout_seconds: int
    latency_seconds: float
    bound_seconds: float

    @property
    def ratio(self) -> float:
        return self.latency_seconds / self.bound_seconds


def hung_spec(stall_timeout: int) -> dict[str, Any]:
    path = REPO / "crds" / "samples" / "collectionflow-complete-data.yaml"
    spec: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
    spec["stallTimeoutSeconds"] = stall_timeout
    spec["parameters"]["simulate"] = {
        "platform_detection": {"sleepSeconds": 1, "hangSeconds": 600, "hangAttempts": 1}
    }
    return spec


def detected_at(db_url: str, uid: str) -> dt.datetime | None:
    async def query() -> dt.datetime | None:
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(FailureJournal.created_at).where(
                            FailureJournal.k8s_uid == uid,
                            FailureJournal.operation == "stall_detected",
                        )
                    )
                ).first()
                if row is None:
                    return None
                moment: dt.datetime = row[0]
                return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        finally:
            await engine.dispose()

    return asyncio.run(query())


Run = tuple[float, OperatorProcess, Flows, str, dict[int, str]]


def watch_heartbeats(coordination: Any, runs: list[Run]) -> dict[tuple[str, int], dt.datetime]:
    """The last renewTime of each hung attempt's Lease, polled until every flow recovered.

    The Lease goes with the stale attempt's Job when the recovery deletes it, so its last
    value has to be seen while it still exists.
    """
    last: dict[tuple[str, int], dt.datetime] = {}
    pending = {
        (flows.namespace, timeout): flows for _, _, flows, _, uids in runs for timeout in uids
    }
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        for (namespace, timeout), flows in list(pending.items()):
            try:
                lease: Any = coordination.read_namespaced_lease(
                    f"hung-{timeout}-platform-detection-1", namespace
                )
                if lease.spec.renew_time is not None:
                    last[(namespace, timeout)] = lease.spec.renew_time
            except client.exceptions.ApiException as error:
                if error.status != 404:
                    raise
            if (flows.get(f"hung-{timeout}").get("status") or {}).get("recoveries", 0) >= 1:
                del pending[(namespace, timeout)]
        time.sleep(0.2)
    if pending:
        raise RuntimeError(f"not recovered within 300s: {sorted(pending)}")
    return last


def measure(workdir: Path) -> list[Sample]:
    samples: list[Sample] = []
    with cluster(workdir) as target:
        api = target.api_client()
        install_crd(api)
        core = client.CoreV1Api(api)
        coordination = client.CoordinationV1Api(api)
        runs: list[Run] = []
        for interval in INTERVALS:
            namespace = f"bench-stall-{int(interval)}-{os.urandom(3).hex()}"
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
            db_url = f"sqlite+aiosqlite:///{workdir / (namespace + '.sqlite')}"
            operator = OperatorProcess(
                target.kubeconfig,
                namespace,
                db_url,
                workdir / f"{namespace}.log",
                {
                    "COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS": str(interval),
                    "COLLECTIONFLOW_OPERATOR__RECOVERY_BACKOFF_SECONDS": "0",
                },
            ).start()
            flows = Flows(api, namespace)
            uids = {
                timeout: flows.create(f"hung-{timeout}", hung_spec(timeout))["metadata"]["uid"]
                for timeout in STALL_TIMEOUTS
            }
            runs.append((interval, operator, flows, db_url, uids))
        try:
            last_heartbeat = watch_heartbeats(coordination, runs)
            for interval, _, flows, db_url, uids in runs:
                for timeout, uid in uids.items():
                    detected = detected_at(db_url, uid)
                    if detected is None:
                        raise RuntimeError(f"hung-{timeout}: no stall_detected journal row")
                    stalled_at = last_heartbeat[(flows.namespace, timeout)]
                    samples.append(
                        Sample(
                            interval_seconds=interval,
                            stall_timeout_seconds=timeout,
                            latency_seconds=(detected - stalled_at).total_seconds(),
                            bound_seconds=timeout + interval,
                        )
                    )
        finally:
            for _, operator, flows, _, _ in runs:
                operator.stop()
                core.delete_namespace(flows.namespace)
    return samples


def report(samples: list[Sample]) -> None:
    table = Table(title="stall detection latency (last heartbeat -> FlowStalled)")
    for column in ("interval s", "stall timeout s", "latency s", "bound s", "latency/bound"):
        table.add_column(column, justify="right")
    for s in samples:
        table.add_row(
            f"{s.interval_seconds:g}",
            str(s.stall_timeout_seconds),
            f"{s.latency_seconds:.2f}",
            f"{s.bound_seconds:g}",
            f"{s.ratio:.3f}",
        )
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "stall_latency.json"
    out.write_text(json.dumps([asdict(s) | {"ratio": s.ratio} for s in samples], indent=2) + "\n")
    print(f"wrote {out}")


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cf-bench-") as workdir:
        samples = measure(Path(workdir))
    report(samples)
    print(f"took {time.monotonic() - started:.0f}s")
    worst = max(s.ratio for s in samples)
    return 0 if worst <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
