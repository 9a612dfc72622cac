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

from collectionflow.api.models import FlowState
from collectionflow.api.reasons import ConditionReason
from collectionflow.controller.acting import carry_out, ensure_ids
from collectionflow.controller.context import JobRefused
from collectionflow.controller.diagnosis import diagnosis_of, may_be_held
from collectionflow.controller.ports import Reconciling
from collectionflow.controller.reading import flow_to_act_on, observe_current_job
from collectionflow.controller.visibility import report_caught_up, report_recovered, report_stall
from collectionflow.db.errors import UnknownMasterFlow
from collectionflow.domain.decision import (
    NOTHING,
    Decision,
    FlowView,
)
from collectionflow.domain.diagnosis import waiting_status
from collectionflow.domain.failing import fail_flow
from collectionflow.domain.machine import decide
from collectionflow.domain.recovery import RecoveryPlan, plan_recovery
from collectionflow.domain.stall import Finding, missed_completion


async def reconcile(
    ctx: Reconciling, uid: str, namespace: str, name: str, fresh: bool = False
) -> Decision | None:
    """Reconcile the flow once; returns the decision carried out (None: flow gone)."""
    found = await flow_to_act_on(ctx, uid, namespace, name, fresh)
    if found is None:
        return None
    body, view = found
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
    ctx: Reconciling, body: dict[str, Any], view: FlowView, fresh: bool
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
    if missed is not None and ctx.excuses().cover(finished_at, now, grace, seen_at):
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
    ctx: Reconciling, view: FlowView, finding: Finding, now: dt.datetime
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
