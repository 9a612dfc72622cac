"""One reconcile of one flow: read its state, let the state machine decide, carry it out.

A Job that finished long before this reconcile saw it (the operator was down, say) is a
`MissedCompletion` stall: reported like any other, and recovered by advancing, never by
running the phase again.

The order of the side effects is what makes a crash or an outage at any point harmless:
1. the database learns what finished (idempotent writes keyed by flow uid, phase, attempt);
2. the next Job is created under its deterministic name (an existing one is adopted);
3. the child record is synced and the flow's status written, guarded by resourceVersion;
4. only then are Events posted and consumed annotations removed.
If any step fails, nothing after it happens; the next reconcile recomputes the same decision
from the same evidence (the finished Job is still there) and repeats the steps, each of which
is a no-op the second time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectionflow.api.models import CollectionFlowStatus, FlowState
from collectionflow.domain.machine import (
    Decision,
    FlowView,
    JobObservation,
    PhaseFinished,
    StartPhase,
    child_snapshot,
    decide,
)
from collectionflow.domain.observe import job_finished_at, observe_job
from collectionflow.domain.plan import plan_for
from collectionflow.domain.records import (
    FlowIds,
    FlowRef,
    JournalEntry,
    PhaseRunRecord,
    PhaseRunState,
    master_update_for,
)
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan
from collectionflow.domain.registry import UnknownFlowType, flow_definition
from collectionflow.domain.stall import missed_completion
from collectionflow.domain.view import flow_view
from collectionflow.handlers.context import OperatorContext, flow_logger
from collectionflow.handlers.visibility import report_recovered, report_stall
from collectionflow.k8s.gateway import ObjectRef
from collectionflow.specs.jobs import PhaseJobRequest, build_heartbeat_lease, build_phase_job
from collectionflow.specs.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def reconcile(ctx: OperatorContext, namespace: str, name: str) -> Decision | None:
    """Reconcile the flow once; returns the decision carried out (None: flow gone)."""
    body = await ctx.kube.get_flow(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    view = flow_view(body)
    ids = await _ensure_ids(ctx, view)
    job, finished_at = await observe_current_job(ctx, view)
    now = ctx.clock()
    grace = dt.timedelta(seconds=ctx.settings.operator.missed_completion_grace_seconds)
    status = view.status
    missed = missed_completion(
        status.state, status.phase, status.attempt, job, finished_at, now, grace
    )
    advance = RecoveryPlan(RecoveryAction.ADVANCE, summary="advanced past the finished phase")
    if missed is not None:
        await report_stall(ctx, view, missed, advance, now)
    decision = decide(view, job, now)
    await carry_out(ctx, body, view, ids, decision)
    if missed is not None:
        await report_recovered(ctx, view, missed, advance)
    ctx.metrics.flow_state(view.uid, (decision.status or view.status).state)
    return decision


async def _ensure_ids(ctx: OperatorContext, view: FlowView) -> FlowIds:
    status = view.status
    if status.master_flow_id and status.child_flow_id:
        return FlowIds(status.master_flow_id, status.child_flow_id)
    spec = view.spec
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
    ctx: OperatorContext, view: FlowView
) -> tuple[JobObservation | None, dt.datetime | None]:
    """The current attempt's Job as observed, and when it finished (if it did)."""
    status = view.status
    if status.state is not FlowState.RUNNING or not status.current_job:
        return None, None
    job = await ctx.kube.get_job(view.namespace, status.current_job)
    pods: list[dict[str, Any]] = []
    if job is not None and (job.get("status") or {}).get("conditions"):
        pods = await ctx.kube.list_job_pods(view.namespace, status.current_job)
    return observe_job(status.current_job, job, pods), job_finished_at(job)


async def carry_out(
    ctx: OperatorContext,
    body: dict[str, Any],
    view: FlowView,
    ids: FlowIds,
    decision: Decision,
) -> None:
    log = flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt)
    now = ctx.clock()
    if decision.finished is not None:
        await _record_finished(ctx, view, decision.finished, now)
        _observe_duration(ctx, view, decision.finished, now)
    if decision.failure is not None:
        failure = decision.failure
        await ctx.repository.journal(
            JournalEntry(
                source="operator",
                operation=failure.operation,
                dedupe_key=f"{view.uid}:{failure.phase}:{failure.attempt}:{failure.operation}",
                flow_uid=view.uid,
                master_flow_id=ids.master_flow_id,
                child_flow_id=ids.child_flow_id,
                phase=failure.phase,
                next_phase=failure.next_phase,
                agent_decision=failure.agent_decision,
                error_message=failure.error_message,
                diagnostics=failure.diagnostics,
            )
        )
        log.warning("journaled failure: %s", failure.error_message)
    if decision.start is not None:
        await _start_phase(ctx, view, decision.start, now)

    status = decision.status
    if status is None and view.status.master_flow_id != ids.master_flow_id:
        status = view.status
    if status is not None:
        status = status.model_copy(
            update={"master_flow_id": ids.master_flow_id, "child_flow_id": ids.child_flow_id}
        )
        await _sync_database(ctx, view, ids, status)
        await ctx.kube.replace_flow_status(body, status.to_api())

    ref = ObjectRef(view.namespace, view.name, view.uid)
    for event in decision.events:
        log.log(30 if event.type == "Warning" else 20, "%s: %s", event.reason, event.message)
        await ctx.kube.post_event(ref, event.type, event.reason, event.message)
    if decision.consume_input and (view.input_complete or view.manual_input is not None):
        await ctx.kube.remove_flow_annotations(
            view.namespace, view.name, [ANNOTATION_INPUT_COMPLETE, ANNOTATION_INPUT]
        )


async def _record_finished(
    ctx: OperatorContext, view: FlowView, finished: PhaseFinished, now: dt.datetime
) -> None:
    result = finished.result
    await ctx.repository.record_phase_finished(
        PhaseRunRecord(
            flow_uid=view.uid,
            phase=finished.phase,
            attempt=finished.attempt,
            job_name=finished.job_name,
            state=PhaseRunState.SUCCEEDED if finished.succeeded else PhaseRunState.FAILED,
            finished_at=now,
            result=result.model_dump(mode="json") if result is not None else None,
            error=finished.error,
        )
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
    ctx: OperatorContext, view: FlowView, start: StartPhase, now: dt.datetime
) -> None:
    settings = ctx.settings.operator
    plan = plan_for(view.spec)
    outputs = await ctx.repository.phase_outputs(view.uid)
    request = PhaseJobRequest(
        namespace=view.namespace,
        flow_name=view.name,
        flow_uid=view.uid,
        flow_type=view.spec.flow_type,
        phase=plan.phase(start.phase),
        attempt=start.attempt,
        image=settings.image,
        image_pull_policy=settings.image_pull_policy,
        service_account=settings.worker_service_account,
        heartbeat_seconds=settings.heartbeat_seconds,
        parameters=view.spec.parameters,
        previous_outputs={k: v.get("outputs", v) for k, v in outputs.items()},
        manual_input=start.manual_input,
    )
    if settings.manage_worker_rbac:
        await ctx.kube.ensure_worker_rbac(
            view.namespace, settings.worker_service_account, settings.worker_cluster_role
        )
    job = await ctx.kube.create_job(build_phase_job(request))
    await ctx.kube.create_lease(
        build_heartbeat_lease(
            view.namespace, request.job_name, job["metadata"]["uid"], "operator", rfc3339(now)
        )
    )
    await ctx.repository.record_phase_started(
        PhaseRunRecord(
            flow_uid=view.uid,
            phase=start.phase,
            attempt=start.attempt,
            job_name=request.job_name,
            state=PhaseRunState.RUNNING,
            started_at=now,
        )
    )


async def _sync_database(
    ctx: OperatorContext, view: FlowView, ids: FlowIds, status: CollectionFlowStatus
) -> None:
    try:
        definition = flow_definition(view.spec.flow_type)
    except UnknownFlowType:
        return
    snapshot = child_snapshot(definition, status)
    await ctx.repository.sync_child(view.uid, snapshot)
    await ctx.repository.update_master(master_update_for(ids, snapshot))
