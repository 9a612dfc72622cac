"""False alarms through crashes: N flows of seven `true` phases while the operator is
SIGKILLed again and again.

The operator is started, the flows are created, and then, BENCH_RESTARTS_KILLS times (default
15), the operator is SIGKILLed a few seconds (1-5 s, fixed seed) after its metrics answer, and
started again at once. Then every flow must end `Succeeded`. Reported: the kills (and how many
came while flows still ran), how many of the transitions were reported as stalls
(`FlowStalled` Events, and rows in the failure journal, where each stall wrote two: an
operator that was down or busy is not a stalled flow), Jobs against phases (exactly one Job per
phase, every one attempt 1), and the seconds the whole run took.
Settings: BENCH_RESTARTS_FLOWS (default 100), BENCH_RESTARTS_KILLS (default 15).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kubernetes import client
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import RESULTS, cluster, report_measures
from bench.outage import flows_state
from bench.throughput import PHASES, create_flows, new_namespace
from collectionflow.db.models import FailureJournal
from harness.cluster import VENV_IMAGE
from harness.crd import install_crd
from harness.operator_process import OperatorProcess
from harness.waiting import wait_for

FLOWS = int(os.environ.get("BENCH_RESTARTS_FLOWS", "100"))
KILLS = int(os.environ.get("BENCH_RESTARTS_KILLS", "15"))
TIMEOUT = 1200.0


@dataclass(frozen=True)
class Result:
    flows: int
    kills: int
    kills_while_flows_ran: int
    seconds: float
    transitions: int
    flow_stalled_events: int
    journal_rows: int
    jobs: int
    phases_rerun: int


def journal_rows(url: str) -> int:
    async def query() -> int:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(select(func.count()).select_from(FailureJournal))
                return int(rows.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(query())


def succeeded(custom: client.CustomObjectsApi, namespace: str) -> int:
    return sum(status.get("state") == "Succeeded" for status in flows_state(custom, namespace))


def measure(workdir: Path) -> Result:
    chance = random.Random(8)
    with cluster(workdir) as target:
        api = target.api_client()
        install_crd(api)
        namespace = new_namespace(api, "bench-restarts")
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        url = f"sqlite+aiosqlite:///{workdir / 'flows.sqlite'}"

        def operator() -> OperatorProcess:
            started = OperatorProcess(
                target.kubeconfig,
                namespace,
                url,
                workdir / "operator.log",
                {"COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE},
            ).start()
            wait_for(lambda: started.metric("collectionflow_reconcilers") is not None, "metrics")
            return started

        running = operator()
        started = time.monotonic()
        create_flows(custom, namespace, FLOWS)
        kills_while_running = 0
        try:
            for _ in range(KILLS):
                time.sleep(chance.uniform(1.0, 5.0))
                kills_while_running += succeeded(custom, namespace) < FLOWS
                running.kill()
                running = operator()
            wait_for(
                lambda: succeeded(custom, namespace) == FLOWS,
                "every flow Succeeded",
                timeout=TIMEOUT,
                interval=1.0,
            )
            seconds = time.monotonic() - started
        finally:
            running.stop()
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "restarts-operator.log").write_bytes((workdir / "operator.log").read_bytes())
        stalled = core.list_namespaced_event(namespace, field_selector="reason=FlowStalled")
        jobs = [
            str(job.metadata.name)
            for job in client.BatchV1Api(api).list_namespaced_job(namespace).items
            if job.metadata is not None
        ]
        return Result(
            flows=FLOWS,
            kills=KILLS,
            kills_while_flows_ran=kills_while_running,
            seconds=round(seconds, 1),
            transitions=FLOWS * (len(PHASES) - 1),
            flow_stalled_events=len(stalled.items),
            journal_rows=journal_rows(url),
            jobs=len(jobs),
            phases_rerun=len([name for name in jobs if not name.endswith("-1")]),
        )


def report(result: Result) -> None:
    report_measures(
        f"{result.flows} flows through {result.kills} operator SIGKILLs", "restarts", asdict(result)
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cf-bench-restarts-") as workdir:
        result = measure(Path(workdir))
    report(result)
    one_job_each = result.jobs == result.flows * len(PHASES) and result.phases_rerun == 0
    return 0 if one_job_each and result.flow_stalled_events == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
