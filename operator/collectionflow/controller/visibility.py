"""How a stall and its recovery are made visible: Event, journal row, metric, log line.

Shared by the stall timer and by the reconcile, which is where a missed completion is
usually first seen (the operator's first reconcile after a restart).
"""

from __future__ import annotations

import datetime as dt

from collectionflow.api.reasons import EventReason
from collectionflow.controller.context import OperatorContext, flow_logger
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.domain.decision import FlowView
from collectionflow.domain.journal import stall_entry
from collectionflow.domain.recovery import RecoveryPlan
from collectionflow.domain.stall import Finding, caught_up_message
from collectionflow.k8s.gateway import ObjectRef


async def report_stall(
    ctx: OperatorContext, view: FlowView, finding: Finding, plan: RecoveryPlan, now: dt.datetime
) -> None:
    ctx.leadership.fence()
    ref = ObjectRef(view.namespace, view.name, view.uid)
    ctx.metrics.stalls.labels(reason=finding.reason.value).inc()
    flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt).warning(
        "FlowStalled %s: %s", finding.reason.value, finding.message
    )
    await ctx.kube.post_event(
        ref, "Warning", EventReason.FLOW_STALLED, f"{finding.reason.value}: {finding.message}"
    )
    await journal_stall(ctx, view, "stall_detected", finding, plan, now)


async def report_recovered(
    ctx: OperatorContext, view: FlowView, finding: Finding, plan: RecoveryPlan
) -> None:
    ref = ObjectRef(view.namespace, view.name, view.uid)
    ctx.metrics.recoveries.labels(reason=finding.reason.value).inc()
    flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt).info(
        "FlowRecovered %s: %s", finding.reason.value, plan.summary
    )
    await ctx.kube.post_event(
        ref, "Normal", EventReason.FLOW_RECOVERED, f"{finding.reason.value}: {plan.summary}"
    )
    await journal_stall(ctx, view, "recovered", finding, plan, ctx.clock())


async def report_caught_up(ctx: OperatorContext, view: FlowView, finding: Finding) -> None:
    """A Job that finished while this operator was not running yet, or while the database was
    out: the flow advanced once it could. Not a stall (nothing is wrong with the flow), so a
    Normal Event, no journal row."""
    message = caught_up_message(finding)
    flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt).info(
        "CaughtUp: %s", message
    )
    await ctx.kube.post_event(
        ObjectRef(view.namespace, view.name, view.uid), "Normal", EventReason.CAUGHT_UP, message
    )


async def journal_stall(
    ctx: OperatorContext,
    view: FlowView,
    operation: str,
    finding: Finding,
    plan: RecoveryPlan,
    now: dt.datetime,
) -> None:
    try:
        await ctx.repository.journal(stall_entry(view, operation, finding, plan, now))
    except DatabaseUnavailable as error:
        flow_logger(view.namespace, view.name).warning("journal unavailable: %s", error)
