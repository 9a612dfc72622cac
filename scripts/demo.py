"""`make demo`: a cluster, the operator, the sample flows, watched live until they succeed.

Uses the local control plane and node agent unless KUBECONFIG names a cluster already (kind,
with our image loaded); there it works in its own namespace, `collectionflow-demo`. The
operator runs here as a process with the SQLite default. At a terminal the demo stays up for
you to explore until Ctrl-C; run from a script (stdin not a terminal) it ends with the flows.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client, config
from rich.console import Console
from rich.live import Live
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from collectionflow.api.models import (  # noqa: E402
    GROUP,
    PLURAL,
    VERSION,
    FlowState,
)
from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE  # noqa: E402
from harness.cluster import LocalCluster  # noqa: E402

SAMPLE_INPUT = '{"answers": {"db-01": {"owner": "dba-team"}}}'
console = Console()


@contextlib.contextmanager
def cluster_kubeconfig(workdir: Path) -> Iterator[Path]:
    existing = os.environ.get("KUBECONFIG")
    if existing:
        console.print(f"using the cluster of KUBECONFIG={existing}")
        yield Path(existing)
        return
    console.print("starting the local control plane and node agent ...")
    with LocalCluster(workdir / "cluster") as local:
        yield local.kubeconfig


def kubectl(kubeconfig: Path, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        ["kubectl", *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def kubectl_input(kubeconfig: Path, text: str, *args: str) -> str:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run(
        ["kubectl", *args], env=env, check=True, capture_output=True, text=True, input=text
    ).stdout


def flows_table(flows: list[dict[str, Any]]) -> Table:
    table = Table(title="kubectl get collectionflows")
    for column in ("NAME", "PHASE", "NEXT", "PROGRESS", "STATE", "ATTEMPT", "MESSAGE"):
        table.add_column(column)
    for flow in flows:
        meta: dict[str, str] = flow["metadata"]
        status: dict[str, Any] = flow.get("status") or {}
        table.add_row(
            meta["name"],
            str(status.get("phase", "")),
            str(status.get("nextPhase", "")),
            f"{status.get('progressPercentage', 0)}%",
            str(status.get("state", "")),
            str(status.get("attempt", "")),
            str(status.get("message", ""))[:60],
        )
    return table


def watch(kubeconfig: Path, namespace: str, timeout: float) -> bool:
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(kubeconfig)))
    answered = False
    deadline = time.monotonic() + timeout
    with Live(console=console, refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            listing: Any = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            flows: list[dict[str, Any]] = listing["items"]
            live.update(flows_table(flows))
            states = {f["metadata"]["name"]: (f.get("status") or {}).get("state") for f in flows}
            if not answered and FlowState.WAITING_FOR_INPUT in states.values():
                waiting = [
                    name for name, state in states.items() if state == FlowState.WAITING_FOR_INPUT
                ]
                for name in waiting:
                    kubectl(
                        kubeconfig,
                        "-n",
                        namespace,
                        "annotate",
                        "cflow",
                        name,
                        "--overwrite",
                        f"{ANNOTATION_INPUT_COMPLETE}=true",
                        f"{ANNOTATION_INPUT}={SAMPLE_INPUT}",
                    )
                console.print(f"provided the manual input for {', '.join(waiting)}")
                answered = True
            if states and all(
                s in (FlowState.SUCCEEDED, FlowState.FAILED) for s in states.values()
            ):
                return all(s == FlowState.SUCCEEDED for s in states.values())
            time.sleep(0.5)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", default="collectionflow-demo")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--exit", action="store_true", help="stop when the flows are done")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cf-demo-") as tmp:
        return run_demo(args, Path(tmp))


def run_demo(args: argparse.Namespace, workdir: Path) -> int:
    with cluster_kubeconfig(workdir) as kubeconfig:
        kubectl(kubeconfig, "apply", "-f", str(REPO / "crds" / "collectionflow.yaml"))
        kubectl(
            kubeconfig,
            "wait",
            "--for=condition=Established",
            "crd/collectionflows.flows.collectionflow.io",
        )
        database = workdir / "collectionflow.sqlite"
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "COLLECTIONFLOW_DB__URL": f"sqlite+aiosqlite:///{database}",
            "COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS": "2",
        }
        log_path = workdir / "operator.log"
        with log_path.open("w") as log:
            operator = subprocess.Popen(
                [sys.executable, "-m", "collectionflow", "run", "--liveness-port", "0"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            console.print(f"operator running (log: {log_path}); applying crds/samples/")
            namespace = kubectl(
                kubeconfig, "create", "namespace", args.namespace, "--dry-run=client", "-o", "yaml"
            )
            kubectl_input(kubeconfig, namespace, "apply", "-f", "-")
            kubectl(kubeconfig, "-n", args.namespace, "apply", "-f", str(REPO / "crds" / "samples"))
            ok = watch(kubeconfig, args.namespace, args.timeout)
            print(kubectl(kubeconfig, "-n", args.namespace, "get", "cflow", "-o", "wide"))
            console.print(
                "[green]all flows Succeeded[/]" if ok else "[red]not all flows Succeeded[/]"
            )
            if args.exit or not sys.stdin.isatty():
                return 0 if ok else 1
            console.print(
                "\nExplore (the cluster stays up until Ctrl-C):\n"
                f"  export KUBECONFIG={kubeconfig}\n"
                f"  kubectl -n {args.namespace} get cflow -o wide\n"
                f"  .venv/bin/collectionflow describe assessment-acme -n {args.namespace}\n"
                f"  kubectl -n {args.namespace} get jobs\n"
                f"  COLLECTIONFLOW_DB__URL=sqlite+aiosqlite:///{database} "
                ".venv/bin/collectionflow journal\n"
            )
            with contextlib.suppress(KeyboardInterrupt):
                while operator.poll() is None:
                    time.sleep(1)
            return 0 if ok else 1
        finally:
            operator.terminate()
            operator.wait(10)


if __name__ == "__main__":
    sys.exit(main())
