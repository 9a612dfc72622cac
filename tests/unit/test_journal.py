"""Every journal entry the operator writes, and the keys that make a second write harmless."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import Failure
from collectionflow.domain.journal import (
    MAX_KEY,
    failure_entry,
    fallback_entry,
    outage_entry,
    stall_entry,
)
from collectionflow.domain.records import FlowIds
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan
from collectionflow.domain.stall import Finding
from unit.machine_flows import NOW, at

pytestmark = pytest.mark.unit
IDS = FlowIds(master_flow_id="m-1", child_flow_id="c-1")


def test_a_failure_is_keyed_by_phase_attempt_and_operation() -> None:
    first = at("gap_analysis")
    flow = replace(first, status=first.status.model_copy(update={"attempt": 2}))
    failure = Failure("run_phase", "exit code 3", "finalization", "retry", {"exit_code": 3})
    entry = failure_entry(flow, failure, IDS)
    assert entry.dedupe_key == f"{flow.uid}:gap_analysis:2:run_phase"
    assert (entry.ids, entry.phase, entry.error_message) == (IDS, "gap_analysis", "exit code 3")
    assert (entry.next_phase, entry.agent_decision) == ("finalization", "retry")
    assert entry.diagnostics == {"exit_code": 3}
    assert failure_entry(flow, failure, None).ids is None


def test_a_stall_is_keyed_by_attempt_and_reason_and_a_resync_by_its_time() -> None:
    flow = at("gap_analysis")
    finding = Finding(ConditionReason.NO_PROGRESS, "no heartbeat", {"age": 1})
    rerun = RecoveryPlan(RecoveryAction.RETRY_PHASE, summary="attempt 2")
    entry = stall_entry(flow, "stall_detected", finding, rerun, NOW)
    assert entry.dedupe_key == f"{flow.uid}:gap_analysis:1:stall_detected:NoProgress"
    assert entry.source == "stall-monitor"
    assert entry.diagnostics["evidence"] == {"age": 1}
    resync = RecoveryPlan(RecoveryAction.RESYNC, summary="re-synced")
    drift = Finding(ConditionReason.DATABASE_DRIFT, "drift")
    later = NOW + dt.timedelta(seconds=1)
    keys = {stall_entry(flow, "recovered", drift, resync, t).dedupe_key for t in (NOW, later)}
    assert len(keys) == 2, "each re-sync is its own row"


def test_fallback_and_outage_rows_and_every_key_within_the_column() -> None:
    flow = at("gap_analysis")
    fallback = fallback_entry(flow, "j" * 300, "runs in-process", 403)
    assert len(fallback.dedupe_key) == MAX_KEY
    assert fallback.diagnostics == {"status": 403, "job": "j" * 300}
    outage = outage_entry(flow.uid, flow.status, NOW, NOW + dt.timedelta(seconds=61))
    assert outage.error_message is not None
    assert outage.error_message.startswith("the database was unavailable from 12:00:00Z for 61s")
    assert outage.phase == "gap_analysis"
    assert outage_entry(flow.uid, None, NOW, NOW).phase is None
