"""Every failure-journal entry the operator writes, built here and only here: what each row
says, and the key that makes writing it twice harmless (`JournalEntry.dedupe_key`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from collectionflow.api.models import CollectionFlowStatus
from collectionflow.domain.decision import Failure, FlowView
from collectionflow.domain.diagnosis import clock
from collectionflow.domain.records import FlowIds, JournalEntry, recorded_ids
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan
from collectionflow.domain.stall import Finding

MAX_KEY = 255


def _key(uid: str, *parts: object) -> str:
    return ":".join([uid, *(str(p) for p in parts)])[:MAX_KEY]


def failure_entry(view: FlowView, failure: Failure, ids: FlowIds | None) -> JournalEntry:
    """A decision's failure: a phase that failed, a spec or input refused, ... `ids`: the flow's
    database rows, which the controller may have created since `view` was read."""
    status = view.status
    key = _key(view.uid, status.phase, status.attempt, failure.operation)
    entry = _flow_entry(
        view.uid,
        status,
        "operator",
        failure.operation,
        key,
        failure.error_message,
        failure.diagnostics,
    )
    return replace(
        entry, ids=ids, next_phase=failure.next_phase, agent_decision=failure.agent_decision
    )


def stall_entry(
    view: FlowView, operation: str, finding: Finding, plan: RecoveryPlan, now: dt.datetime
) -> JournalEntry:
    """A stall found (`stall_detected`) or recovered (`recovered`), with its evidence. A
    re-sync may recur for one attempt, so its key carries the time."""
    status = view.status
    parts: list[object] = [status.phase, status.attempt, operation, finding.reason.value]
    if plan.action is RecoveryAction.RESYNC:
        parts.append(now.isoformat())
    diagnostics = {
        "reason": finding.reason.value,
        "action": plan.action.value,
        "summary": plan.summary,
        "evidence": finding.evidence,
        "recoveries": status.recoveries,
        "attempts": [
            {"phase": h.name, "attempt": h.attempt, "state": h.state.value, "job": h.job_name}
            for h in status.phase_history
            if h.name == status.phase
        ],
    }
    return _flow_entry(
        view.uid,
        status,
        "stall-monitor",
        operation,
        _key(view.uid, *parts),
        finding.message,
        diagnostics,
    )


def fallback_entry(view: FlowView, job_name: str, message: str, api_status: int) -> JournalEntry:
    """A phase run in the operator's process because its Job was refused."""
    return _flow_entry(
        view.uid,
        view.status,
        "operator",
        "fallback_runner",
        _key(view.uid, job_name, "fallback_runner"),
        message,
        {"status": api_status, "job": job_name},
    )


def outage_entry(
    uid: str, status: CollectionFlowStatus | None, since: dt.datetime, now: dt.datetime
) -> JournalEntry:
    """How long a database outage held a flow, written once the database answers."""
    held = (now - since).total_seconds()
    message = (
        f"the database was unavailable from {clock(since)} for {held:.0f}s; the flow was "
        "held, and caught up once it answered"
    )
    return _flow_entry(
        uid,
        status,
        "operator",
        "database_unavailable",
        _key(uid, "database_unavailable", since.isoformat()),
        message,
        {"held_seconds": round(held, 1), "since": since.isoformat()},
    )


def _flow_entry(
    uid: str,
    status: CollectionFlowStatus | None,
    source: str,
    operation: str,
    key: str,
    message: str,
    diagnostics: dict[str, Any],
) -> JournalEntry:
    return JournalEntry(
        source=source,
        operation=operation,
        dedupe_key=key,
        flow_uid=uid,
        ids=recorded_ids(status),
        phase=status.phase if status else None,
        next_phase=status.next_phase if status else None,
        error_message=message,
        diagnostics=diagnostics,
    )
