"""Catching up after a database outage: N running flows, PostgreSQL stopped for a while.

Each flow runs seven phases of `sleep 2`. Once every flow is in its second phase, PostgreSQL is
halted for BENCH_OUTAGE_SECONDS (default 60) and started again. Reported: the time from the
database's return until every flow is `Succeeded`, against the time the phases left at that
moment need on their own (phases left times the phase time of a run without an outage, measured
first in the same run); the `FlowStalled` Events raised (a known outage should raise none),
phases run more than once, and duplicate phase-run rows.
Settings: BENCH_OUTAGE_FLOWS (default 20), BENCH_OUTAGE_SECONDS (default 60).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import cluster, report_measures
from bench.throughput import PHASES, create_flows, new_namespace
from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.db.models import PhaseRun
from harness.cluster import VENV_IMAGE
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.postgres import PostgresServer
from harness.waiting import wait_for

FLOWS = int(os.environ.get("BENCH_OUTAGE_FLOWS", "20"))
OUTAGE = float(os.environ.get("BENCH_OUTAGE_SECONDS", "60"))
PHASE_SECONDS = 2


@dataclass(frozen=True)
class Result:
    flows: int
    outage_seconds: float
    phase_seconds_without_outage: float
    phases_left_at_return: int
    catch_up_seconds: float
    needed_seconds: float
    flow_stalled_events: int
    phases_rerun: int
    duplicate_rows: int


def spec() -> dict[str, Any]:
    return {
        "clientAccountId": "bench",
        "parameters": {},
        "phases": [
            {"name": p, "command": ["sleep", str(PHASE_SECONDS)], "manual": False} for p in PHASES
        ],
    }


def flows_state(custom: client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    listing: Any = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return [f.get("status") or {} for f in listing["items"]]


def phases_left(status: dict[str, Any]) -> int:
    """Phases not yet recorded as done, from `status.progress` ("3/7")."""
    done, _, total = (status.get("progress") or f"0/{len(PHASES)}").partition("/")
    return int(total) - int(done)


def duplicate_rows(url: str) -> int:
    async def query() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(func.count())
                    .select_from(PhaseRun)
                    .group_by(PhaseRun.flow_id, PhaseRun.phase, PhaseRun.attempt)
                    .having(func.count() > 1)
                )
                return len(rows.all())
        finally:
            await engine.dispose()

    return asyncio.run(query())


def run_flows(
    api: client.ApiClient, kubeconfig: Path, workdir: Path, postgres: PostgresServer, outage: bool
) -> tuple[float, dict[str, Any]]:
    """One run; returns its seconds and, with an outage, what happened around it."""
    namespace = new_namespace(api, "bench-outage")
    url = postgres.create_database(namespace.replace("-", "_"))
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    operator = OperatorProcess(
        kubeconfig,
        namespace,
        url,
        workdir / f"{namespace}.log",
        {"COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE},
    ).start()
    seen: dict[str, Any] = {}
    try:
        started = time.monotonic()
        create_flows(custom, namespace, FLOWS, spec)
        if outage:
            wait_for(
                lambda: all(
                    PHASES.index(s.get("phase") or PHASES[0]) >= 1
                    for s in flows_state(custom, namespace)
                ),
                "every flow in its second phase",
                timeout=300,
            )
            postgres.halt()
            time.sleep(OUTAGE)
            postgres.start()
            back = time.monotonic()
            statuses = flows_state(custom, namespace)
            seen["phases_left"] = max(phases_left(s) for s in statuses)
        wait_for(
            lambda: all(s.get("state") == "Succeeded" for s in flows_state(custom, namespace)),
            "every flow Succeeded",
            timeout=900,
        )
        seconds = time.monotonic() - started
        if outage:
            seen["catch_up"] = time.monotonic() - back
            events = core.list_namespaced_event(namespace, field_selector="reason=FlowStalled")
            seen["stalled"] = len(events.items)
            jobs = client.BatchV1Api(api).list_namespaced_job(namespace).items
            names = [str(job.metadata.name) for job in jobs if job.metadata is not None]
            seen["rerun"] = len([name for name in names if not name.endswith("-1")])
            seen["duplicates"] = duplicate_rows(url)
    finally:
        operator.stop()
    core.delete_namespace(namespace)
    return seconds, seen


def measure(workdir: Path) -> Result:
    with cluster(workdir) as target, PostgresServer() as postgres:
        api = target.api_client()
        install_crd(api)
        plain, _ = run_flows(api, target.kubeconfig, workdir, postgres, outage=False)
        phase_seconds = plain / len(PHASES)
        _, seen = run_flows(api, target.kubeconfig, workdir, postgres, outage=True)
    return Result(
        flows=FLOWS,
        outage_seconds=OUTAGE,
        phase_seconds_without_outage=round(phase_seconds, 2),
        phases_left_at_return=seen["phases_left"],
        catch_up_seconds=round(seen["catch_up"], 1),
        needed_seconds=round(seen["phases_left"] * phase_seconds, 1),
        flow_stalled_events=seen["stalled"],
        phases_rerun=seen["rerun"],
        duplicate_rows=seen["duplicates"],
    )


def report(result: Result) -> None:
    ratio = round(result.catch_up_seconds / max(result.needed_seconds, 0.1), 2)
    report_measures(
        f"{result.flows} flows through a {result.outage_seconds:g} s outage",
        "outage",
        asdict(result) | {"ratio": ratio},
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cf-bench-outage-") as workdir:
        result = measure(Path(workdir))
    report(result)
    clean = result.flow_stalled_events == 0 and result.phases_rerun == 0
    return 0 if clean and result.duplicate_rows == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
