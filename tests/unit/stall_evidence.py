"""Stall evidence for the stall-rule tests: a long running phase, its pods, Job and child."""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectionflow.api.models import FlowState
from collectionflow.api.names import job_name
from collectionflow.domain.decision import JobObservation, JobState
from collectionflow.domain.records import ChildSnapshot
from collectionflow.domain.stall import (
    Evidence,
    Finding,
    PodEvidence,
    find_stall,
)

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
