"""Reading a phase Job: its state, result and failure, from the Job and its pods."""

from __future__ import annotations

from typing import Any

import pytest

from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.observe import (
    heartbeat_seconds_of,
    observe_job,
)
from collectionflow.domain.results import PhaseOutcome, PhaseResult
from unit.job_bodies import (
    CREATED,
    FAILED_MESSAGE,
    JOB,
    RUNNING,
    SUCCEEDED_MESSAGE,
    complete_job,
    condition,
    failed_job,
    job_body,
    pod_body,
    terminated,
)

pytestmark = pytest.mark.unit


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


def test_the_heartbeat_interval_a_job_gave_its_worker() -> None:
    def job(*env: dict[str, str]) -> dict[str, Any]:
        return {"spec": {"template": {"spec": {"containers": [{"env": list(env)}]}}}}

    name = "COLLECTIONFLOW_HEARTBEAT_SECONDS"
    assert heartbeat_seconds_of(job({"name": name, "value": "2.5"})) == 2.5
    assert heartbeat_seconds_of(job({"name": name, "value": "soon"})) is None
    assert heartbeat_seconds_of(job({"name": name, "value": "-1"})) is None
    assert heartbeat_seconds_of(job()) is None
    assert heartbeat_seconds_of(None) is None
