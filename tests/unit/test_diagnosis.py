"""The diagnosis: what holds a flow, what the operator does next, and when; and the status
that says so."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from collectionflow.api.models import ConditionType, FlowState, RecoveryPolicy
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.diagnosis import (
    Recoveries,
    WaitsFor,
    diagnose,
    held_by_database,
    held_status,
    waiting_status,
)
from collectionflow.domain.machine import decide
from unit.machine_flows import LATER, pending, then
from unit.stall_evidence import NOW, POD_START_TIMEOUT, evidence, not_started, pending_pod, pod

pytestmark = pytest.mark.unit
RETRY = Recoveries(RecoveryPolicy.RETRY_PHASE, 0, 3)
PULLING = "ImagePullBackOff"
KUBELET = 'Back-off pulling image "example.invalid/missing:1"'


def test_an_image_that_cannot_be_pulled_says_so_and_when_the_operator_acts() -> None:
    since = NOW - dt.timedelta(seconds=20)
    pod = pending_pod(created_at=since, waiting_reason=PULLING, waiting_message=KUBELET)
    found = diagnose(not_started(since, pods=(pod,)), RETRY)
    assert found.waits_for is WaitsFor.IMAGE_PULL
    assert found.abnormal
    at = since + POD_START_TIMEOUT
    assert found.next_at == at
    assert found.line() == (
        f"pod cannot start: {PULLING}: {KUBELET}; PodNotStarting at "
        f"{at:%H:%M:%S}Z, then attempt 3 (recovery 1 of 3)"
    )
    assert found.to_json()["evidence"]["waiting_reason"] == PULLING


@pytest.mark.parametrize(
    ("recoveries", "then_"),
    [
        (Recoveries(RecoveryPolicy.FAIL, 0, 3), "then the flow fails (recoveryPolicy Fail)"),
        (Recoveries(RecoveryPolicy.RETRY_PHASE, 3, 3), "fails with RecoveryExhausted (3 of 3"),
    ],
)
def test_the_next_action_follows_the_recovery_policy(recoveries: Recoveries, then_: str) -> None:
    pod = pending_pod(created_at=NOW, waiting_reason=PULLING)
    assert then_ in diagnose(not_started(NOW, pods=(pod,)), recoveries).line()


def test_unschedulable_config_error_and_plain_waits() -> None:
    unschedulable = pending_pod(
        created_at=NOW, unschedulable=True, scheduling_message="0/1 nodes are available"
    )
    found = diagnose(not_started(NOW, pods=(unschedulable,)), RETRY)
    assert found.waits_for is WaitsFor.POD_SCHEDULING
    assert found.summary == "pod cannot be scheduled: 0/1 nodes are available"
    config = pending_pod(created_at=NOW, waiting_reason="CreateContainerConfigError")
    assert diagnose(not_started(NOW, pods=(config,)), RETRY).waits_for is WaitsFor.CONTAINER_CONFIG
    plain = diagnose(not_started(NOW), RETRY)
    assert plain.waits_for is WaitsFor.POD_START
    assert not plain.abnormal


def test_a_healthy_phase_says_its_heartbeat_age_and_when_it_would_be_stalled() -> None:
    found = diagnose(evidence(), RETRY)
    assert found.waits_for is WaitsFor.PHASE
    assert "last heartbeat 20s ago" in found.summary
    assert found.next_action is not None
    assert found.next_action.startswith("NoProgress at ")
    assert not found.abnormal


def test_a_worker_that_stopped_beating_is_said_after_three_missed_beats() -> None:
    lapsed = diagnose(replace(evidence(), heartbeat_interval=dt.timedelta(seconds=5)), RETRY)
    assert (lapsed.waits_for, lapsed.abnormal) == (WaitsFor.HEARTBEAT, True)
    assert "the worker stopped heart-beating: last beat at " in lapsed.summary
    assert "(expected every 5s)" in lapsed.summary
    assert lapsed.next_action is not None
    assert lapsed.next_action.startswith("NoProgress at ")
    beating = diagnose(replace(evidence(), heartbeat_interval=dt.timedelta(seconds=7)), RETRY)
    assert beating.waits_for is WaitsFor.PHASE, "20 s is under three beats of 7 s"


def test_waiting_for_input_suspended_database_and_at_rest() -> None:
    remind = NOW + dt.timedelta(hours=1)
    waiting = diagnose(
        evidence(state=FlowState.WAITING_FOR_INPUT),
        RETRY,
        input_requested_at=NOW,
        reminder_at=remind,
    )
    assert (waiting.waits_for, waiting.next_at) == (WaitsFor.INPUT, remind)
    assert diagnose(evidence(state=FlowState.SUSPENDED), RETRY).waits_for is WaitsFor.SUSPENDED
    held = diagnose(evidence(), RETRY, database_down_since=NOW)
    assert (held.waits_for, held.abnormal) == (WaitsFor.DATABASE, True)
    assert diagnose(evidence(state=FlowState.SUCCEEDED), RETRY).waits_for is WaitsFor.NOTHING


def test_the_status_says_what_holds_the_flow_once_and_takes_it_back() -> None:
    flow = pending()
    flow = then(flow, decide(flow, None, NOW))
    pod = pending_pod(created_at=NOW, waiting_reason=PULLING, waiting_message=KUBELET)
    held = diagnose(not_started(NOW, pods=(pod,)), RETRY)
    status = waiting_status(flow, held, LATER)
    assert status is not None
    assert status.message == held.line()
    reconciling = status.condition(ConditionType.RECONCILING)
    assert reconciling is not None
    assert (reconciling.status, reconciling.reason) == ("True", ConditionReason.WAITING)
    assert status.state is FlowState.RUNNING
    waiting = replace(flow, status=status)
    assert waiting_status(waiting, held, LATER) is None  # said already
    moving = waiting_status(waiting, diagnose(evidence(), RETRY), LATER)
    assert moving is not None
    assert moving.message == "running phase initialization (attempt 1)"
    assert waiting_status(flow, diagnose(evidence(), RETRY), LATER) is None


def test_a_flow_whose_first_job_a_quota_refused_says_so_and_stays_pending() -> None:
    flow = pending()
    said = held_status(flow, "creating demo-initialization-1 was refused (exceeded quota)", NOW)
    assert said.state is FlowState.PENDING
    assert (said.message or "").startswith("creating demo-initialization-1 was refused")
    reconciling = said.condition(ConditionType.RECONCILING)
    assert reconciling is not None
    assert (reconciling.status, reconciling.reason) == ("True", ConditionReason.WAITING)


def test_a_reader_without_the_database_learns_of_its_outage_from_the_status() -> None:
    flow = pending()
    flow = then(flow, decide(flow, None, NOW))
    assert not held_by_database(flow.status)
    held = diagnose(evidence(), RETRY, database_down_since=NOW)
    status = waiting_status(flow, held, LATER)
    assert status is not None
    assert held_by_database(status)
    said = diagnose(evidence(), RETRY, database_held=True)
    assert (said.waits_for, said.since) == (WaitsFor.DATABASE, None)


def test_a_built_in_worker_silent_since_its_pod_started_is_said() -> None:
    started = NOW - dt.timedelta(seconds=20)
    running = (pod(started_at=started),)
    silent = evidence(
        heartbeat=None,
        pods=running,
        expects_heartbeat=True,
        heartbeat_interval=dt.timedelta(seconds=5),
    )
    found = diagnose(silent, RETRY)
    assert (found.waits_for, found.abnormal) == (WaitsFor.HEARTBEAT, True)
    assert f"has not beaten since its pod started at {started:%H:%M:%S}Z" in found.summary
    young = replace(silent, pods=(pod(started_at=NOW - dt.timedelta(seconds=10)),))
    assert diagnose(young, RETRY).waits_for is WaitsFor.FIRST_HEARTBEAT, "not three beats yet"
    own_command = replace(silent, expects_heartbeat=False)
    assert diagnose(own_command, RETRY).waits_for is WaitsFor.FIRST_HEARTBEAT, (
        "a phase's own command need not beat"
    )


def test_a_pod_that_started_without_a_heartbeat_waits_for_the_worker() -> None:
    found = diagnose(evidence(heartbeat=None), RETRY)
    assert found.waits_for is WaitsFor.FIRST_HEARTBEAT
    assert found.next_action is not None
    assert found.next_action.startswith("NoProgress at")
