"""What the benchmarks share: the cluster under test and where results go."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

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
