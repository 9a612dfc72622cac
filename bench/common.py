"""What the benchmarks share: the cluster under test and where results go."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "tests"))

from harness.cluster import Cluster, LocalCluster  # noqa: E402


@contextlib.contextmanager
def cluster(workdir: Path) -> Iterator[Cluster]:
    """The cluster KUBECONFIG names, or a local one for the run."""
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield Cluster(Path(existing), None)
        return
    with LocalCluster(workdir / "cluster") as local:
        yield Cluster(local.kubeconfig, local)


def report_measures(title: str, name: str, measures: dict[str, Any]) -> None:
    """Print `measures` as a table of measure and value, and write them to
    bench/results/<name>.json."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in measures.items():
        table.add_row(key.replace("_", " "), str(value))
    Console().print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(measures, indent=2) + "\n")
    print(f"wrote {out}")
