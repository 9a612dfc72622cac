"""`collectionflow worker` as a real process, the way a phase Job's container runs it.

No heartbeat Lease is configured, so these need no cluster and no network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from unit.test_worker_lookup import write_distribution

pytestmark = pytest.mark.unit

SAMPLE_PARAMETERS = {
    "assets": [
        {"name": "web-01", "platform": "vmware", "os": "linux", "cpu": 4},
        {"name": "db-01", "platform": "aws", "os": "linux", "cpu": 8, "memoryGiB": 64},
    ]
}


@dataclass(frozen=True)
class Run:
    exit_code: int
    written: dict[str, Any] | None
    stdout: str
    stderr: str


def run_worker(
    tmp_path: Path, phase: str, parameters: Any = SAMPLE_PARAMETERS, **env: str | None
) -> Run:
    """Run the worker with the contract's variables; `env` overrides them (None unsets)."""
    termination = tmp_path / "termination-log"
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("COLLECTIONFLOW_") and name not in {"KUBECONFIG", "HOSTNAME"}
    }
    wanted: dict[str, str | None] = {
        **inherited,
        "COLLECTIONFLOW_FLOW_NAMESPACE": "team-a",
        "COLLECTIONFLOW_FLOW_NAME": "inventory",
        "COLLECTIONFLOW_FLOW_UID": "6f1c2a9e-0000-4000-8000-000000000001",
        "COLLECTIONFLOW_FLOW_TYPE": "collection",
        "COLLECTIONFLOW_PHASE": phase,
        "COLLECTIONFLOW_ATTEMPT": "1",
        "COLLECTIONFLOW_PARAMETERS": json.dumps(parameters),
        "COLLECTIONFLOW_PREVIOUS_OUTPUTS": "{}",
        "COLLECTIONFLOW_HEARTBEAT_SECONDS": "1",
        "TERMINATION_MESSAGE_PATH": str(termination),
        **env,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "collectionflow", "worker"],
        env={name: value for name, value in wanted.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    written = json.loads(termination.read_text()) if termination.exists() else None
    return Run(completed.returncode, written, completed.stdout, completed.stderr)


def test_a_succeeded_phase_exits_0_and_writes_its_result(tmp_path: Path) -> None:
    run = run_worker(tmp_path, "gap_analysis")
    assert run.exit_code == 0, run.stderr
    assert run.written == {
        "state": "succeeded",
        "next_phase": "questionnaire_generation",
        "agent_decision": "3 required attributes are missing on 2 of 2 assets",
        "outputs": {
            "gaps": {"web-01": ["memoryGiB", "owner"], "db-01": ["owner"]},
            "gapCount": 3,
            "assetsWithGaps": 2,
        },
        "error": None,
    }
    assert json.loads(run.stdout) == run.written


def test_every_log_line_names_the_flow_phase_and_attempt(tmp_path: Path) -> None:
    run = run_worker(tmp_path, "initialization")
    lines = run.stderr.strip().splitlines()
    assert lines
    assert all("[team-a/inventory initialization#1]" in line for line in lines), run.stderr


def test_the_manual_phase_reads_its_input(tmp_path: Path) -> None:
    answers = {"answers": {"web-01": {"owner": "web-team"}}}
    run = run_worker(tmp_path, "manual_collection", COLLECTIONFLOW_INPUT=json.dumps(answers))
    assert run.exit_code == 0, run.stderr
    assert run.written is not None
    assert run.written["outputs"]["answered"] == {"web-01": ["owner"]}


def test_invalid_parameters_exit_1_with_a_failed_result(tmp_path: Path) -> None:
    run = run_worker(tmp_path, "initialization", {"assets": []})
    assert run.exit_code == 1
    assert run.written is not None
    assert run.written["state"] == "failed"
    assert "parameters.assets is empty" in run.written["error"]


def test_a_simulated_exit_code_is_the_process_exit_code(tmp_path: Path) -> None:
    parameters = {**SAMPLE_PARAMETERS, "simulate": {"synthesis": {"exitCode": 7}}}
    run = run_worker(tmp_path, "synthesis", parameters)
    assert run.exit_code == 7
    assert run.written is not None
    assert run.written["state"] == "failed"
    assert run.written["error"] == "simulated failure of attempt 1 (exit code 7)"


def test_a_configuration_error_exits_2_and_names_the_variable(tmp_path: Path) -> None:
    run = run_worker(tmp_path, "initialization", COLLECTIONFLOW_PARAMETERS="{not json")
    assert run.exit_code == 2
    assert run.written is not None
    assert run.written["state"] == "failed"
    assert run.written["error"].startswith("COLLECTIONFLOW_PARAMETERS is not valid JSON")
    assert "COLLECTIONFLOW_PARAMETERS is not valid JSON" in run.stderr


def test_an_unknown_phase_exits_2(tmp_path: Path) -> None:
    run = run_worker(tmp_path, "teleportation")
    assert run.exit_code == 2
    assert run.written is not None
    assert "no handler for phase 'teleportation'" in run.written["error"]


def test_an_unwritable_termination_message_is_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "termination-log"
    run = run_worker(tmp_path, "initialization", TERMINATION_MESSAGE_PATH=str(path))
    assert run.exit_code == 0
    assert json.loads(run.stdout)["state"] == "succeeded"
    assert f"cannot write the result to {path}" in run.stderr


def test_an_installed_plugin_runs_the_phase(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    write_distribution(plugins, "cf_cli_test_phases", {"gap_analysis": "MODULE:custom"})
    pythonpath = os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))
    run = run_worker(tmp_path, "gap_analysis", PYTHONPATH=pythonpath)
    assert run.exit_code == 0, run.stderr
    assert run.written is not None
    assert run.written["outputs"] == {"plugin": "gap_analysis"}
    assert run.written["next_phase"] == "synthesis"
    assert "cf_cli_test_phases.custom" in run.stderr


def test_a_lease_without_a_usable_kubeconfig_exits_2(tmp_path: Path) -> None:
    run = run_worker(
        tmp_path,
        "initialization",
        COLLECTIONFLOW_HEARTBEAT_LEASE="inventory-initialization-1",
        KUBECONFIG=str(tmp_path / "missing-kubeconfig"),
        KUBERNETES_SERVICE_HOST=None,
    )
    assert run.exit_code == 2
    assert run.written is not None
    assert "cannot reach the Kubernetes API for the heartbeat" in run.written["error"]
