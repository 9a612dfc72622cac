"""Stalled flows are detected on evidence and recovered, every step visible."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from collectionflow.db.models import CollectionFlow
from harness.flows import REPO, Flows
from harness.operator_process import OperatorProcess
from harness.records import journal_rows
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

FAST_CHECKS = {
    "COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS": "2",
    "COLLECTIONFLOW_OPERATOR__POD_START_TIMEOUT_SECONDS": "4",
    "COLLECTIONFLOW_OPERATOR__RECOVERY_BACKOFF_SECONDS": "1",
    "COLLECTIONFLOW_OPERATOR__MISSED_COMPLETION_GRACE_SECONDS": "3",
}


def spec(stall_timeout: int | None = None, **simulate: dict[str, Any]) -> dict[str, Any]:
    path = REPO / "crds" / "samples" / "collectionflow-complete-data.yaml"
    result: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]
    result["parameters"]["simulate"] = simulate
    if stall_timeout is not None:
        result["stallTimeoutSeconds"] = stall_timeout
    return result


def journal(url: str, uid: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Operation, reason and diagnostics of the flow's journal rows, oldest first."""
    return [
        (e.operation, str(e.diagnostics.get("reason", "")), dict(e.diagnostics))
        for e in journal_rows(url, uid)
    ]


def test_hung_worker_is_recovered_but_a_long_heartbeating_phase_is_left_alone(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    operator = start_operator(db_url, **FAST_CHECKS)
    hung = flows.create(
        "hung",
        spec(10, platform_detection={"sleepSeconds": 1, "hangSeconds": 120, "hangAttempts": 1}),
    )["metadata"]["uid"]
    flows.create("slow", spec(10, platform_detection={"sleepSeconds": 16}))

    status = flows.wait_state("hung", "Succeeded", timeout=120)
    assert status["recoveries"] == 1
    history = [(h["name"], h["attempt"], h["state"]) for h in status["phaseHistory"]]
    assert ("platform_detection", 1, "Abandoned") in history
    assert ("platform_detection", 2, "Succeeded") in history
    stalled = [e for e in flows.events("hung") if e.reason == "FlowStalled"]
    assert len(stalled) == 1
    assert stalled[0].type == "Warning"
    assert "NoProgress" in stalled[0].message
    assert "heart-beaten" in stalled[0].message
    assert "FlowRecovered" in flows.event_reasons("hung")
    names = {job.metadata.name for job in flows.jobs("hung")}
    assert "hung-platform-detection-2" in names
    assert "hung-platform-detection-1" not in names, "the stale attempt's Job is deleted"
    rows = journal(db_url, hung)
    assert [(op, reason) for op, reason, _ in rows] == [
        ("stall_detected", "NoProgress"),
        ("recovered", "NoProgress"),
    ]
    assert rows[0][2]["evidence"]["phase"] == "platform_detection"
    # Stalled once the age passed the 10 s timeout; the evidence rounds it to a tenth.
    assert rows[0][2]["evidence"]["last_heartbeat_age_seconds"] >= 10

    slow = flows.wait_state("slow", "Succeeded", timeout=120)
    assert slow["recoveries"] == 0
    assert "FlowStalled" not in flows.event_reasons("slow")
    conditions = {c["type"]: c["status"] for c in flows.get("hung")["status"]["conditions"]}
    assert conditions["Stalled"] == "False", "Stalled clears once the flow moves on"

    assert operator.metric('collectionflow_stalls_detected_total{reason="NoProgress"}') == 1
    assert operator.metric('collectionflow_recoveries_total{reason="NoProgress"}') == 1
    assert operator.metric('collectionflow_flows{state="Succeeded"}') == 2
    assert (operator.metric("collectionflow_watch_event_age_seconds") or 0) < 60


def test_deleted_job_is_recovered_as_job_missing(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    start_operator(db_url, **FAST_CHECKS)
    flows.create("lost", spec(platform_detection={"sleepSeconds": 6}))
    flows.wait_for("lost", lambda s: s.get("phase") == "platform_detection", "second phase")
    flows.batch.delete_namespaced_job(
        "lost-platform-detection-1", flows.namespace, propagation_policy="Background"
    )
    status = flows.wait_state("lost", "Succeeded", timeout=90)
    assert status["recoveries"] == 1
    stalled = [e.message for e in flows.events("lost") if e.reason == "FlowStalled"]
    assert len(stalled) == 1
    assert "JobMissing" in stalled[0]
    assert "FlowRecovered" in flows.event_reasons("lost")


def test_pod_that_never_starts_is_retried_then_fails_recovery_exhausted(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    start_operator(db_url, **FAST_CHECKS)
    broken = spec()
    broken["maxRecoveries"] = 2
    broken["phases"] = [{"name": "platform_detection", "image": "registry.invalid/nope:1"}]
    uid = flows.create("noimage", broken)["metadata"]["uid"]

    status = flows.wait_state("noimage", "Failed", timeout=120)
    assert status["recoveries"] == 2
    assert status["attempt"] == 3
    reasons = {c["type"]: c["reason"] for c in status["conditions"]}
    assert reasons["Succeeded"] == "RecoveryExhausted"
    assert "PodNotStarting" in status["message"]
    flows.wait_event("noimage", "FlowFailed")
    stalled = [e.message for e in flows.events("noimage") if e.reason == "FlowStalled"]
    assert len(stalled) == 3
    assert all("PodNotStarting" in m for m in stalled)
    assert any("ImagePullBackOff" in m or "ErrImagePull" in m for m in stalled)
    assert flows.event_reasons("noimage").count("FlowRecovered") == 2
    assert "FlowFailed" in flows.event_reasons("noimage")
    assert "noimage-platform-detection-3" not in {j.metadata.name for j in flows.jobs("noimage")}

    rows = journal(db_url, uid)
    operations = [op for op, _, _ in rows]
    assert operations.count("stall_detected") == 3
    assert operations.count("recovered") == 2
    assert "RecoveryExhausted" in operations
    exhausted = next(diag for op, _, diag in rows if op == "RecoveryExhausted")
    assert exhausted["reason"] == "RecoveryExhausted"
    attempts = next(diag for op, _, diag in rows if op == "stall_detected")["attempts"]
    assert attempts[0]["phase"] == "platform_detection"


def test_completion_while_operator_was_down_is_caught_up_without_rerun_or_alarm(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    operator = start_operator(db_url, **FAST_CHECKS)
    uid = flows.create("missed", spec(platform_detection={"sleepSeconds": 2}))["metadata"]["uid"]
    flows.wait_for("missed", lambda s: s.get("phase") == "platform_detection", "second phase")
    operator.kill()

    def ended_beyond_the_grace() -> bool:
        job: Any = flows.batch.read_namespaced_job("missed-platform-detection-1", flows.namespace)
        done = job.status.completion_time
        grace = float(FAST_CHECKS["COLLECTIONFLOW_OPERATOR__MISSED_COMPLETION_GRACE_SECONDS"])
        return done is not None and (dt.datetime.now(dt.UTC) - done).total_seconds() > grace

    wait_for(ended_beyond_the_grace, "the Job completed longer ago than the grace", 60)
    assert flows.get("missed")["status"]["phase"] == "platform_detection"

    start_operator(db_url, **FAST_CHECKS)
    flows.wait_state("missed", "Succeeded", timeout=90)
    events = flows.events("missed")
    assert "FlowStalled" not in [e.reason for e in events], "a restart is not a stall"
    [caught_up] = [e for e in events if e.reason == "CaughtUp"]
    assert caught_up.type == "Normal"
    assert "missed-platform-detection-1 finished (Succeeded)" in caught_up.message
    names = [job.metadata.name for job in flows.jobs("missed")]
    assert [n for n in names if "platform-detection" in n] == ["missed-platform-detection-1"]
    assert journal(db_url, uid) == []


def test_database_drift_is_repaired(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    # A waiting flow is quiet to the sweep: its record is read again each re-list period.
    start_operator(db_url, **FAST_CHECKS, COLLECTIONFLOW_OPERATOR__RELIST_SECONDS="10")
    sample = yaml.safe_load((REPO / "crds" / "samples" / "collectionflow-sample.yaml").read_text())
    uid = flows.create("drift", sample["spec"])["metadata"]["uid"]
    flows.wait_state("drift", "WaitingForInput", timeout=90)

    async def tamper() -> None:
        engine = create_async_engine(db_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(CollectionFlow)
                    .where(CollectionFlow.k8s_uid == uid)
                    .values(status="bogus", current_phase="initialization", progress_percentage=3)
                )
        finally:
            await engine.dispose()

    async def child() -> tuple[str, str | None, float]:
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(
                            CollectionFlow.status,
                            CollectionFlow.current_phase,
                            CollectionFlow.progress_percentage,
                        ).where(CollectionFlow.k8s_uid == uid)
                    )
                ).one()
                return row[0], row[1], row[2]
        finally:
            await engine.dispose()

    before = asyncio.run(child())
    asyncio.run(tamper())
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and asyncio.run(child()) != before:
        time.sleep(0.5)
    assert asyncio.run(child()) == before == ("manual_collection", "manual_collection", 71)
    flows.wait_event("drift", "FlowRecovered")
    stalled = [e.message for e in flows.events("drift") if e.reason == "FlowStalled"]
    assert len(stalled) == 1
    assert "DatabaseDrift" in stalled[0]
    assert "FlowRecovered" in flows.event_reasons("drift")
    assert flows.get("drift")["status"]["state"] == "WaitingForInput", "waiting is no stall"


def test_retry_in_place_reruns_only_from_the_failed_phase(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    operator = start_operator(db_url, **FAST_CHECKS)
    failing = spec(gap_analysis={"exitCode": 4, "failAttempts": 1})
    failing["phases"] = [{"name": "gap_analysis", "retries": 0}]
    flows.create("retry", failing)
    failed = flows.wait_state("retry", "Failed", timeout=90)
    assert failed["phase"] == "gap_analysis"
    reconcilers = "collectionflow_reconcilers"
    wait_for(lambda: operator.metric(reconcilers) == 0, "a Failed flow at rest", 10)

    flows.annotate("retry", **{"flows.collectionflow.io/retry": "1"})
    status = flows.wait_state("retry", "Succeeded", timeout=90)
    wait_for(lambda: operator.metric(reconcilers) == 0, "a Succeeded flow at rest", 10)
    assert operator.metric('collectionflow_flows{state="Succeeded"}') == 1
    names = sorted(job.metadata.name for job in flows.jobs("retry"))
    assert names == sorted(
        [
            "retry-initialization-1",
            "retry-platform-detection-1",
            "retry-automated-collection-1",
            "retry-gap-analysis-1",
            "retry-gap-analysis-2",
            "retry-questionnaire-generation-1",
            "retry-synthesis-1",
        ]
    )
    assert status["retryToken"] == "1"
    assert "RetryRequested" in flows.event_reasons("retry")
    time.sleep(3)
    assert flows.get("retry")["status"]["state"] == "Succeeded", "the same token acts once"
