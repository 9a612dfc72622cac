"""The estimated completion time's error, on flows whose phases take known times.

One operator; a few flows run one after another first, so the flow type has phase runs to go
by; then waves of flows start together, and each is watched from its start: the first
`estimatedCompletionTime` it shows while it runs, and the one it shows at its midpoint, are
compared with when it completed. Reported: the median and p90 absolute error of each, in
seconds and as a share of the flow's duration. It is a report, not a gate: the estimate is a
median of recent runs, so it is only as steady as the cluster the phases run on.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from bench.common import REPO, cluster, report_measures
from harness.crd import install_crd
from harness.flows import Flows
from harness.operator_process import OperatorProcess

WARMUP_FLOWS = 3
WAVES = 2
WAVE_SIZE = 4
SLEEPS = {"platform_detection": 3, "automated_collection": 4, "gap_analysis": 2}


def spec() -> dict[str, Any]:
    path = REPO / "crds" / "samples" / "collectionflow-complete-data.yaml"
    result: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
    result["parameters"]["simulate"] = {
        phase: {"sleepSeconds": seconds} for phase, seconds in SLEEPS.items()
    }
    return result


def parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


@dataclass
class Watched:
    name: str
    started: dt.datetime
    estimates: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    completed: dt.datetime | None = None

    def first_error(self) -> float | None:
        if not self.estimates or self.completed is None:
            return None
        return (self.estimates[0][1] - self.completed).total_seconds()

    def midpoint_error(self) -> float | None:
        if not self.estimates or self.completed is None:
            return None
        middle = self.started + (self.completed - self.started) / 2
        at_or_after = [e for seen, e in self.estimates if seen >= middle]
        return (at_or_after[0] - self.completed).total_seconds() if at_or_after else None

    @property
    def duration(self) -> float:
        assert self.completed is not None
        return (self.completed - self.started).total_seconds()


def watch(flows: Flows, names: list[str], timeout: float = 300.0) -> list[Watched]:
    """Poll the flows twice a second until each has succeeded; what each estimated, when."""
    now = dt.datetime.now(dt.UTC)
    watched = {name: Watched(name, now) for name in names}
    deadline = time.monotonic() + timeout
    while any(w.completed is None for w in watched.values()):
        if time.monotonic() > deadline:
            raise RuntimeError("flows not done within the timeout")
        for w in watched.values():
            if w.completed is not None:
                continue
            status = flows.get(w.name).get("status") or {}
            seen = dt.datetime.now(dt.UTC)
            if status.get("state") == "Failed":
                raise RuntimeError(f"{w.name} failed: {status.get('message')}")
            if status.get("state") == "Succeeded":
                w.completed = parse(status["completedAt"])
            elif status.get("estimatedCompletionTime"):
                w.estimates.append((seen, parse(status["estimatedCompletionTime"])))
        time.sleep(0.5)
    return list(watched.values())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(workdir: Path) -> dict[str, Any]:
    with cluster(workdir) as target:
        api = target.api_client()
        install_crd(api)
        core = client.CoreV1Api(api)
        namespace = f"bench-eta-{os.urandom(3).hex()}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        operator = OperatorProcess(
            target.kubeconfig,
            namespace,
            f"sqlite+aiosqlite:///{workdir / 'eta.sqlite'}",
            workdir / "operator.log",
        ).start()
        flows = Flows(api, namespace)
        try:
            for i in range(WARMUP_FLOWS):
                flows.create(f"warmup-{i}", spec())
                flows.wait_state(f"warmup-{i}", "Succeeded", timeout=180)
            watched: list[Watched] = []
            for wave in range(WAVES):
                names = [f"wave{wave}-{i}" for i in range(WAVE_SIZE)]
                for name in names:
                    flows.create(name, spec())
                watched += watch(flows, names)
        finally:
            operator.stop()
            core.delete_namespace(namespace)
    first = [e for w in watched if (e := w.first_error()) is not None]
    middle = [e for w in watched if (e := w.midpoint_error()) is not None]
    durations = [w.duration for w in watched]
    share = [
        abs(e) / d for w in watched if (e := w.first_error()) is not None for d in [w.duration]
    ]
    return {
        "flows": len(watched),
        "flows_with_an_estimate": len(first),
        "flow_duration_median_s": round(statistics.median(durations), 1),
        "first_estimate_abs_error_median_s": round(statistics.median(map(abs, first)), 1),
        "first_estimate_abs_error_p90_s": round(percentile([abs(e) for e in first], 0.9), 1),
        "first_estimate_error_median_s": round(statistics.median(first), 1),
        "first_estimate_abs_error_median_share": round(statistics.median(share), 3),
        "midpoint_estimate_abs_error_median_s": round(statistics.median(map(abs, middle)), 1)
        if middle
        else None,
    }


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cf-bench-") as workdir:
        measures = measure(Path(workdir))
    report_measures("estimated completion time: error against the real completion", "eta", measures)
    print(f"took {time.monotonic() - started:.0f}s")
    return 0 if measures["flows_with_an_estimate"] == measures["flows"] else 1


if __name__ == "__main__":
    sys.exit(main())
