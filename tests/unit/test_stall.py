"""The stall rules, judged against a fixed clock: every reason and every boundary.

A timeout is crossed 1 µs after it expires: exactly at the timeout a flow is not yet stalled.
The one exception is the grace of a finished Job, which is missed from the grace on (pinned
below). Waiting for input is never a stall; it earns a reminder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from collectionflow.api.models import FlowState
from collectionflow.api.names import job_name
from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.records import ChildSnapshot
from collectionflow.domain.stall import (
    MISSED_COMPLETION_GRACE,
    Evidence,
    Finding,
    PodEvidence,
    StallReason,
    find_stall,
    input_reminder_due,
    missed_completion,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
TICK = dt.timedelta(microseconds=1)
STALL_TIMEOUT = dt.timedelta(minutes=10)
POD_START_TIMEOUT = dt.timedelta(minutes=5)
REMIND_AFTER = dt.timedelta(hours=1)
PHASE = "gap_analysis"
ATTEMPT = 2
JOB = job_name("demo", PHASE, ATTEMPT)
POD = f"{JOB}-x7k2p"
# A long phase: it started half an hour ago and has been heart-beating since.
PHASE_STARTED = NOW - dt.timedelta(minutes=30)
NOT_RUNNING = [s for s in FlowState if s is not FlowState.RUNNING]


# --- builders ------------------------------------------------------------------------------


def pod(**fields: Any) -> PodEvidence:
    """A pod of the current Job, running since the phase started."""
    defaults: dict[str, Any] = {
        "name": POD,
        "phase": "Running",
        "created_at": PHASE_STARTED,
        "started": True,
    }
    return PodEvidence(**(defaults | fields))


def pending_pod(**fields: Any) -> PodEvidence:
    return pod(**({"phase": "Pending", "started": False} | fields))


def evidence(**fields: Any) -> Evidence:
    """A healthy Running flow: active Job, running pod, heartbeat 20 s ago."""
    defaults: dict[str, Any] = {
        "now": NOW,
        "state": FlowState.RUNNING,
        "phase": PHASE,
        "attempt": ATTEMPT,
        "current_job": JOB,
        "last_progress_time": PHASE_STARTED,
        "stall_timeout": STALL_TIMEOUT,
        "pod_start_timeout": POD_START_TIMEOUT,
        "heartbeat": NOW - dt.timedelta(seconds=20),
        "job": JobObservation(JOB, JobState.ACTIVE),
        "job_created_at": PHASE_STARTED,
        "pods": (pod(),),
    }
    return Evidence(**(defaults | fields))


def not_started(since: dt.datetime, **fields: Any) -> Evidence:
    """A fresh attempt whose Job and pod exist since `since` and which never heart-beat."""
    return evidence(
        **(
            {
                "last_progress_time": since,
                "heartbeat": None,
                "job_created_at": since,
                "pods": (pending_pod(created_at=since),),
            }
            | fields
        )
    )


def finished(state: JobState, at: dt.datetime | None, **fields: Any) -> Evidence:
    return evidence(job=JobObservation(JOB, state, exit_code=0), job_finished_at=at, **fields)


def child(**fields: Any) -> ChildSnapshot:
    defaults: dict[str, Any] = {
        "current_phase": PHASE,
        "next_phase": "questionnaire_generation",
        "status": PHASE,
        "progress_percentage": 42,
        "phase_state": {"state": "Running", "attempt": ATTEMPT},
    }
    return ChildSnapshot(**(defaults | fields))


def base_evidence(**fields: Any) -> dict[str, Any]:
    """What every finding about a running phase carries."""
    return {
        "phase": PHASE,
        "attempt": ATTEMPT,
        "job": JOB,
        "last_progress_age_seconds": 1800.0,
    } | fields


def stall(e: Evidence) -> Finding:
    finding = find_stall(e)
    assert finding is not None, e
    return finding


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
        assert finding.reason is StallReason.NO_PROGRESS


def test_no_progress_says_how_long_and_carries_the_evidence() -> None:
    finding = stall(evidence(heartbeat=NOW - STALL_TIMEOUT - dt.timedelta(seconds=30)))
    assert finding == Finding(
        StallReason.NO_PROGRESS,
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
        assert finding.reason is StallReason.NO_PROGRESS
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
        StallReason.JOB_MISSING,
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
        assert finding.reason is StallReason.POD_NOT_STARTING


def test_an_image_pull_back_off_is_named_in_the_message_and_the_evidence() -> None:
    waiting = pending_pod(
        created_at=NOW - dt.timedelta(minutes=7),
        waiting_reason="ImagePullBackOff",
        waiting_message='Back-off pulling image "ghcr.io/example/missing:1.0"',
    )
    e = not_started(NOW - dt.timedelta(minutes=7), pods=(waiting,))
    assert stall(e) == Finding(
        StallReason.POD_NOT_STARTING,
        f"the pod of {JOB} has not started in 420.0s "
        '(ImagePullBackOff: Back-off pulling image "ghcr.io/example/missing:1.0")',
        base_evidence(
            last_progress_age_seconds=420.0,
            pods=[{"name": POD, "phase": "Pending", "waiting_reason": "ImagePullBackOff"}],
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
        pytest.param((pending_pod(),), "no pod", id="pending-without-reason"),
        pytest.param((), "no pod", id="no-pod"),
    ],
)
def test_pod_not_starting_says_what_holds_the_pod(
    pods: tuple[PodEvidence, ...], detail: str
) -> None:
    since = NOW - dt.timedelta(minutes=6)
    pods = tuple(replace(p, created_at=since) for p in pods)
    finding = stall(not_started(since, pods=pods))
    assert finding.reason is StallReason.POD_NOT_STARTING
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
        assert finding.reason is StallReason.POD_NOT_STARTING
        assert finding.evidence["pods"] == []


def test_without_pods_or_a_job_creation_time_nothing_is_judged() -> None:
    assert (
        find_stall(not_started(NOW - dt.timedelta(hours=1), pods=(), job_created_at=None)) is None
    )


def test_the_oldest_unstarted_pod_counts() -> None:
    old, new = NOW - POD_START_TIMEOUT - TICK, NOW - dt.timedelta(seconds=5)
    pods = (pending_pod(name="new", created_at=new), pending_pod(name="old", created_at=old))
    finding = stall(not_started(new, pods=pods))
    assert finding.reason is StallReason.POD_NOT_STARTING
    assert [p["name"] for p in finding.evidence["pods"]] == ["new", "old"]


def test_pods_without_a_creation_time_fall_back_to_the_job_creation_time() -> None:
    old = NOW - POD_START_TIMEOUT - TICK
    e = not_started(old, pods=(pending_pod(created_at=None),))
    assert stall(e).reason is StallReason.POD_NOT_STARTING


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


# --- MissedCompletion ----------------------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
@pytest.mark.parametrize(
    ("finished_ago", "missed"),
    [
        (dt.timedelta(0), False),
        (MISSED_COMPLETION_GRACE - TICK, False),
        # Unlike the timeouts, the grace is inclusive: at the grace the completion is missed.
        (MISSED_COMPLETION_GRACE, True),
        (MISSED_COMPLETION_GRACE + TICK, True),
        (dt.timedelta(hours=1), True),
    ],
)
def test_a_finished_job_not_acted_on_within_the_grace_is_a_missed_completion(
    state: JobState, finished_ago: dt.timedelta, missed: bool
) -> None:
    finding = find_stall(finished(state, NOW - finished_ago))
    assert (finding is not None) == missed
    if finding is not None:
        assert finding.reason is StallReason.MISSED_COMPLETION
        assert finding.evidence["job_state"] == state.value


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
def test_a_missed_completion_says_when_the_job_finished(state: JobState) -> None:
    finding = stall(finished(state, NOW - dt.timedelta(seconds=90)))
    assert finding == Finding(
        StallReason.MISSED_COMPLETION,
        f"Job {JOB} finished ({state.value}) 90.0s ago but the flow did not advance",
        {
            "phase": PHASE,
            "attempt": ATTEMPT,
            "job": JOB,
            "job_state": state.value,
            "job_finished_age_seconds": 90.0,
        },
    )


def test_the_grace_of_a_finished_job_can_be_set() -> None:
    grace = dt.timedelta(minutes=2)
    e = finished(JobState.SUCCEEDED, NOW - dt.timedelta(minutes=1), missed_completion_grace=grace)
    assert find_stall(e) is None
    e = finished(JobState.SUCCEEDED, NOW - grace, missed_completion_grace=grace)
    assert stall(e).reason is StallReason.MISSED_COMPLETION


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
def test_a_job_that_just_finished_is_no_stall_however_stale_its_heartbeat(
    state: JobState,
) -> None:
    e = finished(
        state,
        NOW - dt.timedelta(seconds=1),
        heartbeat=NOW - dt.timedelta(hours=2),
        last_progress_time=NOW - dt.timedelta(hours=2),
        pods=(pending_pod(created_at=NOW - dt.timedelta(hours=2)),),
    )
    assert find_stall(e) is None


def test_a_finished_job_without_a_finish_time_is_not_judged() -> None:
    assert find_stall(finished(JobState.SUCCEEDED, None)) is None


@pytest.mark.parametrize("state", NOT_RUNNING)
def test_a_missed_completion_needs_a_running_flow(state: FlowState) -> None:
    job = JobObservation(JOB, JobState.SUCCEEDED)
    late = NOW - dt.timedelta(hours=1)
    assert missed_completion(state, PHASE, 1, job, late, NOW, MISSED_COMPLETION_GRACE) is None
    running = missed_completion(
        FlowState.RUNNING, PHASE, 1, job, late, NOW, MISSED_COMPLETION_GRACE
    )
    assert running is not None


# --- DatabaseDrift -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "database_value"),
    [
        ("current_phase", "platform_detection"),
        ("next_phase", None),
        ("status", "failed"),
        ("progress_percentage", 28),
    ],
)
def test_each_differing_field_is_database_drift(field: str, database_value: Any) -> None:
    want = child()
    e = evidence(database_child=child(**{field: database_value}), expected_child=want)
    assert stall(e) == Finding(
        StallReason.DATABASE_DRIFT,
        f"the database's child record disagrees with the flow: {field}",
        {
            "phase": PHASE,
            "attempt": ATTEMPT,
            "differences": {field: {"database": database_value, "flow": getattr(want, field)}},
        },
    )


def test_drift_names_every_differing_field_in_order() -> None:
    have = child(status="paused", current_phase="initialization", progress_percentage=0)
    finding = stall(evidence(database_child=have, expected_child=child()))
    assert finding.message.endswith(": current_phase, progress_percentage, status")
    assert set(finding.evidence["differences"]) == {
        "current_phase",
        "progress_percentage",
        "status",
    }


def test_only_the_mirrored_fields_count_as_drift() -> None:
    have = child(phase_state={"state": "Pending"}, progress_percentage=42.0)
    assert find_stall(evidence(database_child=have, expected_child=child())) is None


def test_a_cancelled_child_record_is_not_drift() -> None:
    have = child(status="cancelled", current_phase=None)
    assert find_stall(evidence(database_child=have, expected_child=child())) is None


@pytest.mark.parametrize(
    ("database_child", "expected_child"),
    [
        pytest.param(None, child(), id="no-database-record"),
        pytest.param(child(status="failed"), None, id="nothing-expected"),
        pytest.param(None, None, id="neither"),
    ],
)
def test_without_both_records_there_is_no_drift(
    database_child: ChildSnapshot | None, expected_child: ChildSnapshot | None
) -> None:
    e = evidence(database_child=database_child, expected_child=expected_child)
    assert find_stall(e) is None


@pytest.mark.parametrize("state", list(FlowState))
def test_drift_is_found_in_every_state(state: FlowState) -> None:
    e = evidence(state=state, database_child=child(status="failed"), expected_child=child())
    assert stall(e).reason is StallReason.DATABASE_DRIFT


def test_a_running_stall_is_reported_before_drift() -> None:
    e = evidence(job=None, database_child=child(status="failed"), expected_child=child())
    assert stall(e).reason is StallReason.JOB_MISSING


# --- not running ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", NOT_RUNNING)
@pytest.mark.parametrize(
    "looks_stuck",
    [
        pytest.param({"job": None}, id="no-job"),
        pytest.param(
            {
                "heartbeat": NOW - dt.timedelta(days=3),
                "last_progress_time": NOW - dt.timedelta(days=3),
            },
            id="silent-for-days",
        ),
        pytest.param(
            {"pods": (pending_pod(created_at=NOW - dt.timedelta(days=3)),)}, id="pod-never-started"
        ),
        pytest.param(
            {
                "job": JobObservation(JOB, JobState.SUCCEEDED),
                "job_finished_at": NOW - dt.timedelta(days=3),
            },
            id="job-finished-long-ago",
        ),
    ],
)
def test_a_flow_that_is_not_running_is_never_stalled(
    state: FlowState, looks_stuck: dict[str, Any]
) -> None:
    assert find_stall(evidence(state=state, **looks_stuck)) is None


# --- input reminders -----------------------------------------------------------------------


def reminder_due(
    requested_at: dt.datetime | None,
    last_reminder: dt.datetime | None = None,
    state: FlowState = FlowState.WAITING_FOR_INPUT,
) -> bool:
    return input_reminder_due(state, requested_at, last_reminder, NOW, REMIND_AFTER)


@pytest.mark.parametrize(
    ("waiting_for", "due"),
    [
        (dt.timedelta(0), False),
        (REMIND_AFTER - TICK, False),
        (REMIND_AFTER, True),
        (REMIND_AFTER * 5, True),
    ],
)
def test_the_first_reminder_is_due_once_the_flow_waited_reminder_after(
    waiting_for: dt.timedelta, due: bool
) -> None:
    assert reminder_due(NOW - waiting_for) is due


@pytest.mark.parametrize(
    ("since_reminder", "due"),
    [
        (REMIND_AFTER - TICK, False),
        (REMIND_AFTER, True),
    ],
)
def test_later_reminders_are_measured_from_the_last_one(
    since_reminder: dt.timedelta, due: bool
) -> None:
    assert reminder_due(NOW - REMIND_AFTER * 10, NOW - since_reminder) is due


def test_a_reminder_from_an_earlier_wait_does_not_count() -> None:
    # The flow was reminded while waiting for an earlier manual phase, then waited again.
    reminded_long_ago = NOW - REMIND_AFTER * 3
    assert reminder_due(NOW - REMIND_AFTER + TICK, reminded_long_ago) is False
    assert reminder_due(NOW - REMIND_AFTER, reminded_long_ago) is True


@pytest.mark.parametrize("state", [s for s in FlowState if s is not FlowState.WAITING_FOR_INPUT])
def test_only_a_flow_waiting_for_input_is_reminded(state: FlowState) -> None:
    assert reminder_due(NOW - REMIND_AFTER * 10, state=state) is False


def test_a_waiting_flow_without_a_request_time_is_not_reminded() -> None:
    assert reminder_due(None, NOW - REMIND_AFTER * 10) is False
