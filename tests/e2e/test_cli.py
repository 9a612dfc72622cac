"""The command line against the local cluster, at 80 columns: every command, its -o formats,
its errors, and `kubectl cflow` as a plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.flows import REPO, Flows
from harness.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

LONG = "assessment-eu-datacenter-migration-wave3"
ANSWERS = {"answers": {"db-01": {"owner": "dba-team"}}}


def spec(name: str = "collectionflow-complete-data.yaml", **simulate: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "crds" / "samples" / name).read_text())["spec"]
    loaded["parameters"]["simulate"] = simulate
    return loaded


def narrow(text: str) -> None:
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert wide == [], "wider than 80 columns"


def test_get_lists_flows_within_80_columns_and_as_a_kubectl_plugin(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    start_operator(db_url)
    flows.create(LONG, spec())
    flows.create("short", spec())
    flows.wait_state(LONG, "Succeeded", timeout=120)
    flows.wait_state("short", "Succeeded", timeout=120)

    listed = cflow("get", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    narrow(listed.stdout)
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "PHASE"]
    assert [row.split()[0] for row in rows] == [LONG, "short"], "names whole, sorted"
    assert all("100%" in row and "Succeeded" in row for row in rows)

    everywhere = cflow("get", "-A")
    assert everywhere.returncode == 0, everywhere.stderr
    assert everywhere.stdout.splitlines()[0].startswith("NAMESPACE")
    assert any(line.startswith(namespace) for line in everywhere.stdout.splitlines())

    as_json = json.loads(cflow("get", "-n", namespace, "-o", "json").stdout)
    assert {flow["metadata"]["name"] for flow in as_json} == {LONG, "short"}
    one = yaml.safe_load(cflow("get", "short", "-n", namespace, "-o", "yaml").stdout)
    assert one["status"]["state"] == "Succeeded"

    plugin = cflow("cflow", "get", "-n", namespace, program="kubectl")
    assert plugin.returncode == 0, plugin.stderr
    names = [line.split()[0] for line in plugin.stdout.splitlines()]
    assert names == [line.split()[0] for line in listed.stdout.splitlines()]

    missing = cflow("get", "nope", "-n", namespace)
    assert missing.returncode == 1
    assert f'collectionflow "nope" not found in namespace "{namespace}"' in missing.stderr


def test_input_retry_suspend_resume_and_their_errors(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    start_operator(db_url)
    flows.create("asks", spec("collectionflow-sample.yaml"))
    flows.create("runs", spec(platform_detection={"sleepSeconds": 8}))
    flows.wait_for("runs", lambda s: s.get("phase") == "platform_detection", "second phase")
    suspended = cflow("suspend", "runs", "-n", namespace)
    assert suspended.returncode == 0, suspended.stderr
    assert "suspended" in suspended.stdout

    not_waiting = cflow("input", "runs", "-n", namespace, "--set", "db-01.owner=dba")
    assert not_waiting.returncode == 1
    assert "input needs a WaitingForInput flow" in not_waiting.stderr
    assert f"{namespace}/runs is " in not_waiting.stderr
    not_failed = cflow("retry", "runs", "-n", namespace)
    assert not_failed.returncode == 1
    assert "retry needs a Failed flow" in not_failed.stderr

    assert flows.wait_state("runs", "Suspended", timeout=60)["phase"] == "automated_collection"
    assert cflow("resume", "runs", "-n", namespace).returncode == 0
    flows.wait_state("runs", "Succeeded", timeout=120)

    flows.wait_state("asks", "WaitingForInput", timeout=120)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(ANSWERS))
    given = cflow("input", "asks", "-n", namespace, "--file", str(answers))
    assert given.returncode == 0, given.stderr
    assert "input given" in given.stdout
    flows.wait_state("asks", "Succeeded", timeout=120)

    broken = spec(gap_analysis={"exitCode": 3})
    broken["phases"] = [{"name": "gap_analysis", "retries": 0}]
    flows.create("broken", broken)
    flows.wait_state("broken", "Failed", timeout=120)
    retried = cflow("retry", "broken", "-n", namespace, "-o", "json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["metadata"]["annotations"]["flows.collectionflow.io/retry"]
    flows.wait_for("broken", lambda s: s.get("attempt") == 2, "the second attempt")


def test_describe_journal_and_logs(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    start_operator(db_url)
    broken = spec(gap_analysis={"exitCode": 3})
    broken["phases"] = [{"name": "gap_analysis", "retries": 0}]
    flows.create(LONG, broken)
    flows.wait_state(LONG, "Failed", timeout=120)
    flows.wait_event(LONG, "FlowFailed")

    described = cflow("describe", LONG, "-n", namespace)
    assert described.returncode == 0, described.stderr
    narrow(described.stdout)
    text = described.stdout
    for section in ("Phases:", "Conditions:", "Events:", "Failure journal:"):
        assert section in text
    assert f"Name:       {LONG}" in text
    assert "gap_analysis" in text
    assert "run_phase" in text, "the journal row from the database"
    assert "FlowFailed" in text

    journal = cflow("journal", LONG, "-n", namespace, "--since", "1h")
    assert journal.returncode == 0, journal.stderr
    narrow(journal.stdout)
    assert "run_phase" in journal.stdout
    rows = yaml.safe_load(cflow("journal", LONG, "-n", namespace, "-o", "yaml").stdout)
    assert [row["phase"] for row in rows] == ["gap_analysis"]
    bad_since = cflow("journal", "--since", "soon")
    assert bad_since.returncode != 0
    assert "30s, 15m, 2h or 7d" in bad_since.stderr

    logs = cflow("logs", LONG, "-n", namespace, "--phase", "initialization")
    assert logs.returncode == 0, logs.stderr
    assert "initialization" in logs.stdout


def test_get_one_flow_with_watch_prints_its_changes(
    flows: Flows,
    namespace: str,
    cluster: Any,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
) -> None:
    start_operator(db_url)
    held = spec() | {"suspend": True}
    flows.create("watched", held)
    flows.wait_state("watched", "Suspended", timeout=60)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "COLUMNS": "80"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    watching = subprocess.Popen(
        ["collectionflow", "get", "watched", "-n", namespace, "-w"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watching.stdout is not None
        header = watching.stdout.readline()
        assert header.split()[:2] == ["NAME", "PHASE"]
        assert "Suspended" in watching.stdout.readline()
        flows.patch("watched", {"spec": {"suspend": False}})
        lines: list[str] = []
        while not any("Succeeded" in line for line in lines):
            lines.append(watching.stdout.readline())
            assert lines[-1], f"the watch ended before Succeeded: {lines}"
        assert all(line.startswith("watched ") for line in lines), lines
        assert any("Running" in line for line in lines), "each change as it comes"
    finally:
        watching.kill()
        watching.wait()
