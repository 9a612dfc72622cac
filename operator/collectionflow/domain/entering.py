"""Entering a phase: start its attempt, or hold the flow (suspended, waiting for input, input
refused), or fail it when its budget of phase runs is spent. Pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from collectionflow.api.limits import InputKind
from collectionflow.api.models import (
    CollectionFlowStatus,
    FlowState,
    PhaseHistoryEntry,
    PhaseRunState,
)
from collectionflow.api.names import job_name
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.decision import NOTHING, Decision, FlowEvent, FlowView, StartPhase
from collectionflow.domain.failing import fail, moved
from collectionflow.domain.history import HISTORY_LIMIT, open_attempt
from collectionflow.domain.plan import FlowPlan


def running_message(phase: str, attempt: int) -> str:
    """The status message of a phase attempt that runs with nothing holding it."""
    return f"running phase {phase} (attempt {attempt})"


def enter_phase(
    flow: FlowView,
    plan: FlowPlan,
    phase: str,
    attempt: int,
    now: dt.datetime,
    base: CollectionFlowStatus,
    stalled: bool = False,
) -> Decision:
    """Make `phase` current: start its Job, or wait for input or for the suspend to end."""
    config = plan.phase(phase)
    upcoming = plan.definition.next_phase_for(phase)
    common: dict[str, Any] = {"phase": phase, "next_phase": upcoming, "attempt": attempt}
    if flow.spec.suspend:
        message = f"suspended before phase {phase}"
        return Decision(
            status=moved(
                flow,
                base,
                FlowState.SUSPENDED,
                ConditionReason.SUSPENDED,
                message,
                now,
                current_job=None,
                **common,
            ),
            events=(FlowEvent("Normal", EventReason.FLOW_SUSPENDED, message),),
        )
    if config.manual and flow.input_complete and flow.input_error is not None:
        return _input_rejected(flow, phase, attempt, now, base)
    if config.manual and not flow.input_complete:
        message = (
            f"phase {phase} waits for input: annotate the flow with "
            "flows.collectionflow.io/input-complete=true"
        )
        already_waiting = base.state is FlowState.WAITING_FOR_INPUT and base.phase == phase
        return Decision(
            status=None
            if already_waiting
            else moved(
                flow,
                base,
                FlowState.WAITING_FOR_INPUT,
                ConditionReason.WAITING_FOR_INPUT,
                message,
                now,
                current_job=None,
                input_requested_at=now,
                **common,
            ),
            events=()
            if already_waiting
            else (FlowEvent("Normal", EventReason.INPUT_REQUIRED, message),),
        )

    if base.phase_runs >= flow.spec.max_phase_runs:
        message = (
            f"phase {phase} would be the flow's run {base.phase_runs + 1}, past "
            f"spec.maxPhaseRuns ({flow.spec.max_phase_runs}); raise it to go on"
        )
        exhausted = flow if base is flow.status else replace(flow, status=base)
        return fail(
            exhausted,
            None,
            now,
            ConditionReason.TRANSITION_BUDGET_EXHAUSTED,
            message,
            "transition_budget",
        )
    job = job_name(flow.name, phase, attempt)
    message = running_message(phase, attempt)
    entry = PhaseHistoryEntry(
        name=phase, state=PhaseRunState.RUNNING, attempt=attempt, job_name=job, started_at=now
    )
    history = open_attempt(base, entry)
    return Decision(
        status=moved(
            flow,
            base,
            FlowState.RUNNING,
            ConditionReason.RECOVERING if stalled else ConditionReason.PHASE_RUNNING,
            message,
            now,
            stalled=stalled,
            current_job=job,
            input_requested_at=None,
            last_progress_time=now,
            phase_history=history,
            phase_runs=base.phase_runs + 1,
            **common,
        ),
        start=StartPhase(phase, attempt, flow.manual_input if config.manual else None),
        events=(FlowEvent("Normal", EventReason.PHASE_STARTED, message),),
        consume_input=config.manual,
    )


def _input_rejected(
    flow: FlowView, phase: str, attempt: int, now: dt.datetime, base: CollectionFlowStatus
) -> Decision:
    """Input marked complete that cannot be used: the flow keeps waiting, the annotation is
    kept for the user to fix, and the status says what to fix (once, with one Event)."""
    message = (
        f"phase {phase} input rejected: {flow.input_error}; fix the annotation "
        "flows.collectionflow.io/input (a JSON object) and the phase starts"
    )
    if base.state is FlowState.WAITING_FOR_INPUT and base.message == message:
        return NOTHING
    return Decision(
        status=moved(
            flow,
            base,
            FlowState.WAITING_FOR_INPUT,
            ConditionReason.INPUT_REJECTED,
            message,
            now,
            current_job=None,
            input_requested_at=base.input_requested_at or now,
            phase=phase,
            next_phase=flow.plan.definition.next_phase_for(phase),
            attempt=attempt,
        ),
        events=(FlowEvent("Warning", EventReason.INPUT_REJECTED, message),),
        rejected=InputKind.INPUT,
    )


def fresh_attempt(status: CollectionFlowStatus, phase: str) -> int:
    """The attempt number of entering `phase` anew: 1 the first time; past every attempt the
    flow ever ran when the phase ran before (a loop) or the history no longer shows all, so
    that no Job name is ever used twice. Every attempt is at most the runs started so far."""
    seen = [h.attempt for h in status.phase_history]
    ran_before = any(h.name == phase for h in status.phase_history)
    if not ran_before and len(seen) < HISTORY_LIMIT and status.phase_runs < HISTORY_LIMIT:
        return 1
    return max(status.phase_runs, *seen, 0) + 1
