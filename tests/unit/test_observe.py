"""Reading Jobs, pods and Leases, as the Kubernetes API returns them, into observations.

The bodies are camelCase dicts shaped like real API responses (conditions with probe and
transition times, container statuses with `state.waiting|running|terminated`), so a change in
what the observation reads is caught here rather than in a cluster.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.observe import (
    job_created_at,
    job_finished_at,
    lease_renewed_at,
    observe_job,
    parse_time,
    pod_evidence,
)
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from collectionflow.domain.stall import PodEvidence

pytestmark = pytest.mark.unit

JOB = "demo-gap-analysis-1"
CREATED = "2024-05-01T12:00:00Z"
CREATED_AT = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
SUCCEEDED_MESSAGE = (
    '{"state": "succeeded", "next_phase": "questionnaire_generation", '
    '"agent_decision": "gaps found", "outputs": {"gaps": 3}, "error": null}'
)
FAILED_MESSAGE = (
    '{"state": "failed", "next_phase": null, "agent_decision": "", '
    '"outputs": {}, "error": "source system unreachable"}'
)


# --- builders ------------------------------------------------------------------------------


def condition(kind: str, at: str, status: str = "True", **fields: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": at,
        "lastTransitionTime": at,
        **fields,
    }


def job_body(*conditions: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": JOB,
            "namespace": "team-a",
            "uid": "0b5d6c0e-7f0e-4d3a-9b53-6a1f0c1d2e3f",
            "creationTimestamp": CREATED,
        },
        "spec": {"backoffLimit": 2, "completions": 1, "parallelism": 1},
        "status": {"startTime": CREATED, **status, "conditions": list(conditions)},
    }


def complete_job(finished: str = "2024-05-01T12:03:00Z") -> dict[str, Any]:
    return job_body(
        condition(
            "SuccessCriteriaMet",
            finished,
            reason="CompletionsReached",
            message="Reached expected number of succeeded pods",
        ),
        condition(
            "Complete",
            finished,
            reason="CompletionsReached",
            message="Reached expected number of succeeded pods",
        ),
        completionTime=finished,
        succeeded=1,
        ready=0,
        terminating=0,
    )


def failed_job(finished: str = "2024-05-01T12:03:00Z") -> dict[str, Any]:
    return job_body(
        condition(
            "FailureTarget",
            finished,
            reason="BackoffLimitExceeded",
            message="Job has reached the specified backoff limit",
        ),
        condition(
            "Failed",
            finished,
            reason="BackoffLimitExceeded",
            message="Job has reached the specified backoff limit",
        ),
        failed=3,
        ready=0,
        terminating=0,
    )


def pod_body(
    name: str,
    state: dict[str, Any] | None,
    phase: str = "Running",
    conditions: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": list(conditions)}
    if state is not None:
        status["containerStatuses"] = [
            {
                "name": "worker",
                "image": "ghcr.io/example/collectionflow-operator:1.0.0",
                "imageID": "",
                "ready": "running" in state,
                "restartCount": 0,
                "started": "running" in state,
                "state": state,
                "lastState": {},
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "creationTimestamp": CREATED,
            "labels": {"job-name": JOB, "batch.kubernetes.io/job-name": JOB},
        },
        "status": status,
    }


def terminated(
    exit_code: int, finished: str, message: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": CREATED,
        "finishedAt": finished,
        "containerID": "containerd://0123456789abcdef",
    }
    if message is not None:
        state["message"] = message
    return {"terminated": state}


RUNNING = {"running": {"startedAt": "2024-05-01T12:00:05Z"}}
IMAGE_PULL_BACK_OFF = {
    "waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "ghcr.io/example/missing:1.0"',
    }
}


# --- observe_job ---------------------------------------------------------------------------


def test_a_missing_job_is_observed_missing() -> None:
    assert observe_job(JOB, None, []) == JobObservation(JOB, JobState.MISSING)


@pytest.mark.parametrize(
    "conditions",
    [
        pytest.param((), id="no-conditions"),
        pytest.param(
            (condition("Complete", CREATED, status="False"),), id="complete-condition-false"
        ),
        pytest.param(
            (condition("SuccessCriteriaMet", CREATED, reason="CompletionsReached"),),
            id="success-criteria-met-not-yet-complete",
        ),
        pytest.param((condition("Suspended", CREATED, reason="JobSuspended"),), id="suspended"),
    ],
)
def test_a_job_without_a_true_complete_or_failed_condition_is_active(
    conditions: tuple[dict[str, Any], ...],
) -> None:
    pods = [pod_body(f"{JOB}-abcde", RUNNING)]
    assert observe_job(JOB, job_body(*conditions, active=1), pods) == JobObservation(
        JOB, JobState.ACTIVE
    )


def test_a_complete_job_carries_the_result_of_its_succeeded_pod() -> None:
    pods = [
        pod_body(f"{JOB}-first", terminated(1, "2024-05-01T12:01:00Z", "Traceback ..."), "Failed"),
        pod_body(
            f"{JOB}-second",
            terminated(0, "2024-05-01T12:02:59Z", SUCCEEDED_MESSAGE),
            "Succeeded",
        ),
    ]
    observation = observe_job(JOB, complete_job(), pods)
    assert observation == JobObservation(
        name=JOB,
        state=JobState.SUCCEEDED,
        result=PhaseResult(
            state=PhaseOutcome.SUCCEEDED,
            next_phase="questionnaire_generation",
            agent_decision="gaps found",
            outputs={"gaps": 3},
        ),
        exit_code=0,
        reason="Completed",
        job_reason="CompletionsReached",
        job_message="Reached expected number of succeeded pods",
    )


def test_a_complete_job_prefers_its_succeeded_pod_over_a_failed_one_that_ended_later() -> None:
    pods = [
        pod_body(
            f"{JOB}-ok", terminated(0, "2024-05-01T12:02:00Z", SUCCEEDED_MESSAGE), "Succeeded"
        ),
        pod_body(f"{JOB}-late", terminated(137, "2024-05-01T12:02:30Z", reason="OOMKilled")),
    ]
    observation = observe_job(JOB, complete_job(), pods)
    assert (observation.exit_code, observation.reason) == (0, "Completed")
    assert observation.result is not None
    assert observation.result.outputs == {"gaps": 3}


def test_a_complete_job_whose_succeeded_pod_is_gone_reports_the_pods_it_has() -> None:
    # The succeeded pod was deleted (evicted node, manual cleanup); only a failed one is left.
    pods = [pod_body(f"{JOB}-first", terminated(1, "2024-05-01T12:01:00Z", "first try"), "Failed")]
    observation = observe_job(JOB, complete_job(), pods)
    assert observation.state is JobState.SUCCEEDED
    assert (observation.exit_code, observation.reason) == (1, "Error")
    assert observation.termination_message == "first try"


def test_a_failed_job_reports_its_last_terminated_pod_by_finished_at() -> None:
    # Listed out of order: the API gives no order, the observation sorts by finishedAt.
    pods = [
        pod_body(f"{JOB}-second", terminated(2, "2024-05-01T12:02:00Z", FAILED_MESSAGE), "Failed"),
        pod_body(
            f"{JOB}-third",
            terminated(3, "2024-05-01T12:02:55Z", "killed: out of memory", "OOMKilled"),
            "Failed",
        ),
        pod_body(f"{JOB}-first", terminated(1, "2024-05-01T12:01:00Z", "first"), "Failed"),
    ]
    observation = observe_job(JOB, failed_job(), pods)
    assert observation == JobObservation(
        name=JOB,
        state=JobState.FAILED,
        result=None,
        result_error=observation.result_error,
        exit_code=3,
        reason="OOMKilled",
        termination_message="killed: out of memory",
        job_reason="BackoffLimitExceeded",
        job_message="Job has reached the specified backoff limit",
    )
    assert observation.result_error is not None
    assert observation.result_error.startswith("not a phase result: 'killed: out of memory'")


def test_a_failed_job_whose_worker_wrote_a_failed_result_carries_that_result() -> None:
    pods = [
        pod_body(f"{JOB}-only", terminated(1, "2024-05-01T12:02:00Z", FAILED_MESSAGE), "Failed")
    ]
    observation = observe_job(JOB, failed_job(), pods)
    assert observation.state is JobState.FAILED
    assert observation.result == PhaseResult(
        state=PhaseOutcome.FAILED, next_phase=None, error="source system unreachable"
    )
    assert (observation.result_error, observation.termination_message) == (None, None)
    assert (observation.exit_code, observation.reason) == (1, "Error")


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("Traceback (most recent call last):\n  ...", id="not-json"),
        pytest.param('{"state": "succeeded"', id="cut-mid-json"),
        pytest.param('{"state": "exploded", "next_phase": null}', id="unknown-state"),
        pytest.param('{"state": "succeeded", "next_phase": null, "extra": 1}', id="extra-field"),
        pytest.param("[1, 2, 3]", id="not-an-object"),
    ],
)
def test_a_garbage_termination_message_is_a_result_error(message: str) -> None:
    pods = [pod_body(f"{JOB}-only", terminated(0, "2024-05-01T12:02:00Z", message), "Succeeded")]
    observation = observe_job(JOB, complete_job(), pods)
    assert observation.state is JobState.SUCCEEDED
    assert observation.result is None
    assert observation.result_error is not None
    assert observation.result_error.startswith("not a phase result: ")
    assert observation.termination_message == message.strip()


@pytest.mark.parametrize("message", [None, "", "  \n"])
def test_an_empty_termination_message_is_no_result_and_no_error(message: str | None) -> None:
    pods = [pod_body(f"{JOB}-only", terminated(0, "2024-05-01T12:02:00Z", message), "Succeeded")]
    observation = observe_job(JOB, complete_job(), pods)
    assert (observation.result, observation.result_error, observation.termination_message) == (
        None,
        None,
        None,
    )
    assert observation.exit_code == 0


def test_a_failed_job_without_pods_still_says_why_it_failed() -> None:
    job = job_body(
        condition(
            "Failed",
            "2024-05-01T12:10:00Z",
            reason="DeadlineExceeded",
            message="Job was active longer than specified deadline",
        ),
        failed=1,
    )
    assert observe_job(JOB, job, []) == JobObservation(
        name=JOB,
        state=JobState.FAILED,
        job_reason="DeadlineExceeded",
        job_message="Job was active longer than specified deadline",
    )


# --- pods ----------------------------------------------------------------------------------


def test_a_pod_waiting_on_image_pull_back_off_has_not_started() -> None:
    pod = pod_body(
        f"{JOB}-abcde",
        IMAGE_PULL_BACK_OFF,
        "Pending",
        (condition("PodScheduled", CREATED), condition("Ready", CREATED, status="False")),
    )
    assert pod_evidence(pod) == PodEvidence(
        name=f"{JOB}-abcde",
        phase="Pending",
        created_at=CREATED_AT,
        started=False,
        waiting_reason="ImagePullBackOff",
        waiting_message='Back-off pulling image "ghcr.io/example/missing:1.0"',
        unschedulable=False,
    )


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        pytest.param(RUNNING, "Running", id="running"),
        pytest.param(terminated(0, "2024-05-01T12:02:00Z"), "Succeeded", id="terminated-ok"),
        pytest.param(terminated(1, "2024-05-01T12:02:00Z"), "Failed", id="terminated-error"),
    ],
)
def test_a_running_or_terminated_pod_has_started(state: dict[str, Any], phase: str) -> None:
    evidence = pod_evidence(pod_body(f"{JOB}-abcde", state, phase))
    assert (evidence.started, evidence.phase) == (True, phase)
    assert (evidence.waiting_reason, evidence.waiting_message, evidence.unschedulable) == (
        None,
        None,
        False,
    )


def test_an_unschedulable_pod_without_container_statuses_has_not_started() -> None:
    pod = pod_body(
        f"{JOB}-abcde",
        None,
        "Pending",
        (
            condition(
                "PodScheduled",
                CREATED,
                status="False",
                reason="Unschedulable",
                message="0/1 nodes are available: 1 Insufficient cpu.",
            ),
        ),
    )
    evidence = pod_evidence(pod)
    assert (evidence.started, evidence.unschedulable, evidence.waiting_reason) == (
        False,
        True,
        None,
    )


def test_a_pod_without_a_status_yet_is_unknown_and_not_started() -> None:
    assert pod_evidence({"metadata": {"name": "p"}}) == PodEvidence(
        name="p", phase="Unknown", created_at=None, started=False
    )


# --- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", CREATED_AT),
        ("2024-05-01T12:00:00.123456Z", CREATED_AT.replace(microsecond=123456)),
        ("2024-05-01T14:00:00+02:00", CREATED_AT),
        ("2024-05-01T12:00:00+00:00", CREATED_AT),
        (None, None),
        ("", None),
    ],
)
def test_parse_time_reads_rfc3339_as_aware_datetimes(
    value: str | None, expected: dt.datetime | None
) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        pytest.param(complete_job("2024-05-01T12:03:00Z"), "2024-05-01T12:03:00Z", id="complete"),
        pytest.param(failed_job("2024-05-01T12:04:00Z"), "2024-05-01T12:04:00Z", id="failed"),
        pytest.param(job_body(active=1), None, id="active"),
        pytest.param(None, None, id="missing"),
    ],
)
def test_job_finished_at_comes_from_completion_time_or_the_final_condition(
    job: dict[str, Any] | None, expected: str | None
) -> None:
    assert job_finished_at(job) == parse_time(expected)


def test_a_complete_job_finished_at_its_completion_time_over_its_condition() -> None:
    job = complete_job("2024-05-01T12:03:00Z")
    job["status"]["completionTime"] = "2024-05-01T12:02:59Z"
    assert job_finished_at(job) == parse_time("2024-05-01T12:02:59Z")


def test_job_created_at_is_its_creation_timestamp() -> None:
    assert job_created_at(job_body()) == CREATED_AT
    assert job_created_at(None) is None


@pytest.mark.parametrize(
    ("lease", "expected"),
    [
        pytest.param(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": JOB, "creationTimestamp": CREATED},
                "spec": {
                    "holderIdentity": f"{JOB}-abcde",
                    "leaseDurationSeconds": 30,
                    "acquireTime": "2024-05-01T12:00:01.000000Z",
                    "renewTime": "2024-05-01T12:04:30.250000Z",
                },
            },
            dt.datetime(2024, 5, 1, 12, 4, 30, 250000, tzinfo=dt.UTC),
            id="renewed",
        ),
        pytest.param(
            {"metadata": {"name": JOB}, "spec": {"leaseDurationSeconds": 30}},
            None,
            id="never-renewed",
        ),
        pytest.param(None, None, id="no-lease"),
    ],
)
def test_lease_renewed_at_is_its_micro_time_renew_time(
    lease: dict[str, Any] | None, expected: dt.datetime | None
) -> None:
    assert lease_renewed_at(lease) == expected
