"""Stall rules around a phase's end: MissedCompletion, DatabaseDrift, flows not running, and
input reminders.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectionflow.api.models import FlowState
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.records import ChildSnapshot
from collectionflow.domain.stall import (
    MISSED_COMPLETION_GRACE,
    Finding,
    caught_up_message,
    find_stall,
    input_reminder_due,
    missed_completion,
)
from unit.stall_evidence import (
    ATTEMPT,
    JOB,
    NOT_RUNNING,
    NOW,
    PHASE,
    REMIND_AFTER,
    TICK,
    child,
    evidence,
    finished,
    pending_pod,
    stall,
)

pytestmark = pytest.mark.unit


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
        assert finding.reason is ConditionReason.MISSED_COMPLETION
        assert finding.evidence["job_state"] == state.value


@pytest.mark.parametrize("state", [JobState.SUCCEEDED, JobState.FAILED])
def test_a_missed_completion_says_when_the_job_finished(state: JobState) -> None:
    finding = stall(finished(state, NOW - dt.timedelta(seconds=90)))
    assert finding == Finding(
        ConditionReason.MISSED_COMPLETION,
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
    assert stall(e).reason is ConditionReason.MISSED_COMPLETION


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
        ConditionReason.DATABASE_DRIFT,
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
    assert stall(e).reason is ConditionReason.DATABASE_DRIFT


def test_a_running_stall_is_reported_before_drift() -> None:
    e = evidence(job=None, database_child=child(status="failed"), expected_child=child())
    assert stall(e).reason is ConditionReason.JOB_MISSING


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


def test_a_completion_caught_up_says_which_job_ended_how_and_when() -> None:
    finding = stall(finished(JobState.SUCCEEDED, NOW - dt.timedelta(seconds=90)))
    assert caught_up_message(finding) == (
        f"Job {JOB} finished (Succeeded) 90.0s ago, while the operator was not running or the "
        "database was out; advanced without rerunning it"
    )
