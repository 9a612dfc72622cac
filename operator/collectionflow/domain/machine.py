"""The flow state machine: from what the operator observes to what it should do next.

`decide` is a pure function. It takes the flow as read from the API (spec, status, the
annotations that carry user requests) and the observed state of the current attempt's Job,
and returns a `Decision`: the new status, the Job to start, the phase run to record, the
failure to journal and the Events to post. The controller carries a decision out; it never
decide anything itself, so every transition is covered by unit tests here.

States: Pending -> Running <-> WaitingForInput / Suspended -> Succeeded | Failed.
A flow is Succeeded only when a phase finishes and neither its result nor the registry
names a next phase.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from collectionflow.api.limits import InputKind
from collectionflow.api.models import (
    CollectionFlowStatus,
    FlowState,
    PhaseRunState,
)
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.domain.decision import (
    NOTHING,
    Decision,
    FlowEvent,
    FlowView,
    JobObservation,
    JobState,
    PhaseFinished,
    one_event,
)
from collectionflow.domain.entering import enter_phase, fresh_attempt
from collectionflow.domain.failing import fail, invalid_spec, moved
from collectionflow.domain.history import close_attempt
from collectionflow.domain.plan import FlowPlan, InvalidSpec
from collectionflow.domain.progress import progress_after, progress_succeeded
from collectionflow.domain.registry import FlowDefinition, UnknownPhase
from collectionflow.domain.results import PhaseOutcome, PhaseResult


def at_rest(flow: FlowView) -> bool:
    """Nothing for `decide` to do until the object changes: the flow Succeeded, or it Failed
    and no new retry was asked for. A flow at rest needs no reconciler and no stall check."""
    state = flow.status.state
    retry_asked = bool(flow.retry_request) and flow.retry_request != flow.status.retry_token
    return state is FlowState.SUCCEEDED or (state is FlowState.FAILED and not retry_asked)


def decide(flow: FlowView, job: JobObservation | None, now: dt.datetime) -> Decision:
    """What to do about `flow`, given the observed Job of its current attempt."""
    status = flow.status
    if at_rest(flow):
        return NOTHING
    if status.state is FlowState.FAILED:
        return _retry_in_place(flow, now)
    try:
        plan = flow.plan
    except InvalidSpec as error:
        return invalid_spec(flow, now, error)
    kept = _master_flow_kept(flow)
    if kept is not None:
        return kept

    match status.state:
        case FlowState.PENDING:
            first = plan.definition.first_phase
            started = enter_phase(flow, plan, first, 1, now, _started(flow, now))
            unused = _master_fields_unused(flow)
            return started if unused is None else replace(started, events=(unused, *started.events))
        case FlowState.SUSPENDED:
            if flow.spec.suspend or status.phase is None:
                return NOTHING
            resumed = enter_phase(flow, plan, status.phase, max(status.attempt, 1), now, status)
            return replace(
                resumed,
                events=one_event(
                    FlowEvent(
                        "Normal", EventReason.FLOW_RESUMED, f"resumed at phase {status.phase}"
                    ),
                    resumed.events,
                ),
            )
        case FlowState.WAITING_FOR_INPUT:
            if status.phase is None:
                return NOTHING
            return enter_phase(flow, plan, status.phase, max(status.attempt, 1), now, status)
        case FlowState.RUNNING:
            return _running(flow, plan, job, now)
    return NOTHING


def _master_flow_kept(flow: FlowView) -> Decision | None:
    """A flow joins its master flow once, when it first runs; `spec.masterFlowId` changed
    after that is refused, once per change of the spec, with a Warning Event (and the status
    notes the generation it saw)."""
    status = flow.status
    wanted = flow.spec.master_flow_id
    if (
        status.master_flow_id is None
        or wanted is None
        or wanted.lower() == status.master_flow_id.lower()
        or (status.observed_generation or 0) >= flow.generation
    ):
        return None
    message = (
        f"spec.masterFlowId {wanted} is refused: the flow belongs to master flow "
        f"{status.master_flow_id} since it first ran, and keeps it (create a new flow to "
        "join another)"
    )
    return Decision(
        status=status.model_copy(update={"observed_generation": flow.generation}),
        events=(FlowEvent("Warning", EventReason.MASTER_FLOW_KEPT, message),),
    )


def _master_fields_unused(flow: FlowView) -> FlowEvent | None:
    """The Warning for an account or engagement given beside `masterFlowId`: they describe a
    master the flow would create, and the one it joins keeps its own."""
    spec = flow.spec
    given = [
        name
        for name, value in (
            ("clientAccountId", spec.client_account_id),
            ("engagementId", spec.engagement_id),
        )
        if value is not None
    ]
    if spec.master_flow_id is None or not given:
        return None
    message = (
        f"spec.{' and spec.'.join(given)} not stored: the flow joins master flow "
        f"{spec.master_flow_id}, which keeps its own (leave masterFlowId out to create a master "
        "flow with them)"
    )
    return FlowEvent("Warning", EventReason.MASTER_FIELDS_UNUSED, message)


def _running(
    flow: FlowView, plan: FlowPlan, job: JobObservation | None, now: dt.datetime
) -> Decision:
    if job is None or job.state in (JobState.ACTIVE, JobState.MISSING):
        return NOTHING
    result = job.result
    if job.state is JobState.SUCCEEDED and job.result_error is not None:
        return _invalid_result(flow, plan, job, now)
    if job.state is JobState.SUCCEEDED and (
        result is None or result.state is PhaseOutcome.SUCCEEDED
    ):
        return _phase_succeeded(flow, plan, job, now)
    return _phase_failed(flow, plan, job, now)


def _invalid_result(
    flow: FlowView, plan: FlowPlan, job: JobObservation, now: dt.datetime
) -> Decision:
    """A phase that exited 0 with a termination message that is not a phase result: what it
    meant to come next is unknown, so the phase counts as failed (docs/design.md)."""
    status = flow.status
    phase = status.phase or plan.definition.first_phase
    message = (
        f"phase {phase} attempt {status.attempt} exited 0, but its termination message is "
        f"not a phase result, so the phase counts as failed: {job.result_error}"
    )
    failed = fail(flow, None, now, ConditionReason.INVALID_RESULT, message, "read_result", job=job)
    return replace(
        failed,
        finished=PhaseFinished(phase, status.attempt, job.name, False, None, message),
        events=(FlowEvent("Warning", EventReason.INVALID_RESULT, message), *failed.events),
        rejected=InputKind.RESULT,
    )


def _phase_succeeded(
    flow: FlowView, plan: FlowPlan, job: JobObservation, now: dt.datetime
) -> Decision:
    status = flow.status
    phase = status.phase or plan.definition.first_phase
    result = job.result
    finished = PhaseFinished(phase, status.attempt, job.name, True, result, None)
    try:
        next_phase = next_phase_for(plan.definition, phase, result)
    except UnknownPhase as error:
        message = f"phase {phase} named an unknown next phase: {error}"
        return replace(
            fail(flow, result, now, ConditionReason.UNKNOWN_PHASE, message, "resolve_next_phase"),
            finished=finished,
        )

    history = close_attempt(status, phase, status.attempt, PhaseRunState.SUCCEEDED, now, None)
    succeeded_event = FlowEvent(
        "Normal", EventReason.PHASE_SUCCEEDED, f"phase {phase} attempt {status.attempt} succeeded"
    )
    if next_phase is None:
        done = progress_succeeded(plan.definition)
        message = f"all phases completed ({done.text})"
        new_status = moved(
            flow,
            status,
            FlowState.SUCCEEDED,
            ConditionReason.SUCCEEDED,
            message,
            now,
            next_phase=None,
            progress_percentage=done.percentage,
            progress=done.text,
            current_job=None,
            completed_at=now,
            last_progress_time=now,
            phase_history=history,
        )
        return Decision(
            status=new_status,
            finished=finished,
            events=one_event(
                succeeded_event, (FlowEvent("Normal", EventReason.FLOW_SUCCEEDED, message),)
            ),
        )

    progress = progress_after(plan.definition, phase)
    base = status.model_copy(
        update={
            "progress_percentage": progress.percentage,
            "progress": progress.text,
            "phase_history": history,
            "last_progress_time": now,
        }
    )
    entered = enter_phase(flow, plan, next_phase, fresh_attempt(status, next_phase), now, base)
    return replace(entered, finished=finished, events=one_event(succeeded_event, entered.events))


def _phase_failed(
    flow: FlowView, plan: FlowPlan, job: JobObservation, now: dt.datetime
) -> Decision:
    status = flow.status
    phase = status.phase or plan.definition.first_phase
    retries = plan.phase(phase).retries
    result = job.result
    cause = (
        (result.error if result and result.error else None)
        or job.termination_message
        or job.job_message
        or job.result_error
        or "no message"
    )
    exit_part = f", exit code {job.exit_code}" if job.exit_code is not None else ""
    reason = job.reason or job.job_reason or "Error"
    message = (
        f"phase {phase} attempt {status.attempt} failed after {retries} "
        f"{'retry' if retries == 1 else 'retries'} ({reason}{exit_part}): {cause}"
    )
    failed = fail(flow, result, now, ConditionReason.PHASE_FAILED, message, "run_phase", job=job)
    finished = PhaseFinished(phase, status.attempt, job.name, False, result, message)
    return replace(
        failed,
        finished=finished,
        events=(FlowEvent("Warning", EventReason.PHASE_FAILED, message), *failed.events),
    )


def _retry_in_place(flow: FlowView, now: dt.datetime) -> Decision:
    """A user's retry of a Failed flow: the failed phase again, as its next attempt."""
    status = flow.status
    try:
        plan = flow.plan
    except InvalidSpec as error:
        # Record the token even so: the request was acted on, and must not be acted on again.
        acted = replace(flow, status=status.model_copy(update={"retry_token": flow.retry_request}))
        return invalid_spec(acted, now, error)
    phase = status.phase or plan.definition.first_phase
    base = status.model_copy(
        update={
            "retry_token": flow.retry_request,
            "started_at": status.started_at or now,
            "completed_at": None,
        }
    )
    attempt = status.attempt + 1
    entered = enter_phase(flow, plan, phase, attempt, now, base)
    event = FlowEvent(
        "Normal",
        EventReason.RETRY_REQUESTED,
        f"retrying phase {phase} as attempt {attempt} on request",
    )
    return replace(entered, events=one_event(event, entered.events))


def recover_phase(flow: FlowView, now: dt.datetime, reason: str) -> Decision:
    """A stalled phase again, as its next attempt; `Stalled` stays True until it moves on."""
    status = flow.status
    plan = flow.plan
    phase = status.phase or plan.definition.first_phase
    attempt = status.attempt + 1
    history = close_attempt(
        status, phase, status.attempt, PhaseRunState.ABANDONED, now, f"stalled: {reason}"
    )
    base = status.model_copy(
        update={
            "recoveries": status.recoveries + 1,
            "last_recovery_time": now,
            "phase_history": history,
        }
    )
    return enter_phase(flow, plan, phase, attempt, now, base, stalled=True)


def _started(flow: FlowView, now: dt.datetime) -> CollectionFlowStatus:
    return flow.status.model_copy(update={"started_at": flow.status.started_at or now})


def next_phase_for(
    definition: FlowDefinition, phase: str, result: PhaseResult | None
) -> str | None:
    """The phase after `phase`: the result's choice when it makes one, else the registry's."""
    chosen = result.next_phase if result is not None else None
    if chosen is None:
        return definition.next_phase_for(phase)
    if len(chosen) > 63:
        raise UnknownPhase(f"a name of {len(chosen)} characters is no phase name")
    definition.phase(chosen)
    if not definition.loops and definition.position(chosen) <= definition.position(phase):
        raise UnknownPhase(
            f"{chosen!r} does not come after {phase!r}, and flow type "
            f"{definition.flow_type!r} does not loop"
        )
    return chosen
