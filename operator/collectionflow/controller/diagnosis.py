"""The diagnosis of a flow from what this operator knows: its cache, its settings, the
database's health. No request: it is asked on every reconcile of a running flow."""

from __future__ import annotations

import datetime as dt

from collectionflow.api.models import ConditionType
from collectionflow.api.reasons import ConditionReason
from collectionflow.controller.context import OperatorContext
from collectionflow.domain.decision import FlowView
from collectionflow.domain.diagnosis import Diagnosis, Recoveries, diagnose
from collectionflow.domain.evidence import Timeouts, evidence_for
from collectionflow.domain.observe import lease_renewed_at
from collectionflow.domain.plan import InvalidSpec
from collectionflow.domain.stall import beat_overdue


def timeouts(ctx: OperatorContext) -> Timeouts:
    operator = ctx.settings.operator
    return Timeouts(
        operator.stall_timeout_seconds,
        operator.pod_start_timeout_seconds,
        operator.missed_completion_grace_seconds,
        operator.heartbeat_seconds,
    )


def recoveries_of(ctx: OperatorContext, view: FlowView) -> Recoveries:
    limit = view.spec.max_recoveries
    return Recoveries(
        view.spec.recovery_policy,
        view.status.recoveries,
        limit if limit is not None else ctx.settings.operator.max_recoveries,
    )


def may_be_held(ctx: OperatorContext, view: FlowView, now: dt.datetime) -> bool:
    """Cheaply, whether the diagnosis could say something the status does not: its Job has a
    pod that has not started, its worker stopped beating, the database is down, or the status
    says the flow is held. A reconcile of a flow that moves along asks no more."""
    status = view.status
    reconciling = status.condition(ConditionType.RECONCILING)
    if ctx.database.is_down or (reconciling and reconciling.reason == ConditionReason.WAITING):
        return True
    current = status.current_job or ""
    pods = ctx.cache.job_pods(view.namespace, current) or []
    if any(pod["status"].get("phase") == "Pending" for pod in pods):
        return True
    job = ctx.cache.job(view.namespace, current)
    interval = dt.timedelta(seconds=ctx.settings.operator.heartbeat_seconds)
    return beat_overdue(
        lease_renewed_at(ctx.cache.lease(view.namespace, current), job), interval, now
    )


def diagnosis_of(ctx: OperatorContext, view: FlowView, now: dt.datetime) -> Diagnosis | None:
    """What holds the flow, from the cache (None: its spec has no plan)."""
    try:
        plan = view.plan
    except InvalidSpec:
        return None
    status = view.status
    current = status.current_job or ""
    evidence = evidence_for(
        view,
        plan,
        now,
        timeouts(ctx),
        ctx.cache.job(view.namespace, current),
        ctx.cache.job_pods(view.namespace, current) or [],
        ctx.cache.lease(view.namespace, current),
        completion_excused=True,
    )
    reminder = ctx.settings.operator.input_reminder_seconds
    asked = status.last_input_reminder_time or status.input_requested_at
    return diagnose(
        evidence,
        recoveries_of(ctx, view),
        input_requested_at=status.input_requested_at,
        reminder_at=asked + dt.timedelta(seconds=reminder) if asked else None,
        database_down_since=ctx.database.down_since,
    )
