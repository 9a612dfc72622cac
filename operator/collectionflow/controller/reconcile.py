"""One reconcile of one flow: read its state, let the state machine decide, carry it out.

A Job that finished long before this reconcile saw it (the operator was down, say) is a
`MissedCompletion` stall: reported like any other, and recovered by advancing, never by
running the phase again.

The evidence comes from the watch cache (`domain.cache`), with an API read only where the cache
has none; a resync (`fresh=True`) reads the flow, its Job and pods from the API instead.

The order of the side effects is what makes a crash or an outage at any point harmless:
1. the next Job is created under its deterministic name (an existing one is adopted);
2. one database transaction records what finished, what started, and the child's and the
   master's state (idempotent writes keyed by flow uid, phase, attempt);
3. the flow's status is written, as a merge patch guarded by resourceVersion;
4. only then are Events posted and consumed annotations removed.
If any step fails, nothing after it happens; the next reconcile recomputes the same decision
from the same evidence (the finished Job is still there) and repeats the steps, each of which
is a no-op the second time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectionflow.api.contract import WorkerRequest
from collectionflow.api.models import CollectionFlowStatus, FlowState, Runner
from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE
from collectionflow.api.reasons import ConditionReason
from collectionflow.controller.context import JobDeferred, JobRefused, OperatorContext, flow_logger
from collectionflow.controller.diagnosis import diagnosis_of, may_be_held
from collectionflow.controller.eta import with_eta
from collectionflow.controller.runs import launch
from collectionflow.controller.status_record import restore_status
from collectionflow.controller.visibility import report_caught_up, report_recovered, report_stall
from collectionflow.db.errors import UnknownMasterFlow
from collectionflow.domain.decision import (
    NOTHING,
    Decision,
    FlowView,
    JobObservation,
    PhaseFinished,
    StartPhase,
)
from collectionflow.domain.diagnosis import held_status, waiting_status
from collectionflow.domain.failing import fail_flow
from collectionflow.domain.journal import failure_entry
from collectionflow.domain.machine import decide
from collectionflow.domain.observe import job_finished_at, observe_job, terminated_state
from collectionflow.domain.records import (
    FlowIds,
    FlowRef,
    PhaseRunRecord,
    RunRowState,
    Transition,
    master_update_for,
)
from collectionflow.domain.recovery import RecoveryPlan, plan_recovery
from collectionflow.domain.registry import UnknownFlowType, flow_definition
from collectionflow.domain.snapshot import child_snapshot
from collectionflow.domain.stall import Finding, missed_completion
from collectionflow.domain.view import flow_view
from collectionflow.k8s.gateway import ObjectRef
from collectionflow.specs.jobs import PhaseJobRequest, build_phase_job
from collectionflow.specs.patches import merge_patch


async def read_flow(
    ctx: OperatorContext, uid: str, namespace: str, name: str, fresh: bool
) -> dict[str, Any] | None:
    """The flow from the cache, or from the API when the cache lacks it or `fresh` is asked."""
    body = None if fresh else ctx.cache.flow(uid)
    if body is not None:
        return body
    read = await ctx.kube.get_flow(namespace, name)
    if read is None:
        ctx.cache.forget_flow(uid)
        return None
    ctx.cache.refresh_flow(read)
    return ctx.cache.flow(uid)


async def reconcile(
    ctx: OperatorContext, uid: str, namespace: str, name: str, fresh: bool = False
) -> Decision | None:
    """Reconcile the flow once; returns the decision carried out (None: flow gone)."""
    body = await read_flow(ctx, uid, namespace, name, fresh)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    record = ctx.cache.status_record(uid)
    if record is not None:
        body = await restore_status(ctx, body, record)
    view = flow_view(body, ctx.settings.operator.allow_simulation)
    try:
        return await _reconcile(ctx, body, view, fresh)
    except UnknownMasterFlow as error:
        # A data error no retry fixes: the flow fails, with a journal row and an Event, until
        # its spec names an existing master flow (or it is retried).
        message = f"spec.masterFlowId: {error}"
        decision = fail_flow(view, ctx.clock(), ConditionReason.UNKNOWN_MASTER_FLOW, message)
        await carry_out(ctx, body, view, None, decision)
        return decision
    except JobRefused as error:
        message = f"creating the phase's Job was refused, and it may not run elsewhere: {error}"
        decision = fail_flow(view, ctx.clock(), ConditionReason.JOB_REFUSED, message)
        await carry_out(ctx, body, view, None, decision)
        return decision


async def _reconcile(
    ctx: OperatorContext, body: dict[str, Any], view: FlowView, fresh: bool
) -> Decision:
    ids = await ensure_ids(ctx, view)
    job, finished_at = await observe_current_job(ctx, view, fresh)
    now = ctx.clock()
    settings = ctx.settings.operator
    grace = dt.timedelta(seconds=settings.missed_completion_grace_seconds)
    status = view.status
    missed = missed_completion(
        status.state, status.phase, status.attempt, job, finished_at, now, grace
    )
    caught_up = None
    seen_at = ctx.cache.finished_seen_at(view.namespace, status.current_job or "")
    if missed is not None and ctx.excuses(finished_at, now, grace, seen_at):
        caught_up, missed = missed, None
    recovery = None
    if missed is not None:
        recovery = recovery_for(ctx, view, missed, now)
        await report_stall(ctx, view, missed, recovery, now)
    decision = decide(view, job, now)
    if decision == NOTHING and status.state is FlowState.RUNNING and may_be_held(ctx, view, now):
        diagnosis = diagnosis_of(ctx, view, now)
        waiting = waiting_status(view, diagnosis, now) if diagnosis else None
        if waiting is not None:
            decision = Decision(status=waiting)
    await carry_out(ctx, body, view, ids, decision)
    if missed is not None and recovery is not None:
        await report_recovered(ctx, view, missed, recovery)
    if caught_up is not None:
        await report_caught_up(ctx, view, caught_up)
    ctx.metrics.flow_state(view.uid, (decision.status or view.status).state)
    return decision


def recovery_for(
    ctx: OperatorContext, view: FlowView, finding: Finding, now: dt.datetime
) -> RecoveryPlan:
    """How to recover `view` from `finding`, within the flow's (or the operator's) limits."""
    settings = ctx.settings.operator
    limit = view.spec.max_recoveries
    return plan_recovery(
        view,
        finding,
        now,
        limit if limit is not None else settings.max_recoveries,
        dt.timedelta(seconds=settings.recovery_backoff_seconds),
    )


async def ensure_ids(ctx: OperatorContext, view: FlowView) -> FlowIds:
    status = view.status
    if status.master_flow_id and status.child_flow_id:
        return FlowIds(status.master_flow_id, status.child_flow_id)
    spec = view.spec
    ctx.leadership.fence()
    return await ctx.repository.ensure_flow(
        FlowRef(
            flow_uid=view.uid,
            namespace=view.namespace,
            name=view.name,
            flow_type=spec.flow_type,
            master_flow_id=spec.master_flow_id,
            client_account_id=spec.client_account_id,
            engagement_id=spec.engagement_id,
        )
    )


async def observe_current_job(
    ctx: OperatorContext, view: FlowView, fresh: bool = False
) -> tuple[JobObservation | None, dt.datetime | None]:
    """The current attempt's Job as observed, and when it finished (if it did)."""
    status = view.status
    if status.state is not FlowState.RUNNING or not status.current_job:
        return None, None
    namespace, name = view.namespace, status.current_job
    known = ctx.inprocess.bodies(namespace, name)
    if known is not None:  # an in-process attempt: its bodies are this process's own
        return observe_job(name, known[0], known[1]), job_finished_at(known[0])
    job = None if fresh else ctx.cache.job(namespace, name)
    if job is None:
        job = await ctx.kube.get_job(namespace, name)
        ctx.cache.put_job(job, namespace, name)
    pods: list[dict[str, Any]] = []
    if job is not None and job["status"].get("conditions"):
        cached = None if fresh else ctx.cache.job_pods(namespace, name)
        if cached is None or not any(terminated_state(pod) for pod in cached):
            cached = await ctx.kube.list_job_pods(namespace, name)
            ctx.cache.put_pods(namespace, name, cached)
        pods = cached
    return observe_job(name, job, pods), job_finished_at(job)


async def carry_out(
    ctx: OperatorContext,
    body: dict[str, Any],
    view: FlowView,
    ids: FlowIds | None,
    decision: Decision,
) -> None:
    """Act on `decision`: journal, Job, database, status, Events. Without `ids` (the flow has
    no database rows) the database is left alone."""
    log = flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt)
    now = ctx.clock()
    ctx.leadership.fence()
    if decision.rejected is not None:
        ctx.metrics.rejected_inputs.labels(kind=decision.rejected.value).inc()
    if decision.failure is not None:
        failure = decision.failure
        await ctx.repository.journal(failure_entry(view, failure, ids))
        log.warning("journaled failure: %s", failure.error_message)
    started = None
    status = decision.status
    if decision.start is not None:
        try:
            started, runner = await _start_phase(ctx, view, decision.start, decision.finished, now)
        except JobDeferred as deferred:
            said = held_status(view, deferred.message, now)
            patch = merge_patch(body.get("status") or {}, said.to_api())
            ctx.cache.wrote_flow(await ctx.kube.patch_flow_status(body, patch))
            raise deferred.error from None
        if status is not None and status.phase_history:
            status = _ran_by(ctx, status, runner)

    if ids is not None and status is None and view.status.master_flow_id != ids.master_flow_id:
        status = view.status
    if ids is not None and status is not None:
        status = status.model_copy(
            update={"master_flow_id": ids.master_flow_id, "child_flow_id": ids.child_flow_id}
        )
    finished = _finished_run(view, decision.finished, now)
    if ids is not None and (finished is not None or started is not None or status is not None):
        ctx.leadership.fence()
        await ctx.repository.record_transition(
            database_sync(view, ids, status, finished=finished, started=started)
        )
    if decision.finished is not None:
        _observe_duration(ctx, view, decision.finished, now)
    if status is not None:
        status = await with_eta(ctx.durations, ctx.repository, view.spec.flow_type, status, now)
        patch = merge_patch(body.get("status") or {}, status.to_api())
        ctx.leadership.fence()
        ctx.cache.wrote_flow(await ctx.kube.patch_flow_status(body, patch))

    ref = ObjectRef(view.namespace, view.name, view.uid)
    for event in decision.events:
        log.log(30 if event.type == "Warning" else 20, "%s: %s", event.reason, event.message)
        await ctx.kube.post_event(ref, event.type, event.reason, event.message)
    if decision.consume_input and (view.input_complete or view.manual_input is not None):
        ctx.cache.wrote_flow(
            await ctx.kube.remove_flow_annotations(
                view.namespace, view.name, [ANNOTATION_INPUT_COMPLETE, ANNOTATION_INPUT]
            ),
            status=False,
        )


def _ran_by(
    ctx: OperatorContext, status: CollectionFlowStatus, runner: Runner
) -> CollectionFlowStatus:
    """The status with where the new attempt runs: on its history entry, and for an in-process
    attempt in the message too, with the in-process attempts queued before it."""
    history = [*status.phase_history[:-1], status.phase_history[-1]]
    history[-1] = history[-1].model_copy(update={"runner": runner})
    update: dict[str, Any] = {"phase_history": history}
    if runner is Runner.IN_PROCESS:
        queued = ctx.inprocess.queued
        update["message"] = f"{status.message} in the operator's process" + (
            f", after {queued} queued in-process phases" if queued else ""
        )
    return status.model_copy(update=update)


def database_sync(
    view: FlowView,
    ids: FlowIds,
    status: CollectionFlowStatus | None,
    finished: PhaseRunRecord | None = None,
    started: PhaseRunRecord | None = None,
) -> Transition:
    """The database writes that mirror `status` (the child's and the master's state), with the
    runs that finished and started in the same transition."""
    child = master = None
    if status is not None:
        try:
            definition = flow_definition(view.spec.flow_type)
        except UnknownFlowType:
            definition = None
        if definition is not None:
            snapshot = child_snapshot(definition, status)
            child, master = (view.uid, snapshot), master_update_for(ids, snapshot)
    return Transition(
        finished=finished,
        started=started,
        child=child,
        master=master,
        child_flow_id=ids.child_flow_id,
    )


def _finished_run(
    view: FlowView, finished: PhaseFinished | None, now: dt.datetime
) -> PhaseRunRecord | None:
    if finished is None:
        return None
    result = finished.result
    return PhaseRunRecord(
        flow_uid=view.uid,
        phase=finished.phase,
        attempt=finished.attempt,
        job_name=finished.job_name,
        state=RunRowState.SUCCEEDED if finished.succeeded else RunRowState.FAILED,
        finished_at=now,
        result=result.model_dump(mode="json") if result is not None else None,
        error=finished.error,
    )


def _observe_duration(
    ctx: OperatorContext, view: FlowView, finished: PhaseFinished, now: dt.datetime
) -> None:
    entry = next(
        (
            h
            for h in view.status.phase_history
            if h.name == finished.phase and h.attempt == finished.attempt
        ),
        None,
    )
    if entry is not None and entry.started_at is not None:
        ctx.metrics.phase_duration.labels(
            phase=finished.phase, outcome="succeeded" if finished.succeeded else "failed"
        ).observe((now - entry.started_at).total_seconds())


async def _start_phase(
    ctx: OperatorContext,
    view: FlowView,
    start: StartPhase,
    finished: PhaseFinished | None,
    now: dt.datetime,
) -> tuple[PhaseRunRecord, Runner]:
    """Start the attempt, as a Job or in-process (`runs.launch`); the run to record, and where
    it runs."""
    settings = ctx.settings.operator
    plan = view.plan
    stored = await ctx.repository.phase_outputs(view.uid)
    outputs = {phase: value.get("outputs", value) for phase, value in stored.items()}
    if finished is not None and finished.succeeded and finished.result is not None:
        outputs[finished.phase] = finished.result.model_dump(mode="json").get("outputs", {})
    request = PhaseJobRequest(
        worker=WorkerRequest(
            namespace=view.namespace,
            flow_name=view.name,
            flow_uid=view.uid,
            flow_type=view.spec.flow_type,
            phase=start.phase,
            attempt=start.attempt,
            heartbeat_seconds=settings.heartbeat_seconds,
            parameters=view.spec.parameters,
            previous_outputs=outputs,
            manual_input=start.manual_input,
        ),
        phase=plan.phase(start.phase),
        image=settings.image,
        image_pull_policy=settings.image_pull_policy,
        service_account=settings.worker_service_account,
        ttl_seconds_after_finished=settings.job_ttl_seconds,
        node_selector=view.spec.node_selector,
    )
    built_in = request.phase.built_in and not view.spec.node_selector
    runner = await launch(ctx, view, build_phase_job(request), now, built_in)
    record = PhaseRunRecord(
        flow_uid=view.uid,
        phase=start.phase,
        attempt=start.attempt,
        job_name=request.job_name,
        state=RunRowState.RUNNING,
        started_at=now,
    )
    return record, runner
