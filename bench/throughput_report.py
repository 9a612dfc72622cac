"""The throughput bench's results: one row per size, printed as tables and kept as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table

from bench.common import RESULTS

# A kind of request shows in the breakdown when one side makes this many per transition.
SHOWN_PER_TRANSITION = 0.05


@dataclass(frozen=True)
class Run:
    flows: int
    chain_seconds: float
    operator_seconds: float
    chain_gap_p50: float
    chain_gap_p99: float
    operator_gap_p50: float
    operator_gap_p99: float
    chain_job_run_p50: float
    operator_job_run_p50: float
    # The job controller's part of a Job's run, p50 s [chain, operator]: "pod created" (Job
    # seen to its pod seen) and "Job completed" (pod seen Succeeded to Job seen Complete).
    job_controller_p50: dict[str, list[float]]
    transitions: int
    operator_cpu_per_transition_ms: float
    chain_apiserver_requests_per_transition: float
    operator_apiserver_requests_per_transition: float
    operator_client_requests_per_transition: float
    operator_reconciles_per_transition: float
    operator_reconciles_by_trigger: dict[str, float]
    operator_peak_rss_mb: float
    # "VERB resource": [chain, operator] requests per transition, whole cluster.
    requests_by_kind: dict[str, list[float]]
    # process: [chain, operator] CPU ms per transition (bench.machine), and the machine's
    # cores busy over each side's run, in percent.
    cpu_ms_by_process: dict[str, list[float]]
    machine_busy_percent: list[float]

    @property
    def ratio(self) -> float:
        return self.operator_seconds / self.chain_seconds


def per_transition(
    chain: Mapping[str, float], operator: Mapping[str, float], transitions: float
) -> dict[str, list[float]]:
    """Both sides' counts per transition, by kind, the largest first."""
    totals = {k: (chain.get(k, 0.0), operator.get(k, 0.0)) for k in {*chain, *operator}}
    return {
        kind: [round(sides[0] / transitions, 2), round(sides[1] / transitions, 2)]
        for kind, sides in sorted(totals.items(), key=lambda item: -sum(item[1]))
        if max(sides) / transitions >= SHOWN_PER_TRANSITION
    }


def report(runs: list[Run], steps: int) -> None:
    table = Table(title=f"{steps} phases of `true` per flow: operator against a bare Job chain")
    columns = (
        "flows",
        "chain s",
        "operator s",
        "ratio",
        "chain gap p50/p99 s",
        "operator gap p50/p99 s",
        "Job run p50 s chain / operator",
        "operator CPU ms/transition",
        "apiserver req/transition chain / operator",
        "operator client req / reconciles per transition",
        "operator peak RSS MB",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for r in runs:
        table.add_row(
            str(r.flows),
            f"{r.chain_seconds:.1f}",
            f"{r.operator_seconds:.1f}",
            f"{r.ratio:.2f}",
            f"{r.chain_gap_p50:.2f} / {r.chain_gap_p99:.2f}",
            f"{r.operator_gap_p50:.2f} / {r.operator_gap_p99:.2f}",
            f"{r.chain_job_run_p50:.2f} / {r.operator_job_run_p50:.2f}",
            f"{r.operator_cpu_per_transition_ms:.1f}",
            f"{r.chain_apiserver_requests_per_transition:.1f} / "
            f"{r.operator_apiserver_requests_per_transition:.1f}",
            f"{r.operator_client_requests_per_transition:.1f} / "
            f"{r.operator_reconciles_per_transition:.2f}",
            f"{r.operator_peak_rss_mb:.0f}",
        )
    Console().print(table)
    for r in runs:
        _print_sides(
            f"{r.flows} flows: apiserver requests per transition, by kind",
            "request",
            r.requests_by_kind,
        )
        _print_sides(
            f"{r.flows} flows: the job controller's part of a Job's run, p50 s",
            "stage",
            r.job_controller_p50,
        )
        chain_busy, operator_busy = r.machine_busy_percent
        _print_sides(
            f"{r.flows} flows: CPU ms per transition, by process (cores busy: chain "
            f"{chain_busy:.0f}%, operator {operator_busy:.0f}%)",
            "process",
            r.cpu_ms_by_process,
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "throughput.json"
    out.write_text(
        json.dumps([asdict(r) | {"ratio": round(r.ratio, 3)} for r in runs], indent=2) + "\n"
    )
    print(f"wrote {out}")


def _print_sides(title: str, what: str, rows: dict[str, list[float]]) -> None:
    """A table of `what` against the chain's and the operator's figure."""
    table = Table(title=title)
    for column in (what, "chain", "operator"):
        table.add_column(column, justify="right")
    for name, (chain, operator) in rows.items():
        table.add_row(name, f"{chain:.2f}", f"{operator:.2f}")
    Console().print(table)
