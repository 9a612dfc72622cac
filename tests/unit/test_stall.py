"""Stall rules for a running phase: NoProgress, JobMissing and PodNotStarting."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.stall import (
    NEVER_HEALS_GRACE,
    Finding,
    PodEvidence,
    find_stall,
    heartbeat_every,
    pod_start_timeout,
)
from unit.stall_evidence import (
    ATTEMPT,
    JOB,
    NOW,
    PHASE,
    POD,
    POD_START_TIMEOUT,
    STALL_TIMEOUT,
    TICK,
    base_evidence,
    evidence,
    not_started,
    pending_pod,
    pod,
    stall,
)

pytestmark = pytest.mark.unit


def test_a_healthy_running_flow_is_not_stalled() -> None:
    assert find_stall(evidence()) is None


# --- NoProgress ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("silent_for", "stalled"),
    [
        (STALL_TIMEOUT - TICK, False),
        (STALL_TIMEOUT, False),
        (STALL_TIMEOUT + TICK, True),
        (dt.timedelta(hours=5), True),
    ],
)
def test_a_running_pod_whose_heartbeat_is_older_than_the_stall_timeout_makes_no_progress(
    silent_for: dt.timedelta, stalled: bool
) -> None:
    finding = find_stall(evidence(heartbeat=NOW - silent_for))
    assert (finding is not None) == stalled
    if finding is not None:
        assert finding.reason is ConditionReason.NO_PROGRESS


def test_no_progress_says_how_long_and_carries_the_evidence() -> None:
    finding = stall(evidence(heartbeat=NOW - STALL_TIMEOUT - dt.timedelta(seconds=30)))
    assert finding == Finding(
        ConditionReason.NO_PROGRESS,
        f"phase {PHASE} attempt {ATTEMPT} has not heart-beaten for 630.0s (stall timeout 600s)",
        base_evidence(
            last_heartbeat_age_seconds=630.0,
            stall_timeout_seconds=600.0,
            pods=[{"name": POD, "phase": "Running"}],
        ),
    )


def test_a_long_phase_with_a_fresh_heartbeat_is_not_stalled_however_old_its_progress() -> None:
    e = evidence(last_progress_time=NOW - dt.timedelta(days=2), heartbeat=NOW - STALL_TIMEOUT)
    assert find_stall(e) is None


@pytest.mark.parametrize(
    ("since_progress", "stalled"),
    [(STALL_TIMEOUT, False), (STALL_TIMEOUT + TICK, True)],
)
def test_without_a_heartbeat_the_last_progress_time_counts(
    since_progress: dt.timedelta, stalled: bool
) -> None:
    finding = find_stall(evidence(heartbeat=None, last_progress_time=NOW - since_progress))
    assert (finding is not None) == stalled
    if finding is not None:
        assert finding.reason is ConditionReason.NO_PROGRESS
        assert finding.evidence["last_heartbeat_age_seconds"] is None
        assert finding.evidence["last_progress_age_seconds"] == 600.0


def test_a_stale_heartbeat_is_excused_while_the_phase_has_just_progressed() -> None:
    e = evidence(heartbeat=NOW - dt.timedelta(hours=1), last_progress_time=NOW - STALL_TIMEOUT)
    assert find_stall(e) is None


def test_no_progress_lists_only_the_pods_that_started() -> None:
    retry = pending_pod(name=f"{JOB}-retry", created_at=NOW - dt.timedelta(seconds=5))
    e = evidence(heartbeat=NOW - dt.timedelta(hours=1), pods=(pod(phase="Failed"), retry))
    assert stall(e).evidence["pods"] == [{"name": POD, "phase": "Failed"}]


# --- JobMissing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job",
    [pytest.param(None, id="not-found"), JobObservation(JOB, JobState.MISSING)],
)
def test_a_running_flow_without_its_job_is_stalled_at_once(job: JobObservation | None) -> None:
    # However fresh the heartbeat and the progress: the Job is what runs the phase.
    e = evidence(job=job, pods=(), last_progress_time=NOW - dt.timedelta(seconds=1))
    assert stall(e) == Finding(
        ConditionReason.JOB_MISSING,
        f"phase {PHASE} attempt {ATTEMPT} is running but its Job {JOB} is gone",
        base_evidence(last_progress_age_seconds=1.0),
    )


# --- PodNotStarting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending_for", "stalled"),
    [
        (POD_START_TIMEOUT - TICK, False),
        (POD_START_TIMEOUT, False),
        (POD_START_TIMEOUT + TICK, True),
    ],
)
def test_a_pod_that_has_not_started_within_the_pod_start_timeout_is_stalled(
    pending_for: dt.timedelta, stalled: bool
) -> None:
    finding = find_stall(not_started(NOW - pending_for))
    assert (finding is not None) == stalled
    if finding is not None:
        assert finding.reason is ConditionReason.POD_NOT_STARTING


def test_an_image_pull_back_off_is_named_in_the_message_and_the_evidence() -> None:
    waiting = pending_pod(
        created_at=NOW - dt.timedelta(minutes=7),
        waiting_reason="ImagePullBackOff",
        waiting_message='Back-off pulling image "ghcr.io/example/missing:1.0"',
    )
    e = not_started(NOW - dt.timedelta(minutes=7), pods=(waiting,))
    assert stall(e) == Finding(
        ConditionReason.POD_NOT_STARTING,
        f"the pod of {JOB} has not started in 420.0s "
        '(ImagePullBackOff: Back-off pulling image "ghcr.io/example/missing:1.0")',
        base_evidence(
            last_progress_age_seconds=420.0,
            pods=[
                {
                    "name": POD,
                    "phase": "Pending",
                    "waiting_reason": "ImagePullBackOff",
                    "waiting_message": 'Back-off pulling image "ghcr.io/example/missing:1.0"',
                }
            ],
            pod_start_timeout_seconds=300.0,
        ),
    )


@pytest.mark.parametrize(
    ("pods", "detail"),
    [
        pytest.param(
            (pending_pod(waiting_reason="ErrImagePull"),), "ErrImagePull", id="reason-only"
        ),
        pytest.param(
            (pending_pod(waiting_reason="CreateContainerConfigError", waiting_message="no key"),),
            "CreateContainerConfigError: no key",
            id="reason-and-message",
        ),
        pytest.param((pending_pod(unschedulable=True),), "unschedulable", id="unschedulable"),
        pytest.param(
            (pending_pod(unschedulable=True), pending_pod(waiting_reason="ImagePullBackOff")),
            "ImagePullBackOff",
            id="waiting-reason-before-unschedulable",
        ),
        pytest.param((pending_pod(),), "pending", id="pending-without-reason"),
        pytest.param((), "no pod", id="no-pod"),
    ],
)
def test_pod_not_starting_says_what_holds_the_pod(
    pods: tuple[PodEvidence, ...], detail: str
) -> None:
    since = NOW - dt.timedelta(minutes=6)
    pods = tuple(replace(p, created_at=since) for p in pods)
    finding = stall(not_started(since, pods=pods))
    assert finding.reason is ConditionReason.POD_NOT_STARTING
    assert finding.message == f"the pod of {JOB} has not started in 360.0s ({detail})"


@pytest.mark.parametrize(
    ("job_age", "stalled"),
    [
        (POD_START_TIMEOUT, False),
        (POD_START_TIMEOUT + TICK, True),
    ],
)
def test_without_any_pod_the_job_creation_time_counts(job_age: dt.timedelta, stalled: bool) -> None:
    finding = find_stall(not_started(NOW - job_age, pods=()))
    assert (finding is not None) == stalled
    if finding is not None:
        assert finding.reason is ConditionReason.POD_NOT_STARTING
        assert finding.evidence["pods"] == []


def test_without_pods_or_a_job_creation_time_nothing_is_judged() -> None:
    assert (
        find_stall(not_started(NOW - dt.timedelta(hours=1), pods=(), job_created_at=None)) is None
    )


def test_the_oldest_unstarted_pod_counts() -> None:
    old, new = NOW - POD_START_TIMEOUT - TICK, NOW - dt.timedelta(seconds=5)
    pods = (pending_pod(name="new", created_at=new), pending_pod(name="old", created_at=old))
    finding = stall(not_started(new, pods=pods))
    assert finding.reason is ConditionReason.POD_NOT_STARTING
    assert [p["name"] for p in finding.evidence["pods"]] == ["new", "old"]


def test_pods_without_a_creation_time_fall_back_to_the_job_creation_time() -> None:
    old = NOW - POD_START_TIMEOUT - TICK
    e = not_started(old, pods=(pending_pod(created_at=None),))
    assert stall(e).reason is ConditionReason.POD_NOT_STARTING


def test_once_a_pod_started_the_heartbeat_rules_not_the_pod_start_timeout() -> None:
    # The Job's first pod ran and failed; its replacement is pending past the pod start
    # timeout. The phase did start, and its heartbeat is fresh.
    e = evidence(
        pods=(
            pod(phase="Failed"),
            pending_pod(name="retry", created_at=NOW - dt.timedelta(hours=1)),
        )
    )
    assert find_stall(e) is None


def test_a_heartbeat_shows_the_pod_started_when_no_pod_is_known() -> None:
    # The operator watches only finished pods; a running worker is known by its Lease.
    old = NOW - POD_START_TIMEOUT - TICK
    fresh = not_started(old, pods=(), heartbeat=NOW - dt.timedelta(seconds=5))
    assert find_stall(fresh) is None
    quiet = NOW - STALL_TIMEOUT - TICK
    stale = not_started(quiet, pods=(), heartbeat=quiet)
    assert stall(stale).reason is ConditionReason.NO_PROGRESS


def test_the_pod_start_timeout_follows_a_shorter_stall_timeout_and_the_deadline() -> None:
    assert pod_start_timeout(300, 300, 600) == 300
    assert pod_start_timeout(300, 60, 600) == 60
    assert pod_start_timeout(300, 600, 300) == 240  # always inside the phase's deadline
    assert pod_start_timeout(300, 600, None) == 300


def test_a_reason_that_never_heals_is_declared_after_a_short_grace() -> None:
    created = NOW - NEVER_HEALS_GRACE - dt.timedelta(seconds=1)
    config_error = pending_pod(
        created_at=created, waiting_reason="CreateContainerConfigError", waiting_message="no key"
    )
    finding = stall(not_started(created, pods=(config_error,)))
    assert finding is not None
    assert finding.reason is ConditionReason.POD_NOT_STARTING
    assert "CreateContainerConfigError: no key" in finding.message
    pulling = pending_pod(created_at=created, waiting_reason="ImagePullBackOff")
    assert find_stall(not_started(created, pods=(pulling,))) is None  # may heal: full timeout


@pytest.mark.parametrize(
    ("stall_timeout", "longest", "every"),
    [
        pytest.param(300, 60, 60, id="default-one-write-a-minute"),
        pytest.param(3600, 60, 60, id="long-timeout-capped-by-the-setting"),
        pytest.param(20, 60, 4, id="short-timeout-a-fifth"),
        pytest.param(20, 1, 1, id="the-setting-shortens-it"),
        pytest.param(2, 60, 1, id="never-under-a-second"),
    ],
)
def test_a_worker_beats_every_fifth_of_its_stall_timeout_within_bounds(
    stall_timeout: float, longest: float, every: float
) -> None:
    assert heartbeat_every(stall_timeout, longest) == every
    beats_per_minute = 60 / heartbeat_every(300, 60)
    assert beats_per_minute <= 1
