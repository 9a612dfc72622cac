"""`python -m harness up`: the local cluster for a person, with kubectl pointed at it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cluster import LocalCluster
from harness.controlplane import wait_for_termination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    parser.add_argument("command", choices=["up"], help="start, print KUBECONFIG, block")
    parser.add_argument("--dir", type=Path, default=None, help="working directory (kept)")
    args = parser.parse_args(argv)
    with LocalCluster(args.dir) as cluster:
        print(f"export KUBECONFIG={cluster.kubeconfig}", flush=True)
        print("local cluster is up; Ctrl-C stops it", file=sys.stderr, flush=True)
        wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
