"""Carrying a decision out: the journal, the phase's Job (or in-process run), the database's
records, the status, the Events, in that order, so that a step cut short is repeated from the
same evidence and each of its writes is idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectionflow.api.contract import WorkerRequest
from collectionflow.api.models import CollectionFlowStatus, Runner
from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE
from collectionflow.controller.context import JobDeferred, flow_logger
from collectionflow.controller.diagnosis import timeouts
from collectionflow.controller.eta import with_eta
from collectionflow.controller.ports import Acting
from collectionflow.controller.runs import launch
from collectionflow.domain.decision import (
    Decision,
    FlowView,
    PhaseFinished,
    StartPhase,
)
from collectionflow.domain.diagnosis import held_status
from collectionflow.domain.evidence import phase_stall_timeout
from collectionflow.domain.journal import failure_entry
from collectionflow.domain.records import (
    FlowIds,
    FlowRef,
    PhaseRunRecord,
    RunRowState,
    Transition,
    master_link,
    master_update_for,
    recorded_ids,
)
from collectionflow.domain.registry import UnknownFlowType, flow_definition
from collectionflow.domain.snapshot import child_snapshot
from collectionflow.domain.stall import heartbeat_every
from collectionflow.k8s.gateway import ObjectRef
from collectionflow.specs.jobs import PhaseJobRequest, build_phase_job
from collectionflow.specs.patches import merge_patch


async def ensure_ids(ctx: Acting, view: FlowView) -> FlowIds:
    recorded = recorded_ids(view.status)
    if recorded is not None:
        return recorded
    ctx.leadership.fence()
    return await ctx.repository.ensure_flow(
        FlowRef(view.uid, view.namespace, view.name, view.spec.flow_type), master_link(view.spec)
    )


async def carry_out(
    ctx: Acting,
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


def _ran_by(ctx: Acting, status: CollectionFlowStatus, runner: Runner) -> CollectionFlowStatus:
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
        at=now,
        result=result.model_dump(mode="json") if result is not None else None,
        error=finished.error,
    )


def _observe_duration(
    ctx: Acting, view: FlowView, finished: PhaseFinished, now: dt.datetime
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
    ctx: Acting,
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
            heartbeat_seconds=heartbeat_every(
                phase_stall_timeout(plan, start.phase, timeouts(settings)),
                settings.heartbeat_seconds,
            ),
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
    running = RunRowState.RUNNING
    record = PhaseRunRecord(view.uid, start.phase, start.attempt, request.job_name, running, now)
    return record, runner
