"""Failing a flow: the status it moves to, the journal row and the Event, in one place.

Every way a flow fails (a phase that failed, an invalid spec or result, a stall that may not be
recovered, a budget spent) goes through `fail`, so the journal's diagnostics and the
conditions are the same whatever the cause. Pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from collectionflow.api.limits import InputKind
from collectionflow.api.models import CollectionFlowStatus, FlowState, PhaseRunState
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.conditions import conditions_for
from collectionflow.domain.decision import Decision, Failure, FlowEvent, FlowView, JobObservation
from collectionflow.domain.history import close_attempt
from collectionflow.domain.plan import InvalidSpec
from collectionflow.domain.registry import UnknownPhase
from collectionflow.domain.results import PhaseResult


def fail(
    flow: FlowView,
    result: PhaseResult | None,
    now: dt.datetime,
    reason: ConditionReason,
    message: str,
    operation: str,
    job: JobObservation | None = None,
) -> Decision:
    status = flow.status
    history = status.phase_history
    if status.phase and status.state is FlowState.RUNNING:
        history = close_attempt(
            status, status.phase, status.attempt, PhaseRunState.FAILED, now, message
        )
    new_status = moved(
        flow,
        status,
        FlowState.FAILED,
        reason,
        message,
        now,
        current_job=None,
        completed_at=now,
        phase_history=history,
    )
    diagnostics: dict[str, Any] = {
        "reason": reason,
        "phase": status.phase,
        "next_phase": status.next_phase,
        "attempt": status.attempt,
        "state_before": status.state.value,
    }
    if job is not None:
        diagnostics |= {
            "job_name": job.name,
            "exit_code": job.exit_code,
            "container_reason": job.reason,
            "termination_message": job.termination_message,
            "job_condition_reason": job.job_reason,
            "job_condition_message": job.job_message,
        }
    if result is not None:
        diagnostics["result"] = result.model_dump(mode="json")
    failure = Failure(
        operation=operation,
        error_message=message,
        next_phase=_known_phase(flow, result.next_phase if result else None) or status.next_phase,
        agent_decision=result.agent_decision if result else None,
        diagnostics=diagnostics,
    )
    return Decision(
        status=new_status,
        failure=failure,
        events=(FlowEvent("Warning", EventReason.FLOW_FAILED, message),),
    )


def _known_phase(flow: FlowView, name: str | None) -> str | None:
    """`name` if it is a phase of the flow's type (what the journal's column may hold); the
    result with any other name is in the failure's diagnostics."""
    try:
        return name if name and flow.plan.definition.phase(name) else None
    except (InvalidSpec, UnknownPhase):
        return None


def invalid_spec(flow: FlowView, now: dt.datetime, error: InvalidSpec) -> Decision:
    text = str(error)
    message = text if text.startswith("invalid spec") else f"invalid spec: {text}"
    failed = fail(flow, None, now, ConditionReason.INVALID_SPEC, message, "invalid_spec")
    rejected = InputKind.PARAMETERS if "spec.parameters" in text else InputKind.SPEC
    return replace(failed, rejected=rejected)


def fail_flow(flow: FlowView, now: dt.datetime, reason: ConditionReason, message: str) -> Decision:
    """Fail the flow for `reason` (a stall that may not or can no longer be recovered)."""
    return fail(flow, None, now, reason, message, reason)


def moved(
    flow: FlowView,
    status: CollectionFlowStatus,
    state: FlowState,
    reason: ConditionReason,
    message: str,
    now: dt.datetime,
    stalled: bool = False,
    **fields: Any,
) -> CollectionFlowStatus:
    """`status` in `state` for `reason`, its conditions following, with `fields` changed."""
    conditions = conditions_for(
        status.conditions, state, reason, message, now, flow.generation, stalled=stalled
    )
    return status.model_copy(
        update=fields
        | {
            "state": state,
            "message": message,
            "observed_generation": flow.generation,
            "conditions": conditions,
        }
    )
