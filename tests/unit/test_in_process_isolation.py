"""The in-process runner's worker: an environment built from nothing, a heartbeat through a
file the operator reads, and that heartbeat trusted like a Job's Lease."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from collectionflow.api.contract import ENV_HEARTBEAT_LEASE, ENV_PHASE
from collectionflow.api.env import EnvVar
from collectionflow.controller.inprocess import WORKER_ARGV, contract_environment, in_process_lease
from collectionflow.domain.observe import lease_renewed_at
from collectionflow.specs.inprocess import running_bodies
from collectionflow.specs.jobs import build_phase_job
from collectionflow.worker.heartbeat import FileHeartbeat
from unit.test_jobs import phase_config, request

pytestmark = pytest.mark.unit
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def test_the_environment_is_the_worker_contract_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLLECTIONFLOW_DB__URL", "postgresql+asyncpg://u:secret@db/flows")
    config = phase_config(env=(EnvVar(name="LD_PRELOAD", value="/tmp/evil.so"),))
    manifest = build_phase_job(request(config))
    env = contract_environment(manifest["spec"]["template"]["spec"]["containers"][0])
    assert env[ENV_PHASE] == "gap_analysis"
    assert all(name.startswith("COLLECTIONFLOW_") for name in env)
    assert "LD_PRELOAD" not in env
    assert ENV_HEARTBEAT_LEASE not in env
    assert "COLLECTIONFLOW_DB__URL" not in env
    assert "secret" not in "".join(env.values())
    assert WORKER_ARGV[-1] == "worker"


def test_the_file_heartbeat_is_read_back_as_a_trusted_lease(tmp_path: Path) -> None:
    beats = tmp_path / "heartbeat"
    heartbeat = FileHeartbeat(beats, 0.05)
    heartbeat.start()
    deadline = time.monotonic() + 5
    while not beats.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    heartbeat.stop()
    assert beats.read_text().endswith("Z")

    job, _ = running_bodies("team-a", "f-gap-analysis-1", NOW)
    lease = in_process_lease("team-a", "f-gap-analysis-1", NOW)
    assert lease_renewed_at(lease, job) == NOW
    other, _ = running_bodies("team-a", "f-gap-analysis-2", NOW)
    assert lease_renewed_at(lease, other) is None
