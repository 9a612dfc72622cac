"""What the stall sweep decides about a flow from what the operator knows (`domain.sweep`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from collectionflow.api.kube import micro_time
from collectionflow.domain.evidence import Timeouts
from collectionflow.domain.machine import decide
from collectionflow.domain.sweep import Excuses, Known, Look, Outage, SweepRules, look
from unit.machine_flows import NOW, at, pending, then

pytestmark = pytest.mark.unit
RULES = SweepRules(
    Timeouts(
        stall_timeout_seconds=600,
        pod_start_timeout_seconds=300,
        missed_completion_grace_seconds=15,
        heartbeat_seconds=5,
    ),
    input_reminder=dt.timedelta(hours=1),
    max_recoveries=3,
    recheck=dt.timedelta(hours=2),
)
JOB_UID = "0b5d6c0e-7f0e-4d3a-9b53-6a1f0c1d2e3f"


def running() -> Any:
    flow = pending()
    return then(flow, decide(flow, None, NOW))  # initialization runs since NOW


def attempt(flow: Any, beat: dt.datetime) -> Known:
    """The running attempt's Job, and its Lease last renewed at `beat`."""
    name = flow.status.current_job
    job = {
        "metadata": {"name": name, "uid": JOB_UID, "creationTimestamp": micro_time(NOW)},
        "status": {"startTime": micro_time(NOW), "active": 1},
    }
    lease = {
        "metadata": {"ownerReferences": [{"uid": JOB_UID}]},
        "spec": {"holderIdentity": f"{name}-x7k2p", "renewTime": micro_time(beat)},
    }
    return Known(Excuses(NOW), job=job, lease=lease)


def test_a_moving_flow_is_left_alone() -> None:
    flow = running()
    now = NOW + dt.timedelta(seconds=30)
    assert look(flow, attempt(flow, now - dt.timedelta(seconds=2)), RULES, now) is Look.NOTHING


def test_a_worker_silent_past_the_stall_timeout_is_checked() -> None:
    flow = running()
    now = NOW + dt.timedelta(minutes=11)
    assert look(flow, attempt(flow, NOW), RULES, now) is Look.CHECK


def test_a_worker_that_missed_three_beats_is_said_and_the_word_taken_back() -> None:
    flow = running()
    now = NOW + dt.timedelta(seconds=60)
    lapsed = attempt(flow, now - dt.timedelta(seconds=20))
    assert look(flow, lapsed, RULES, now) is Look.SAY
    beating = attempt(flow, now - dt.timedelta(seconds=1))
    assert look(flow, beating, RULES, now) is Look.NOTHING


def test_a_reminder_due_is_checked() -> None:
    waiting = at("manual_collection")
    assert look(waiting, Known(Excuses(NOW)), RULES, NOW + dt.timedelta(minutes=59)) is (
        Look.NOTHING
    )
    assert look(waiting, Known(Excuses(NOW)), RULES, NOW + dt.timedelta(minutes=61)) is Look.CHECK


def test_an_unnoticed_end_is_excused_by_a_start_a_late_watch_or_an_outage() -> None:
    grace = dt.timedelta(seconds=15)
    ended = NOW - dt.timedelta(minutes=5)
    later = NOW + dt.timedelta(minutes=5)
    assert Excuses(NOW).cover(ended, later, grace), "before this operator acted"
    assert not Excuses(NOW - dt.timedelta(hours=1)).cover(ended, later, grace)
    since = Excuses(NOW - dt.timedelta(hours=1))
    assert since.cover(ended, later, grace, seen_at=later - dt.timedelta(seconds=3))
    down = replace(since, outages=(Outage(down_since=NOW),))
    assert down.cover(ended, later, grace)
    back = replace(since, outages=(Outage(back_at=later - dt.timedelta(seconds=5)),))
    assert back.cover(ended, later, grace)
    assert not back.cover(ended, later + dt.timedelta(minutes=1), grace)


def test_a_running_flow_whose_job_ended_unnoticed_but_excused_is_woken() -> None:
    flow = running()
    known = attempt(flow, NOW)
    assert known.job is not None
    done = {
        **known.job,
        "status": {
            "completionTime": micro_time(NOW),
            "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": micro_time(NOW)}
            ],
        },
    }
    later = NOW + dt.timedelta(minutes=5)
    # This operator took the lead after the Job ended: not a missed completion, but woken.
    excused = replace(known, job=done, excuses=Excuses(later))
    assert look(flow, excused, RULES, later) is Look.WAKE
