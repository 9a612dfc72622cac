"""Every flow that is not moving says why, what happens next, and when: against the real
cluster, the operator as a process and the command line as a user runs it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from e2e.diagnosis_checks import (
    SWEEP_SECONDS,
    acted_when_announced,
    cause_recorded,
    parse,
    reconciling,
    said_within,
)
from e2e.test_flow_lifecycle import sample_spec
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.records import journal_rows
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e


IMAGE = "example.invalid/missing:1"


def test_an_image_that_cannot_be_pulled_is_named_and_acted_on_when_announced(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    start_operator(
        db_url,
        COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        COLLECTIONFLOW_OPERATOR__RECOVERY_BACKOFF_SECONDS="0",
    )
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["maxRecoveries"] = 1
    spec["phases"] = [{"name": "initialization", "image": IMAGE, "stallTimeoutSeconds": 20}]
    uid = flows.create("pull", spec)["metadata"]["uid"]
    running = flows.wait_state("pull", "Running", timeout=30)
    started = parse(running["lastProgressTime"])

    status = flows.wait_for(
        "pull",
        lambda s: "pod cannot start" in (s.get("message") or ""),
        "the status naming the image",
        timeout=15,
    )
    said_at = dt.datetime.now(dt.UTC)
    assert (said_at - started).total_seconds() <= 10, "said within seconds of the cause"
    assert IMAGE in status["message"]
    assert "PodNotStarting at" in status["message"]
    assert "then attempt 2 (recovery 1 of 1)" in status["message"]
    assert status["state"] == "Running"
    assert reconciling(status)["reason"] == "Waiting"

    why = cflow("why", "pull", "-n", namespace)
    assert why.returncode == 0, why.stderr
    assert "Waits for:  ImagePull" in why.stdout
    assert IMAGE in why.stdout
    announced = json.loads(cflow("why", "pull", "-n", namespace, "-o", "json").stdout)
    assert announced["waitsFor"] == "ImagePull"
    assert announced["abnormal"] is True
    due = parse(announced["nextAt"])

    recovered = flows.wait_for("pull", lambda s: s.get("recoveries") == 1, "the recovery", 60)
    acted = parse(recovered["lastRecoveryTime"])
    lateness = (acted - due).total_seconds()
    print(f"announced PodNotStarting at {due}, acted at {acted} ({lateness:+.1f}s)")
    assert -1 <= lateness <= SWEEP_SECONDS + 2, "acted at the announced time"
    stalls = [e.message for e in flows.events("pull") if e.reason == "FlowStalled"]
    assert any("PodNotStarting" in m and IMAGE in m for m in stalls), stalls

    failed = flows.wait_state("pull", "Failed", timeout=60)
    assert {c["type"]: c["reason"] for c in failed["conditions"]}["Succeeded"] == (
        "RecoveryExhausted"
    )
    rows = wait_for(lambda: journal_rows(db_url, uid), "the journal rows")
    assert any(IMAGE in (row.error_message or "") for row in rows)


def test_a_healthy_flow_waiting_for_input_or_suspended_says_so(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    start_operator(
        db_url,
        COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS=str(SWEEP_SECONDS),
        COLLECTIONFLOW_OPERATOR__INPUT_REMINDER_SECONDS="8",
    )
    flows.create("manual", sample_spec())
    asked = flows.wait_state("manual", "WaitingForInput", timeout=60)
    assert asked["message"].startswith("phase manual_collection waits for input: annotate")
    asked_at = parse(asked["inputRequestedAt"])
    assert (dt.datetime.now(dt.UTC) - asked_at).total_seconds() < 10, "said at once"
    assert reconciling(asked)["reason"] == "WaitingForInput"
    assert "InputRequired" in flows.event_reasons("manual")
    reminder = {"COLLECTIONFLOW_OPERATOR__INPUT_REMINDER_SECONDS": "8"}
    waiting = json.loads(cflow("why", "manual", "-n", namespace, "-o", "json", **reminder).stdout)
    assert waiting["waitsFor"] == "Input"
    assert waiting["abnormal"] is False
    assert waiting["nextAction"].startswith("a reminder Event at")
    reminded = wait_for(
        lambda: [e for e in flows.events("manual") if e.reason == "InputReminder"],
        "the reminder Event",
        30,
    )
    sent = reminded[0].first_timestamp or reminded[0].event_time
    acted_when_announced(parse(waiting["nextAt"]), sent)

    held = sample_spec("collectionflow-complete-data.yaml") | {"suspend": True}
    flows.create("held", held)
    suspended = flows.wait_state("held", "Suspended", timeout=30)
    assert reconciling(suspended)["reason"] == "Suspended"
    assert "FlowSuspended" in flows.wait_event("held", "FlowSuspended")
    said = cflow("why", "held", "-n", namespace)
    assert "Waits for:  Suspended" in said.stdout
    assert "spec.suspend" in said.stdout


def test_a_worker_that_never_beats_is_announced_and_stalled_on_time(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    start_operator(
        db_url,
        COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS="1",
        COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS=str(SWEEP_SECONDS),
    )
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["recoveryPolicy"] = "Fail"
    spec["phases"] = [{"name": "initialization", "stallTimeoutSeconds": 15}]
    spec["parameters"]["simulate"] = {"initialization": {"silent": True, "hangSeconds": 120}}
    uid = flows.create("silent", spec)["metadata"]["uid"]
    running = flows.wait_state("silent", "Running", timeout=30)

    def pod_started() -> dt.datetime | None:
        pods = (
            client.CoreV1Api(api)
            .list_namespaced_pod(namespace, label_selector=f"job-name={running['currentJob']}")
            .items
        )
        states = [s.state.running for p in pods for s in p.status.container_statuses or []]
        return next((state.started_at for state in states if state is not None), None)

    started = wait_for(pod_started, "the worker's pod started", 30)
    said = said_within(
        flows,
        cflow,
        "silent",
        "the worker has not beaten since its pod started",
        started,
        "Heartbeat",
        seconds=3 + SWEEP_SECONDS + 5,
    )
    assert "then the flow fails (recoveryPolicy Fail)" in said.why["nextAction"]
    failed = flows.wait_state("silent", "Failed", timeout=60)
    acted_when_announced(said.due, parse(failed["completedAt"]))
    assert {c["type"]: c["reason"] for c in failed["conditions"]}["Succeeded"] == "NoProgress"
    cause_recorded(flows, db_url, uid, "silent", "has not heart-beaten")


def test_no_operator_leading_is_said_by_why(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    operator = start_operator(
        db_url,
        COLLECTIONFLOW_LEADER__ENABLED="true",
        COLLECTIONFLOW_LEADER__LEASE_NAMESPACE=namespace,
        COLLECTIONFLOW_LEADER__LEASE_DURATION_SECONDS="4",
        COLLECTIONFLOW_LEADER__RENEW_DEADLINE_SECONDS="3",
        COLLECTIONFLOW_LEADER__RETRY_PERIOD_SECONDS="1",
    )
    flows.create("manual", sample_spec())
    flows.wait_state("manual", "WaitingForInput", timeout=60)
    leading = json.loads(
        cflow(
            "why", "manual", "-n", namespace, "--operator-namespace", namespace, "-o", "json"
        ).stdout
    )
    assert leading["operator"] is None
    operator.kill()

    def says() -> str | None:
        said = cflow("why", "manual", "-n", namespace, "--operator-namespace", namespace)
        return said.stdout if "no operator is leading" in said.stdout else None

    text = wait_for(says, "why saying no operator leads", 30, interval=1.0)
    assert "collectionflow-operator-leader expired" in text


def test_a_quota_that_refuses_the_job_is_said_with_what_happens_and_when(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
) -> None:
    client.CoreV1Api(api).create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}}
    )
    wait_for(
        lambda: (
            client.CoreV1Api(api).read_namespaced_resource_quota("no-jobs", namespace).status.hard
        ),
        "the quota counted",
        30,
    )
    start_operator(db_url, COLLECTIONFLOW_OPERATOR__QUOTA_GRACE_SECONDS="8")
    failed_uid = flows.create("quota", sample_spec("collectionflow-complete-data.yaml"))[
        "metadata"
    ]["uid"]
    deferred = wait_for(
        lambda: [e for e in flows.events("quota") if e.reason == "JobDeferred"],
        "the JobDeferred Event",
        10,
    )
    assert deferred[0].type == "Warning"
    message = deferred[0].message
    assert "exceeded quota" in message
    assert "then the flow fails with JobRefused" in message
    held = flows.wait_for(
        "quota",
        lambda s: "exceeded quota" in (s.get("message") or ""),
        "the status saying the quota holds the flow",
        timeout=10,
    )
    assert held["message"] == message
    assert reconciling(held)["reason"] == "Waiting"
    until = dt.datetime.strptime(message.split("retried until ")[1][:9], "%H:%M:%SZ").time()
    failed = flows.wait_state("quota", "Failed", timeout=60)
    assert {c["type"]: c["reason"] for c in failed["conditions"]}["Succeeded"] == "JobRefused"
    rows = wait_for(lambda: journal_rows(db_url, failed_uid), "the journal row", 30)
    assert any("exceeded quota" in (row.error_message or "") for row in rows)
    acted = parse(failed["completedAt"]).time()
    gap = (
        dt.datetime.combine(dt.date.today(), acted) - dt.datetime.combine(dt.date.today(), until)
    ).total_seconds()
    assert 0 <= gap <= 10, (until, acted)


def test_a_running_flow_carries_its_estimated_completion_time(
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    start_operator(db_url)
    steady = sample_spec("collectionflow-complete-data.yaml")
    steady["parameters"]["simulate"] = {"gap_analysis": {"sleepSeconds": 3}}
    flows.create("first", steady)
    first = flows.wait_state("first", "Succeeded", timeout=90)
    assert "estimatedCompletionTime" not in first, "no estimate once it is done"

    flows.create("second", steady)
    running = flows.wait_for(
        "second",
        lambda s: s.get("state") == "Running" and bool(s.get("estimatedCompletionTime")),
        "an estimate while it runs",
        60,
    )
    estimate = parse(running["estimatedCompletionTime"])
    said = cflow("why", "second", "-n", namespace)
    assert "ETA:" in said.stdout
    done = flows.wait_state("second", "Succeeded", timeout=90)
    error = (parse(done["completedAt"]) - estimate).total_seconds()
    print(f"estimated completion off by {error:+.1f}s (first estimate of the second flow)")
    assert abs(error) < 30
    assert "estimatedCompletionTime" not in done
