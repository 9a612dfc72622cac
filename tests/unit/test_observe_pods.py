"""Reading a phase's pods and times: pod evidence, creation, finish and Lease renewal times."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectionflow.domain.observe import (
    job_created_at,
    job_finished_at,
    lease_renewed_at,
    parse_time,
    pod_evidence,
)
from collectionflow.domain.stall import PodEvidence
from unit.job_bodies import (
    CREATED,
    CREATED_AT,
    IMAGE_PULL_BACK_OFF,
    JOB,
    RUNNING,
    complete_job,
    condition,
    failed_job,
    job_body,
    pod_body,
    terminated,
)

pytestmark = pytest.mark.unit


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


JOB_UID = "0b7c6d1e-0000-4000-8000-000000000001"
LEASE_JOB = {"metadata": {"name": JOB, "uid": JOB_UID}}


@pytest.mark.parametrize(
    ("lease", "expected"),
    [
        pytest.param(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": JOB,
                    "creationTimestamp": CREATED,
                    "ownerReferences": [{"kind": "Job", "name": JOB, "uid": JOB_UID}],
                },
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
    assert lease_renewed_at(lease, LEASE_JOB) == expected


def trusted_lease(**changes: Any) -> dict[str, Any]:
    lease: dict[str, Any] = {
        "metadata": {"name": JOB, "ownerReferences": [{"uid": JOB_UID}]},
        "spec": {"holderIdentity": f"{JOB}-abcde", "renewTime": "2024-05-01T12:04:30.250000Z"},
    }
    for key, value in changes.items():
        section = "metadata" if key == "ownerReferences" else "spec"
        lease[section][key] = value
    return lease


@pytest.mark.parametrize(
    "lease",
    [
        pytest.param(trusted_lease(ownerReferences=[]), id="no-owner"),
        pytest.param(trusted_lease(ownerReferences=[{"uid": "another-job"}]), id="other-owner"),
        pytest.param(trusted_lease(holderIdentity="someone-else"), id="other-holder"),
        pytest.param(trusted_lease(holderIdentity=JOB), id="the-job-not-its-pod"),
        pytest.param(trusted_lease(holderIdentity=None), id="no-holder"),
        pytest.param(trusted_lease(renewTime="not a time"), id="garbage-time"),
    ],
)
def test_a_lease_not_owned_by_the_attempts_job_and_held_by_its_pod_proves_nothing(
    lease: dict[str, Any],
) -> None:
    assert lease_renewed_at(trusted_lease(), LEASE_JOB) is not None
    assert lease_renewed_at(lease, LEASE_JOB) is None
    assert lease_renewed_at(trusted_lease(), None) is None
