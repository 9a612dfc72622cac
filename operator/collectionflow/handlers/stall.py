"""The stall check of one flow: gather evidence, judge it (domain.stall), recover (domain.recovery).

Every detection is a Warning Event `FlowStalled` and a journal row with the evidence; every
recovery is a Normal Event `FlowRecovered` and a journal row; both are counted in metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from collectionflow.api.models import FlowState
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.domain.machine import Decision, FlowView, child_snapshot, fail_flow
from collectionflow.domain.observe import (
    job_created_at,
    job_finished_at,
    lease_renewed_at,
    observe_job,
    pod_evidence,
)
from collectionflow.domain.plan import InvalidSpec, plan_for
from collectionflow.domain.records import FlowIds, master_update_for
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan, plan_recovery
from collectionflow.domain.stall import (
    Evidence,
    Finding,
    StallReason,
    find_stall,
    input_reminder_due,
)
from collectionflow.domain.view import flow_view
from collectionflow.handlers.context import OperatorContext, flow_logger
from collectionflow.handlers.reconcile import carry_out, reconcile
from collectionflow.handlers.visibility import report_recovered, report_stall
from collectionflow.k8s.gateway import ObjectRef


async def check_flow(ctx: OperatorContext, namespace: str, name: str) -> Finding | None:
    """Check one flow for a stall and recover it; returns the finding (None: not stalled)."""
    body = await ctx.kube.get_flow(namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    view = flow_view(body)
    ctx.metrics.flow_state(view.uid, view.status.state)
    now = ctx.clock()
    if await _remind_input(ctx, body, view, now):
        return None
    evidence = await gather_evidence(ctx, view, now)
    if evidence is None:
        return None
    finding = find_stall(evidence)
    if finding is None:
        return None
    if finding.reason is StallReason.MISSED_COMPLETION:
        await reconcile(ctx, namespace, name)  # reports the stall and advances past it
        return finding
    operator = ctx.settings.operator
    plan = plan_recovery(
        view,
        finding,
        now,
        view.spec.max_recoveries
        if view.spec.max_recoveries is not None
        else operator.max_recoveries,
        dt.timedelta(seconds=operator.recovery_backoff_seconds),
    )
    log = flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt)
    if plan.action is RecoveryAction.BACK_OFF:
        log.info("stalled (%s), backing off: %s", finding.reason.value, plan.summary)
        return finding
    await report_stall(ctx, view, finding, plan, now)
    await _recover(ctx, body, view, finding, plan)
    return finding


async def gather_evidence(
    ctx: OperatorContext, view: FlowView, now: dt.datetime
) -> Evidence | None:
    status = view.status
    try:
        plan = plan_for(view.spec)
    except InvalidSpec:
        return None
    operator = ctx.settings.operator
    phase_timeout = plan.phase(status.phase).stall_timeout_seconds if status.phase else None
    stall_timeout = (
        phase_timeout or view.spec.stall_timeout_seconds or operator.stall_timeout_seconds
    )
    evidence = Evidence(
        now=now,
        state=status.state,
        phase=status.phase,
        attempt=status.attempt,
        current_job=status.current_job,
        last_progress_time=status.last_progress_time,
        stall_timeout=dt.timedelta(seconds=stall_timeout),
        pod_start_timeout=dt.timedelta(seconds=operator.pod_start_timeout_seconds),
        missed_completion_grace=dt.timedelta(seconds=operator.missed_completion_grace_seconds),
    )
    if status.state is FlowState.RUNNING and status.current_job:
        job = await ctx.kube.get_job(view.namespace, status.current_job)
        pods = await ctx.kube.list_job_pods(view.namespace, status.current_job) if job else []
        lease = await ctx.kube.get_lease(view.namespace, status.current_job) if job else None
        evidence = dataclasses.replace(
            evidence,
            job=observe_job(status.current_job, job, pods),
            job_created_at=job_created_at(job),
            job_finished_at=job_finished_at(job),
            heartbeat=lease_renewed_at(lease),
            pods=tuple(pod_evidence(pod) for pod in pods),
        )
    if status.master_flow_id and status.state is not FlowState.PENDING:
        try:
            database_child = await ctx.repository.child_snapshot(view.uid)
        except DatabaseUnavailable:
            database_child = None
        evidence = dataclasses.replace(
            evidence,
            database_child=database_child,
            expected_child=child_snapshot(plan.definition, status),
        )
    return evidence


async def _recover(
    ctx: OperatorContext,
    body: dict[str, Any],
    view: FlowView,
    finding: Finding,
    plan: RecoveryPlan,
) -> None:
    ids = FlowIds(view.status.master_flow_id or "", view.status.child_flow_id or "")
    if plan.action is RecoveryAction.RESYNC:
        snapshot = child_snapshot(plan_for(view.spec).definition, view.status)
        await ctx.repository.sync_child(view.uid, snapshot)
        await ctx.repository.update_master(master_update_for(ids, snapshot))
    else:
        if plan.delete_job:
            await ctx.kube.delete_job(view.namespace, plan.delete_job)
        assert plan.decision is not None
        await carry_out(ctx, body, view, ids, plan.decision)
    if plan.action is RecoveryAction.FAIL:
        if plan.exhausted:
            ctx.metrics.recoveries_exhausted.inc()
        return
    await report_recovered(ctx, view, finding, plan)


async def _remind_input(
    ctx: OperatorContext, body: dict[str, Any], view: FlowView, now: dt.datetime
) -> bool:
    """Remind (or, by setting, fail) a flow that waits too long for input; True if it did."""
    operator = ctx.settings.operator
    status = view.status
    reminder_after = dt.timedelta(seconds=operator.input_reminder_seconds)
    if not input_reminder_due(
        status.state,
        status.input_requested_at,
        status.last_input_reminder_time,
        now,
        reminder_after,
    ):
        return False
    ref = ObjectRef(view.namespace, view.name, view.uid)
    waited = (now - (status.input_requested_at or now)).total_seconds()
    message = f"phase {status.phase} has waited {waited:.0f}s for input"
    await ctx.kube.post_event(ref, "Normal", "InputReminder", message)
    ids = FlowIds(status.master_flow_id or "", status.child_flow_id or "")
    if operator.fail_on_input_timeout:
        decision = fail_flow(view, now, "InputTimeout", message)
    else:
        decision = Decision(status=status.model_copy(update={"last_input_reminder_time": now}))
    await carry_out(ctx, body, view, ids, decision)
    return True
